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
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Format, and check the result is stable and itself formatted.
    #[track_caller]
    fn fmt(src: &str) -> String {
        let once = match format_source(src) {
            Ok(s) => s,
            Err(e) => panic!("format failed: {e}\n--- input\n{src}"),
        };
        let twice = format_source(&once).expect("formatted output formats");
        assert_eq!(once, twice, "not idempotent\n--- input\n{src}");
        assert!(is_formatted(&once).unwrap());
        once
    }

    /// A snapshot of input and output side by side, for review.
    fn show(src: &str) -> String {
        format!("{src}\n==== formatted ====\n{}", fmt(src))
    }

    const MESSY_SPACING: &str = concat!(
        "node\"web\"   \"x\"{\n",
        "count=2\n",
        "   image   =    \"host\"\n",
        "\tcpus =1+2* 3\n",
        "labels={role=\"web\",tier  =  \"a\"}\n",
        "networks = [ network.a , network.b ]\n",
        "address = cidrhost( network.lab.cidr , 10 )\n",
        "}\n",
    );

    #[test]
    fn messy_spacing() {
        insta::assert_snapshot!(show(MESSY_SPACING));
    }

    const ALIGNMENT_RUNS_BROKEN_BY_BLANK_LINES_AND_COMMENTS: &str = concat!(
        "variable \"edge_count\" {\n",
        "  type = number\n",
        "  default = 2\n",
        "\n",
        "  description = \"how many edges\"\n",
        "  sensitive = false\n",
        "  # a comment breaks the run\n",
        "  x = 1\n",
        "  longer_name = 2\n",
        "  nested {\n",
        "    a = 1\n",
        "  }\n",
        "  after_block = 3\n",
        "  b = 4\n",
        "}\n",
    );

    #[test]
    fn alignment_runs_broken_by_blank_lines_and_comments() {
        insta::assert_snapshot!(show(ALIGNMENT_RUNS_BROKEN_BY_BLANK_LINES_AND_COMMENTS));
    }

    const MULTI_LINE_VALUE_BREAKS_THE_RUN: &str = concat!(
        "profile \"cdn:basic\" {\n",
        "  image = local.image\n",
        "  cpus = 1\n",
        "  labels = {\n",
        "  tier = \"cdn\"\n",
        "  role    = \"edge\"\n",
        "  }\n",
        "  memory = \"512MiB\"\n",
        "  x = 1\n",
        "}\n",
    );

    #[test]
    fn multi_line_value_breaks_the_run() {
        insta::assert_snapshot!(show(MULTI_LINE_VALUE_BREAKS_THE_RUN));
    }

    const NESTED_BLOCKS: &str = concat!(
        "variable \"n\" {\n",
        "type = number\n",
        "validation {\n",
        "condition = var.n > 0 && var.n <= 64\n",
        "error_message = \"n must be 1..64\"\n",
        "}\n",
        "}\n",
        "node \"a\" {\n",
        "      lifecycle {\n",
        "  create_before_destroy = true\n",
        "         }\n",
        "  empty {}\n",
        "  empty_multi {\n",
        "  }\n",
        "}\n",
    );

    #[test]
    fn nested_blocks() {
        insta::assert_snapshot!(show(NESTED_BLOCKS));
    }

    const ONE_LINE_BLOCKS: &str = concat!(
        "platform   \"ssh\"   \"pool-a\"   {\n",
        "  user = \"root\"\n",
        "  identity_file = \"~/.ssh/id_ed25519\"\n",
        "  host \"edge-1\"{address=\"192.0.2.10\"}\n",
        "  host \"edge-2\" {   address   =   \"192.0.2.11\"   }\n",
        "  host \"edge-3\" {}\n",
        "}\n",
    );

    #[test]
    fn one_line_blocks() {
        insta::assert_snapshot!(show(ONE_LINE_BLOCKS));
    }

    const MULTI_LINE_MAPS_AND_LISTS: &str = concat!(
        "locals {\n",
        "names = [\n",
        "\"a\",\n",
        "    \"b\",\n",
        "]\n",
        "nested = {\n",
        "one = { x = 1 }\n",
        "two_two = [\n",
        "1, 2,\n",
        "3,\n",
        "]\n",
        "\"quoted key\" = 3\n",
        "}\n",
        "list_of_maps = [{\n",
        "a = 1\n",
        "}, {\n",
        "bb = 2\n",
        "}]\n",
        "call = f(a, {\n",
        "k = 1\n",
        "}, b)\n",
        "pending = [{\n",
        "x = 1\n",
        "}\n",
        "]\n",
        "merged = merge(\n",
        "local.a,\n",
        "{ c = 3 },\n",
        ")\n",
        "}\n",
    );

    #[test]
    fn multi_line_maps_and_lists() {
        insta::assert_snapshot!(show(MULTI_LINE_MAPS_AND_LISTS));
    }

    const FOR_EXPRESSIONS: &str = concat!(
        "locals {\n",
        "upper = [for s in var.list: upper(s)]\n",
        "by_name = {for n in var.nodes: n.name => n.address}\n",
        "grouped = {for k,v in var.m : k => v...}\n",
        "filtered = [\n",
        "for n in var.nodes : n.name\n",
        "if n.enabled\n",
        "]\n",
        "in_tuple = [for x in [1, 2]: x]\n",
        "}\n",
    );

    #[test]
    fn for_expressions() {
        insta::assert_snapshot!(show(FOR_EXPRESSIONS));
    }

    const OPERATORS_SPLATS_AND_NEGATION: &str = concat!(
        "locals {\n",
        "a = node.edge[*].address\n",
        "b = node.edge.*.address\n",
        "c = var.x ? -1 : - 2\n",
        "d = var.a-var.b\n",
        "e = !var.flag\n",
        "f = (var.a+1)*-var.b\n",
        "g = var.list[0] [1]\n",
        "h = var.n % 2 == 0 || var.n != 3\n",
        "i = [-1, -var.x, 1 - 2]\n",
        "j = length(var.list)>= 2\n",
        "k = var.some-name\n",
        "l = 1.5e3\n",
        "}\n",
    );

    #[test]
    fn operators_splats_and_negation() {
        insta::assert_snapshot!(show(OPERATORS_SPLATS_AND_NEGATION));
    }

    const HEREDOCS_ARE_UNTOUCHED: &str = concat!(
        "node \"a\" {\n",
        "script = <<EOT\n",
        "  keep   this   \n",
        "\n",
        "\n",
        "\n",
        "   ${var.x}   \n",
        "EOT\n",
        "    indented = <<-EOT\n",
        "        two\n",
        "      one\n",
        "    EOT\n",
        "  after = 1\n",
        "  call = format(<<EOT\n",
        "%s\n",
        "EOT\n",
        ", \"x\")\n",
        "}\n",
    );

    #[test]
    fn heredocs_are_untouched() {
        insta::assert_snapshot!(show(HEREDOCS_ARE_UNTOUCHED));
    }

    const COMMENTS_EVERYWHERE: &str = concat!(
        "# leading comment   \n",
        "// slash comment\n",
        "/* block\n",
        "   comment   \n",
        "*/\n",
        "node \"a\" { # after the brace\n",
        "  # inside\n",
        "  image = \"host\" # trailing\n",
        "  cpus = 2 // trailing slash\n",
        "  memory = /* inline */ \"1G\"\n",
        "  labels = {\n",
        "    # in a map\n",
        "    a = 1 # one\n",
        "    bbb = 2 # two\n",
        "  }\n",
        "  list = [ # opens\n",
        "    1, /* one */\n",
        "  ]\n",
        "  # before the close\n",
        "} # after the close\n",
        "# at the end\n",
    );

    #[test]
    fn comments_everywhere() {
        insta::assert_snapshot!(show(COMMENTS_EVERYWHERE));
    }

    #[test]
    fn crlf_becomes_lf() {
        let src = "node \"a\" {\r\n  image=\"host\"\r\n  cpus = 1\r\n}\r\n";
        let out = fmt(src);
        assert!(!out.contains('\r'));
        insta::assert_snapshot!(out);
    }

    const BLANK_LINES: &str = concat!(
        "\n",
        "\n",
        "node \"a\" {\n",
        "\n",
        "\n",
        "  image = \"host\"\n",
        "\n",
        "\n",
        "\n",
        "  cpus = 1\n",
        "\n",
        "}\n",
        "\n",
        "\n",
        "\n",
        "network \"b\" {}\n",
        "\n",
        "\n",
    );

    #[test]
    fn blank_lines() {
        insta::assert_snapshot!(show(BLANK_LINES));
    }

    const STRINGS_ARE_UNTOUCHED: &str = concat!(
        "locals {\n",
        "a = \"  spaces   inside  \"\n",
        "b = \"${ var.x }-${var.y}\"\n",
        "c = \"escaped \\\" quote = { [ # not a comment\"\n",
        "d = \"$${literal} %%{also}\"\n",
        "e = \"%{ if var.x }yes%{ else }no%{ endif }\"\n",
        "f = \"${ {a = \"}\"}.a }\"\n",
        "}\n",
    );

    #[test]
    fn strings_are_untouched() {
        insta::assert_snapshot!(show(STRINGS_ARE_UNTOUCHED));
    }

    #[test]
    fn full_sample_testbed() {
        insta::assert_snapshot!(fmt(SAMPLE));
    }

    #[test]
    fn formatted_input_is_unchanged() {
        let once = fmt(SAMPLE);
        assert_eq!(fmt(&once), once);
        let tidy = "node \"a\" {\n  image = \"host\"\n  cpus  = 1\n}\n";
        assert_eq!(fmt(tidy), tidy);
        assert!(is_formatted(tidy).unwrap());
        assert!(!is_formatted("node \"a\" {\n  cpus=1\n}\n").unwrap());
    }

    #[test]
    fn empty_and_comment_only_files() {
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("\n\n  \n"), "");
        assert_eq!(fmt("# just a comment"), "# just a comment\n");
        assert_eq!(fmt("a=1"), "a = 1\n");
        assert_eq!(fmt("a = 1\n\n\n"), "a = 1\n");
    }

    #[test]
    fn trailing_whitespace_and_tabs() {
        let out = fmt("node \"a\" {\t\n\timage = \"host\"   \n  cpus\t=\t1  # c  \n}   ");
        assert_eq!(
            out,
            "node \"a\" {\n  image = \"host\"\n  cpus  = 1 # c\n}\n"
        );
    }

    #[test]
    fn function_namespaces_and_legacy_index() {
        let out = fmt("a = provider :: tg :: f( 1 )\nb = var.list.0.name\n");
        assert_eq!(out, "a = provider::tg::f(1)\nb = var.list.0.name\n");
    }

    #[test]
    fn syntax_errors_carry_their_location() {
        let err = format_source("node \"a\" {\n  image = \n}\n").unwrap_err();
        assert_eq!(err.kind, FormatErrorKind::Syntax);
        assert_eq!((err.line, err.column), (2, 11));
        assert!(!err.message.is_empty());

        let err = format_source("node \"a\" {\n  image = \"host\"\n").unwrap_err();
        assert_eq!(err.line, 2);

        let err = format_source("a = 1\nb = \"unterminated\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(
            err.to_string(),
            format!("2:{}: {}", err.column, err.message)
        );

        let err = format_source("x = <<EOT\nno end\n").unwrap_err();
        assert_eq!(err.kind, FormatErrorKind::Syntax);

        // Two attributes in a one-line block is not HCL.
        let err = format_source("host \"a\" { a = 1  b = 2 }\n").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn self_check_refuses_output_that_differs() {
        let src = "a = 1 # keep me\nb = [1, 2]\n";
        let tokens = lex(src).unwrap();
        let body = || parse(src).unwrap();
        assert!(verify(src, &tokens, body(), "a = 1 # keep me\nb = [1, 2]\n").is_ok());
        for bad in [
            "a = 1\nb = [1, 2]\n",           // the comment is gone
            "a = 1 # keep me\nb = [1, 3]\n", // a value changed
            "a = 1 # keep me\nb = [1, 2\n",  // a bracket is gone
        ] {
            let err = verify(src, &tokens, body(), bad).unwrap_err();
            assert_eq!(err.kind, FormatErrorKind::Internal);
            assert!(
                err.message.starts_with("internal formatter error: "),
                "{bad:?}: {}",
                err.message
            );
        }
        // Same tokens, but a lost line break makes it invalid.
        let src = "a = 1\nb = 2\n";
        let tokens = lex(src).unwrap();
        let err = verify(src, &tokens, parse(src).unwrap(), "a = 1 b = 2\n").unwrap_err();
        assert_eq!(err.kind, FormatErrorKind::Internal);
        assert!(err.message.contains("does not parse"), "{}", err.message);
    }

    #[test]
    fn crlf_error_location_matches_the_file() {
        let err = format_source("a = 1\r\nb = )\r\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 5));
    }

    /// Inputs of the snapshot tests, reused by the property tests.
    const CORPUS: &[&str] = &[
        MESSY_SPACING,
        ALIGNMENT_RUNS_BROKEN_BY_BLANK_LINES_AND_COMMENTS,
        MULTI_LINE_VALUE_BREAKS_THE_RUN,
        NESTED_BLOCKS,
        ONE_LINE_BLOCKS,
        MULTI_LINE_MAPS_AND_LISTS,
        FOR_EXPRESSIONS,
        OPERATORS_SPLATS_AND_NEGATION,
        HEREDOCS_ARE_UNTOUCHED,
        COMMENTS_EVERYWHERE,
        BLANK_LINES,
        STRINGS_ARE_UNTOUCHED,
        SAMPLE,
    ];

    const SAMPLE: &str = r#"testbed {                       # optional
  name        = "cdn-smoke"
  description = "edge + origin smoke bed"
}

variable "edge_count" {
  type        = number          # string | number | bool | list(...) | map(...)
  default     = 2
  description = "how many edges"
  sensitive   = false
  validation {
    condition     = var.edge_count > 0 && var.edge_count <= 64
    error_message = "edge_count must be 1..64"
  }
}

locals {
  image = "host"
}

profile "cdn:basic" {           # a named node spec
  image  = local.image
  cpus   = 1
  memory = "512MiB"
  labels = { tier = "cdn" }
}

network "lab" {
  cidr = "10.42.0.0/24"         # optional: omitted = a free /24 picked at plan time
  nat  = false                  # egress to the host's outside world; default false
}

node "edge" {
  count    = var.edge_count     # or for_each = toset([...]) / a map
  profile  = "cdn:basic"        # or image = "...", cpus, memory directly
  network  = network.lab        # or networks = [network.lab, network.mgmt]
  platform = "netns"            # optional: omitted = tg picks a platform that fits
  labels   = { role = "edge" }  # become Ansible groups
}

node "origin" {
  image   = "host"
  network = network.lab
  address = cidrhost(network.lab.cidr, 10)   # optional fixed address
  depends_on = [node.edge]
}

package "fleche" {
  version = "16.3-1"            # exact version; omitted = newest
  source  = "apt"               # "apt" (default) | deb = "path/to/file.deb"
  on      = [node.edge]         # where it is installed
}

package "nginx" {
  requires {                    # no `on`: tg allocates a node that fits
    profile = "cdn:basic"
  }
}

output "edge_addresses" {
  value       = node.edge[*].address
  description = "edge IPs"
}

platform "ssh" "pool-a" {       # shared remote hosts (the pool)
  user          = "root"
  identity_file = "~/.ssh/id_ed25519"
  known_hosts   = "~/.ssh/known_hosts"
  host "edge-1" { address = "192.0.2.10" }
}

state {                         # optional; default: sqlite at .tg/state.db
  backend = "postgres"          # "sqlite" | "postgres"
  url     = env("TG_PG_URL")
}
"#;

    // ---- property tests ----------------------------------------------

    proptest! {
        // 256 cases each by default; `PROPTEST_CASES=20000` for a long run.
        #![proptest_config(ProptestConfig::default())]

        /// Any text: an answer (formatted text or an error), never a panic.
        #[test]
        fn never_panics_on_arbitrary_text(src in ".{0,200}") {
            let _ = format_source(&src);
        }

        /// HCL-ish noise reaches deeper into the lexer than random text.
        #[test]
        fn never_panics_on_hcl_like_text(
            src in r#"([a-z]{1,3}|[ \t\n]|[{}\[\]()=,.:?!<>*/%+-]|"|#|//|/\*|\*/|<<-?EOT\n|\n *EOT|\$\{|%\{|[0-9.e]{1,3}|\r\n){0,60}"#
        ) {
            if let Ok(out) = format_source(&src) {
                prop_assert_eq!(format_source(&out).ok(), Some(out.clone()));
            }
        }

        /// Formatting does not depend on the input's spacing: indentation,
        /// runs of spaces, trailing whitespace, the number of blank lines and
        /// CRLF are all undone.
        #[test]
        fn layout_ignores_the_input_spacing(
            which in 0..CORPUS.len(),
            rolls in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            let src = CORPUS[which];
            let respaced = perturb(src, &rolls);
            prop_assert_eq!(format_source(&respaced), format_source(src), "--- respaced\n{}", respaced);
        }

        /// Generated testbeds: formatting succeeds (so the self-check found
        /// the same tokens and the same meaning) and is idempotent.
        #[test]
        fn generated_testbeds_format_idempotently(src in testbed()) {
            let once = format_source(&src);
            prop_assert!(once.is_ok(), "{:?}\n--- input\n{}", once, src);
            let once = once.unwrap_or_default();
            prop_assert_eq!(format_source(&once).ok(), Some(once.clone()));
        }
    }

    #[test]
    fn perturb_really_respaces() {
        for src in CORPUS {
            let respaced = perturb(src, &[4, 5, 200, 3, 17]);
            assert_ne!(&respaced, src);
            assert_eq!(format_source(&respaced), format_source(src));
        }
    }

    /// Re-space `src` at random without changing its meaning.
    fn perturb(src: &str, rolls: &[u8]) -> String {
        let text = src.replace("\r\n", "\n");
        let tokens = lex(&text).expect("corpus lexes");
        let mut roll = rolls.iter().copied().cycle();
        let mut next = move || roll.next().unwrap_or(0);
        let spaces = |n: u8| -> String {
            (0..n)
                .map(|i| if i % 3 == 2 { '\t' } else { ' ' })
                .collect()
        };
        let newline = if next() % 4 == 0 { "\r\n" } else { "\n" };
        let mut out = String::new();
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            let gap = &text[if i == 0 { 0 } else { tokens[i - 1].end }..t.start];
            if t.kind == Kind::Newline {
                out.push_str(&spaces(next() % 3));
                let run = tokens[i..]
                    .iter()
                    .take_while(|t| t.kind == Kind::Newline)
                    .count();
                let emit = if run == 1 {
                    1
                } else {
                    2 + usize::from(next() % 3)
                };
                out.push_str(&newline.repeat(emit));
                i += run;
                if let Some(t) = tokens.get(i) {
                    out.push_str(&spaces(next() % 7));
                    out.push_str(&text[t.start..t.end]);
                    i += 1;
                }
                continue;
            }
            if i == 0 {
                out.push_str(&spaces(next() % 7));
            } else if !gap.is_empty() {
                out.push_str(&spaces(1 + next() % 3));
            }
            out.push_str(&text[t.start..t.end]);
            i += 1;
        }
        out
    }

    fn ws() -> impl Strategy<Value = String> {
        prop_oneof![Just(""), Just(" "), Just("   "), Just("\t")].prop_map(String::from)
    }

    fn sep() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just("\n"),
            1 => Just("\n\n"),
            1 => Just("\n\n\n  \n"),
            1 => Just("  # note\n"),
            1 => Just(" // note \n"),
            1 => Just("\r\n"),
            1 => Just("\n/* multi\n  line */\n"),
        ]
        .prop_map(String::from)
    }

    fn key() -> impl Strategy<Value = String> {
        "[a-z][a-z_-]{0,12}"
    }

    fn expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            "-?[0-9]{1,4}",
            "\"[a-z ${}%]{0,10}\""
                .prop_filter("valid template", |s| !s.contains("${") && !s.contains("%{")),
            Just("var.edge_count".to_string()),
            Just("node.edge[*].address".to_string()),
            Just("true".to_string()),
            Just("null".to_string()),
            Just("\"${var.x}-y\"".to_string()),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                (
                    proptest::collection::vec(inner.clone(), 0..4),
                    ws(),
                    any::<bool>()
                )
                    .prop_map(|(items, w, multi)| {
                        if multi {
                            format!(
                                "[\n{}\n]",
                                items
                                    .iter()
                                    .map(|i| format!("{w}{i},"))
                                    .collect::<Vec<_>>()
                                    .join("\n")
                            )
                        } else {
                            format!("[{w}{}{w}]", items.join(&format!("{w},{w}")))
                        }
                    }),
                (
                    proptest::collection::vec((key(), inner.clone()), 0..4),
                    ws(),
                    any::<bool>()
                )
                    .prop_map(|(items, w, multi)| {
                        let items: Vec<String> = items
                            .iter()
                            .enumerate()
                            .map(|(n, (k, v))| format!("{k}_{n}{w}={w}{v}"))
                            .collect();
                        if multi {
                            format!("{{\n{}\n}}", items.join("\n"))
                        } else {
                            format!("{{{w}{}{w}}}", items.join(", "))
                        }
                    }),
                (inner.clone(), inner.clone(), ws())
                    .prop_map(|(a, b, w)| format!("({a}){w}+{w}({b})")),
                (inner.clone(), ws()).prop_map(|(a, w)| format!("length({w}{a}{w})")),
                (inner.clone(), inner, ws())
                    .prop_map(|(a, b, w)| format!("var.flag{w}?{w}({a}){w}:{w}({b})")),
            ]
        })
    }

    fn attribute() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            6 => expr(),
            1 => Just("<<EOT\n  raw   text  \n\n\nEOT\n".to_string()),
            1 => Just("<<-EOT\n    indented\n  EOT\n".to_string()),
        ];
        (ws(), key(), ws(), ws(), value, sep()).prop_map(|(i, k, a, b, v, s)| {
            // A heredoc ends its own line; anything else needs a separator.
            let s = if v.ends_with('\n') {
                s.trim_start_matches(['\n', '\r']).to_string()
            } else {
                s
            };
            let s = if v.ends_with('\n') && !s.is_empty() && !s.starts_with('\n') {
                format!("\n{s}")
            } else {
                s
            };
            format!("{i}{k}_KEY{a}={b}{v}{s}")
        })
    }

    fn block() -> impl Strategy<Value = String> {
        let leaf = (
            key(),
            proptest::collection::vec("\"[a-z:-]{0,8}\"", 0..3),
            ws(),
            proptest::collection::vec(attribute(), 0..6),
            sep(),
        )
            .prop_map(|(t, labels, w, attrs, s)| {
                format!(
                    "{t}{w}{}{w}{{\n{}}}{s}",
                    labels.join(" "),
                    unique_keys(attrs)
                )
            });
        leaf.prop_recursive(2, 8, 3, |inner| {
            (
                key(),
                proptest::collection::vec(prop_oneof![attribute(), inner], 0..5),
                sep(),
            )
                .prop_map(|(t, items, s)| format!("{t} {{\n{}}}{s}", unique_keys(items)))
        })
    }

    /// Attribute names must be unique within a body: number them.
    fn unique_keys(items: Vec<String>) -> String {
        items
            .iter()
            .enumerate()
            .map(|(n, item)| item.replacen("_KEY", &format!("_{n}"), 1))
            .collect()
    }

    fn testbed() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop_oneof![block(), attribute()], 0..6).prop_map(unique_keys)
    }
}
