//! The canonical layout of testbed files (`tg fmt`).
//!
//! [`format_source`] rewrites HCL text the way `terraform fmt` does: two-space
//! indentation per bracket level, `=` aligned within runs of single-line
//! attributes, one space around `=` otherwise, normalized spacing between
//! tokens, at most one blank line in a row and none right after `{` or
//! before `}`, no trailing whitespace, LF line endings and exactly one final
//! newline.
//!
//! How: the input is first checked with `hcl_edit::parser::parse_body` (a
//! syntax error becomes a [`FormatError`] with its line and column). Then a
//! small lexer splits the text into tokens where strings, heredocs and
//! comments are single opaque tokens, so their contents are never touched.
//! The layout is rebuilt from the tokens and the user's own line breaks
//! (which are kept, except for surplus blank lines). Before returning, the
//! result is verified: it must lex to the same tokens (comments included)
//! and parse to the same HCL body as the input; otherwise the formatter
//! reports an internal error instead of handing back damaged text.
//!
//! This module does not read or write files and does not print: the CLI
//! (`cli::commands::fmt`) owns file discovery, diffs and exit codes. It does
//! not reorder anything or rewrite expressions (no removal of redundant
//! interpolations, no quoting changes).

use std::borrow::Cow;

/// Why a text could not be formatted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct FormatError {
    /// What is wrong (lowercase, no trailing period).
    pub message: String,
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column (in characters) of the problem.
    pub column: usize,
    /// Whether the input is at fault or the formatter is.
    pub kind: FormatErrorKind,
}

/// The two kinds of [`FormatError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatErrorKind {
    /// The input is not valid HCL.
    Syntax,
    /// The formatter could not produce a layout with the same meaning (a
    /// bug in `tg`); the input should be left as it is.
    Internal,
}

impl FormatError {
    fn syntax(message: impl Into<String>, line: usize, column: usize) -> FormatError {
        FormatError {
            message: message.into(),
            line,
            column,
            kind: FormatErrorKind::Syntax,
        }
    }

    fn internal(what: &str, line: usize, column: usize) -> FormatError {
        FormatError {
            message: format!(
                "internal formatter error: {what}; the input was left unchanged, please report this"
            ),
            line,
            column,
            kind: FormatErrorKind::Internal,
        }
    }
}

/// Format HCL source text into the canonical layout.
///
/// Returns a [`FormatError`] with the location of the first syntax error when
/// `src` is not valid HCL. Formatting is idempotent:
/// `format_source(&format_source(x)?)? == format_source(x)?`.
pub fn format_source(src: &str) -> Result<String, FormatError> {
    let text: Cow<'_, str> = if src.contains("\r\n") {
        Cow::Owned(src.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(src)
    };
    let body = parse(&text)?;
    let tokens = lex(&text)?;
    let out = layout(&tokens);
    verify(&text, &tokens, body, &out)?;
    Ok(out)
}

/// Whether `src` is already in the canonical layout.
pub fn is_formatted(src: &str) -> Result<bool, FormatError> {
    Ok(format_source(src)? == src)
}

fn parse(text: &str) -> Result<hcl_edit::structure::Body, FormatError> {
    hcl_edit::parser::parse_body(text).map_err(|e| {
        let loc = e.location();
        FormatError::syntax(e.message(), loc.line(), loc.column())
    })
}

/// Check that `out` means exactly what the input (`text`, lexed to
/// `tokens` and parsed to `body`) meant. Locations are in the input.
fn verify(
    text: &str,
    tokens: &[Token<'_>],
    body: hcl_edit::structure::Body,
    out: &str,
) -> Result<(), FormatError> {
    let relexed = lex(out).map_err(|e| {
        let what = format!(
            "the result does not lex ({}:{}: {})",
            e.line, e.column, e.message
        );
        FormatError::internal(&what, 1, 1)
    })?;
    let mut before = tokens.iter().filter(|t| t.kind != Kind::Newline);
    let mut after = relexed.iter().filter(|t| t.kind != Kind::Newline);
    loop {
        match (before.next(), after.next()) {
            (None, None) => break,
            (Some(a), Some(b)) if a.kind == b.kind && a.text == b.text => {}
            (Some(a), _) => {
                let (line, column) = line_col(text, a.start);
                return Err(FormatError::internal("a token changed", line, column));
            }
            (None, Some(_)) => {
                let (line, column) = line_col(text, text.len());
                return Err(FormatError::internal("a token was added", line, column));
            }
        }
    }
    let reparsed = parse(out).map_err(|e| {
        let what = format!(
            "the result does not parse ({}:{}: {})",
            e.line, e.column, e.message
        );
        FormatError::internal(&what, 1, 1)
    })?;
    if hcl::Body::from(body) != hcl::Body::from(reparsed) {
        return Err(FormatError::internal("the meaning changed", 1, 1));
    }
    Ok(())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

// ---------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    /// A quoted template, interpolations included.
    Str,
    /// A heredoc, from `<<` to the end of its closing marker.
    Heredoc,
    LineComment,
    BlockComment,
    Newline,
    OBrace,
    CBrace,
    OBrack,
    CBrack,
    OParen,
    CParen,
    /// `=` (attribute or object element assignment).
    Equal,
    Minus,
    Bang,
    Comma,
    Dot,
    Ellipsis,
    DoubleColon,
    /// Every other operator: `== != < > <= >= + * / % && || ? : =>`.
    Op,
}

#[derive(Debug, Clone)]
struct Token<'a> {
    kind: Kind,
    /// The token's text; comments lose trailing whitespace on every line.
    text: Cow<'a, str>,
    /// Byte offsets in the lexed text (`end` is for the tests' re-spacing).
    start: usize,
    #[cfg_attr(not(test), allow(dead_code))]
    end: usize,
}

impl Token<'_> {
    fn is_comment(&self) -> bool {
        matches!(self.kind, Kind::LineComment | Kind::BlockComment)
    }

    fn is_multiline(&self) -> bool {
        self.text.contains('\n')
    }

    fn bracket_change(&self) -> isize {
        match self.kind {
            Kind::OBrace | Kind::OBrack | Kind::OParen => 1,
            Kind::CBrace | Kind::CBrack | Kind::CParen => -1,
            _ => 0,
        }
    }
}

fn is_id_start(c: char) -> bool {
    unicode_ident::is_xid_start(c) || c == '_'
}

fn is_id_continue(c: char) -> bool {
    unicode_ident::is_xid_continue(c) || c == '-'
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

fn lex(text: &str) -> Result<Vec<Token<'_>>, FormatError> {
    let mut lx = Lexer { text, pos: 0 };
    let mut tokens = Vec::new();
    while let Some(tok) = lx.next_token()? {
        tokens.push(tok);
    }
    Ok(tokens)
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn error(&self, at: usize, what: &str) -> FormatError {
        let (line, column) = line_col(self.text, at);
        FormatError::syntax(what, line, column)
    }

    fn token(&mut self, kind: Kind, start: usize, end: usize) -> Token<'a> {
        self.pos = end;
        let raw = &self.text[start..end];
        let text = match kind {
            Kind::LineComment => Cow::Borrowed(raw.trim_end()),
            Kind::BlockComment if raw.lines().any(|l| l.len() != l.trim_end().len()) => {
                let lines: Vec<&str> = raw.split('\n').map(str::trim_end).collect();
                Cow::Owned(lines.join("\n"))
            }
            _ => Cow::Borrowed(raw),
        };
        Token {
            kind,
            text,
            start,
            end,
        }
    }

    fn next_token(&mut self) -> Result<Option<Token<'a>>, FormatError> {
        // Horizontal whitespace (a lone `\r` is whitespace to the HCL parser).
        let skipped = self
            .rest()
            .find(|c: char| !matches!(c, ' ' | '\t' | '\r'))
            .unwrap_or(self.rest().len());
        self.pos += skipped;
        let start = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Ok(None);
        };
        let two = rest.get(..2).unwrap_or("");
        let tok = match c {
            '\n' => self.token(Kind::Newline, start, start + 1),
            '#' => self.line_comment(start),
            '/' if two == "//" => self.line_comment(start),
            '/' if two == "/*" => match rest[2..].find("*/") {
                Some(i) => self.token(Kind::BlockComment, start, start + 2 + i + 2),
                None => return Err(self.error(start, "unterminated comment")),
            },
            '"' => {
                let end = self.quoted(start)?;
                self.token(Kind::Str, start, end)
            }
            '<' if two == "<<" => {
                let end = self.heredoc(start)?;
                self.token(Kind::Heredoc, start, end)
            }
            c if is_id_start(c) => {
                let len = rest
                    .find(|c: char| !is_id_continue(c))
                    .unwrap_or(rest.len());
                self.token(Kind::Ident, start, start + len)
            }
            '0'..='9' => {
                let len = number_len(rest);
                self.token(Kind::Number, start, start + len)
            }
            _ => {
                let three = rest.get(..3).unwrap_or("");
                let (kind, len) = if three == "..." {
                    (Kind::Ellipsis, 3)
                } else if two == "::" {
                    (Kind::DoubleColon, 2)
                } else if matches!(two, "==" | "!=" | "<=" | ">=" | "&&" | "||" | "=>") {
                    (Kind::Op, 2)
                } else {
                    let kind = match c {
                        '{' => Kind::OBrace,
                        '}' => Kind::CBrace,
                        '[' => Kind::OBrack,
                        ']' => Kind::CBrack,
                        '(' => Kind::OParen,
                        ')' => Kind::CParen,
                        '=' => Kind::Equal,
                        '-' => Kind::Minus,
                        '!' => Kind::Bang,
                        ',' => Kind::Comma,
                        '.' => Kind::Dot,
                        '<' | '>' | '+' | '*' | '/' | '%' | '?' | ':' => Kind::Op,
                        other => {
                            return Err(
                                self.error(start, &format!("unexpected character `{other}`"))
                            )
                        }
                    };
                    (kind, c.len_utf8())
                };
                self.token(kind, start, start + len)
            }
        };
        Ok(Some(tok))
    }

    fn line_comment(&mut self, start: usize) -> Token<'a> {
        let len = self.rest().find('\n').unwrap_or(self.rest().len());
        self.token(Kind::LineComment, start, start + len)
    }

    /// The end (exclusive) of the quoted template starting at `start` (a `"`).
    fn quoted(&self, start: usize) -> Result<usize, FormatError> {
        let bytes = self.text.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => return Ok(i + 1),
                b'\\' => i += 2,
                b'\n' => break,
                b'$' | b'%'
                    if bytes.get(i + 1) == Some(&bytes[i]) && bytes.get(i + 2) == Some(&b'{') =>
                {
                    i += 3
                }
                b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => i = self.template_expr(i + 2)?,
                _ => i += 1,
            }
        }
        Err(self.error(start, "unterminated string"))
    }

    /// The end (exclusive) of the interpolation or directive whose body
    /// starts at `start` (just after `${` or `%{`), closing `}` included.
    fn template_expr(&self, start: usize) -> Result<usize, FormatError> {
        let bytes = self.text.as_bytes();
        let mut depth = 0usize;
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' if depth == 0 => return Ok(i + 1),
                b'}' => depth -= 1,
                b'"' => {
                    i = self.quoted(i)?;
                    continue;
                }
                b'#' => {
                    i = self.text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    continue;
                }
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    i = self.text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    continue;
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    match self.text[i + 2..].find("*/") {
                        Some(n) => i = i + 2 + n + 2,
                        None => break,
                    }
                    continue;
                }
                b'<' if bytes.get(i + 1) == Some(&b'<') => {
                    if let Ok(end) = self.heredoc(i) {
                        i = end;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        Err(self.error(start, "unterminated template interpolation"))
    }

    /// The end (exclusive) of the heredoc starting at `start` (`<<`): just
    /// after its closing marker.
    fn heredoc(&self, start: usize) -> Result<usize, FormatError> {
        let text = self.text;
        let mut i = start + 2;
        if text[i..].starts_with('-') {
            i += 1;
        }
        let rest = &text[i..];
        let mut chars = rest.chars();
        if !chars.next().is_some_and(is_id_start) {
            return Err(self.error(start, "expected a heredoc marker after `<<`"));
        }
        let len = rest
            .find(|c: char| !is_id_continue(c))
            .unwrap_or(rest.len());
        let marker = &rest[..len];
        i += len;
        if !text[i..].starts_with('\n') {
            return Err(self.error(i, "expected a newline after the heredoc marker"));
        }
        i += 1;
        let bytes = text.as_bytes();
        let mut line_start = true;
        while i <= bytes.len() {
            if line_start {
                let line = &text[i..];
                let indent = line
                    .find(|c: char| c != ' ' && c != '\t')
                    .unwrap_or(line.len());
                let after = &line[indent..];
                if let Some(tail) = after.strip_prefix(marker) {
                    if !tail.chars().next().is_some_and(is_id_continue) {
                        return Ok(i + indent + marker.len());
                    }
                }
            }
            if i == bytes.len() {
                break;
            }
            line_start = false;
            match bytes[i] {
                b'\n' => {
                    line_start = true;
                    i += 1;
                }
                b'$' | b'%'
                    if bytes.get(i + 1) == Some(&bytes[i]) && bytes.get(i + 2) == Some(&b'{') =>
                {
                    i += 3
                }
                b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => i = self.template_expr(i + 2)?,
                _ => i += 1,
            }
        }
        Err(self.error(start, &format!("unterminated heredoc `{marker}`")))
    }
}

fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut n = digits(0);
    if b.get(n) == Some(&b'.') && b.get(n + 1).is_some_and(u8::is_ascii_digit) {
        n += 1 + digits(n + 1);
    }
    if matches!(b.get(n), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(n + 1), Some(b'+' | b'-')));
        if b.get(n + 1 + sign).is_some_and(u8::is_ascii_digit) {
            n += 1 + sign + digits(n + 1 + sign);
        }
    }
    n
}

// ---------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------

/// One source line (a multi-line token keeps its line whole).
struct Line<'t, 'a> {
    tokens: &'t [Token<'a>],
    indent: usize,
}

impl Line<'_, '_> {
    fn is_blank(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The trailing comment, if the line has code before it.
    fn trailing_comment(&self) -> Option<usize> {
        let last = self.tokens.len().checked_sub(1)?;
        (last > 0 && self.tokens[last].is_comment()).then_some(last)
    }

    /// The code part (without a trailing comment).
    fn code(&self) -> &[Token<'_>] {
        match self.trailing_comment() {
            Some(i) => &self.tokens[..i],
            None => self.tokens,
        }
    }

    /// The index of the `=` of a single-line attribute (or object element)
    /// whose `=` can be aligned with its neighbours.
    fn assign(&self) -> Option<usize> {
        let code = self.code();
        if code.iter().any(|t| t.is_multiline() || t.is_comment()) {
            return None;
        }
        let mut depth = 0isize;
        let mut eq = None;
        for (i, t) in code.iter().enumerate() {
            if depth < 0 {
                return None;
            }
            if t.kind == Kind::Equal && depth == 0 && eq.is_none() {
                eq = Some(i);
            }
            depth += t.bracket_change();
        }
        match eq {
            Some(i) if i > 0 && i + 1 < code.len() && depth == 0 => Some(i),
            _ => None,
        }
    }

    fn last_code_kind(&self) -> Option<Kind> {
        self.tokens
            .iter()
            .rev()
            .find(|t| !t.is_comment())
            .map(|t| t.kind)
    }

    fn first_kind(&self) -> Option<Kind> {
        self.tokens.first().map(|t| t.kind)
    }
}

fn layout(tokens: &[Token<'_>]) -> String {
    let mut lines = split_lines(tokens);
    assign_indents(&mut lines);
    let lines = drop_blank_lines(lines);

    // Columns: per line, where `=` goes (chars after the indent, before
    // `=`) and where a trailing comment goes.
    let mut eq_col: Vec<Option<usize>> = vec![None; lines.len()];
    let mut comment_col: Vec<Option<usize>> = vec![None; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        if lines[i].assign().is_none() {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].assign().is_some() {
            i += 1;
        }
        let run = start..i;
        let key_width = run
            .clone()
            .filter_map(|j| {
                lines[j]
                    .assign()
                    .map(|eq| width(&render(&lines[j].tokens[..eq])))
            })
            .max()
            .unwrap_or(0);
        eq_col[run.clone()].fill(Some(key_width + 1));
        // Trailing comments of consecutive lines in the run line up too.
        let mut j = run.start;
        while j < run.end {
            if lines[j].trailing_comment().is_none() {
                j += 1;
                continue;
            }
            let cstart = j;
            while j < run.end && lines[j].trailing_comment().is_some() {
                j += 1;
            }
            let code_width = (cstart..j)
                .map(|k| render_line_code(&lines[k], eq_col[k]).chars().count())
                .max()
                .unwrap_or(0);
            comment_col[cstart..j].fill(Some(code_width + 1));
        }
    }

    let mut out = String::new();
    for (n, line) in lines.iter().enumerate() {
        if line.is_blank() {
            out.push('\n');
            continue;
        }
        let indent = "  ".repeat(line.indent);
        let mut text = render_line_code(line, eq_col[n]);
        if let Some(c) = line.trailing_comment() {
            let pad = match comment_col[n] {
                Some(col) => col.saturating_sub(text.chars().count()).max(1),
                None => 1,
            };
            text.push_str(&" ".repeat(pad));
            text.push_str(&line.tokens[c].text);
        }
        out.push_str(&indent);
        out.push_str(&text);
        out.push('\n');
    }
    out
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// The code part of a line (no indent, no trailing comment), with `=`
/// placed at `eq_col` when the line is part of an alignment run.
fn render_line_code(line: &Line<'_, '_>, eq_col: Option<usize>) -> String {
    let code = line.code();
    match (line.assign(), eq_col) {
        (Some(eq), Some(col)) => {
            let key = render(&code[..eq]);
            let pad = col.saturating_sub(width(&key)).max(1);
            let mut s = key;
            s.push_str(&" ".repeat(pad));
            push_tokens(&mut s, code, eq);
            s
        }
        _ => render(code),
    }
}

fn render(tokens: &[Token<'_>]) -> String {
    let mut s = String::new();
    push_tokens(&mut s, tokens, 0);
    s
}

/// Append `tokens[from..]`, spaced by [`space_between`]; the tokens before
/// `from` are context only.
fn push_tokens(s: &mut String, tokens: &[Token<'_>], from: usize) {
    for i in from..tokens.len() {
        if i > from && space_between(tokens, i) {
            s.push(' ');
        }
        s.push_str(&tokens[i].text);
    }
}

fn split_lines<'t, 'a>(tokens: &'t [Token<'a>]) -> Vec<Line<'t, 'a>> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        if t.kind == Kind::Newline {
            lines.push(Line {
                tokens: &tokens[start..i],
                indent: 0,
            });
            start = i + 1;
        }
    }
    if start < tokens.len() {
        lines.push(Line {
            tokens: &tokens[start..],
            indent: 0,
        });
    }
    lines
}

/// Indent by bracket nesting. A line that opens several brackets adds one
/// level; closing brackets at the start of a line dedent that line itself.
/// When those closers close only part of a level (`}, {` inside `[{ ... }]`)
/// the line sits at the level's opening line, and what it opens again joins
/// that level, so the elements of a `[{ ... }, { ... }]` list line up.
fn assign_indents(lines: &mut [Line<'_, '_>]) {
    /// Close `n` brackets; true when the last level was only partly closed.
    fn close(stack: &mut Vec<usize>, mut n: usize) -> bool {
        while n > 0 {
            let Some(top) = stack.last_mut() else {
                return false;
            };
            if n >= *top {
                n -= *top;
                stack.pop();
            } else {
                *top -= n;
                return true;
            }
        }
        false
    }
    let mut stack: Vec<usize> = Vec::new();
    for line in lines.iter_mut() {
        let leading_closers = line
            .tokens
            .iter()
            .take_while(|t| t.bracket_change() < 0)
            .count();
        let partial = close(&mut stack, leading_closers);
        line.indent = stack.len() - usize::from(partial);
        let net: isize = line.tokens[leading_closers..]
            .iter()
            .map(Token::bracket_change)
            .sum();
        if net > 0 {
            match stack.last_mut() {
                Some(top) if partial => *top += net.unsigned_abs(),
                _ => stack.push(net.unsigned_abs()),
            }
        } else if net < 0 {
            close(&mut stack, net.unsigned_abs());
        }
    }
}

/// At most one blank line in a row; none at the start or end of the file,
/// right after a line ending in `{` or right before a line starting with `}`.
fn drop_blank_lines<'t, 'a>(lines: Vec<Line<'t, 'a>>) -> Vec<Line<'t, 'a>> {
    let mut kept: Vec<Line<'t, 'a>> = Vec::with_capacity(lines.len());
    let mut pending_blank = false;
    for line in lines {
        if line.is_blank() {
            pending_blank = true;
            continue;
        }
        if pending_blank {
            let after_open = kept
                .last()
                .is_some_and(|l| l.last_code_kind() == Some(Kind::OBrace));
            let before_close = line.first_kind() == Some(Kind::CBrace);
            if !kept.is_empty() && !after_open && !before_close {
                kept.push(Line {
                    tokens: &[],
                    indent: 0,
                });
            }
            pending_blank = false;
        }
        kept.push(line);
    }
    kept
}

/// Whether a space goes between `tokens[i - 1]` and `tokens[i]`.
fn space_between(tokens: &[Token<'_>], i: usize) -> bool {
    use Kind::*;
    let a = &tokens[i - 1];
    let b = &tokens[i];
    let before = i.checked_sub(2).map(|j| &tokens[j]);
    if a.is_comment() || b.is_comment() {
        return true;
    }
    let keyword = |t: &Token<'_>, prev: Option<&Token<'_>>| {
        t.kind == Ident
            && matches!(&*t.text, "in" | "if")
            && !prev.is_some_and(|p| p.kind == Dot || p.kind == DoubleColon)
    };
    match (a.kind, b.kind) {
        (DoubleColon, _) | (_, DoubleColon) => false,
        (Dot, _) | (_, Dot) => false,
        (_, Comma) | (_, Ellipsis) => false,
        (Comma, _) => true,
        (Ident, OParen) | (Ident, OBrack) => keyword(a, before),
        (Number | Str | CBrack | CParen | CBrace, OBrack) => false,
        (Minus, _) => before.is_some_and(|t| !minus_after_is_negation(t)),
        (Bang, _) => false,
        (OBrace, CBrace) => false,
        (OBrace, _) | (_, CBrace) => true,
        (OBrack | OParen, _) => false,
        (_, CBrack | CParen) => false,
        _ => true,
    }
}

/// Whether a `-` right after `t` is a negation: `t` cannot end an operand.
fn minus_after_is_negation(t: &Token<'_>) -> bool {
    use Kind::*;
    match t.kind {
        OBrace | OBrack | OParen | Equal | Comma | Op | Minus | Bang | LineComment
        | BlockComment | Newline => true,
        Ident => matches!(&*t.text, "in" | "if"),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
