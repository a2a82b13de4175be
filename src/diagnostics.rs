//! Diagnostics: user-facing problems with a source location.
//!
//! Everything a user can get wrong in a testbed becomes a [`Diagnostic`]
//! carrying the file, line and column where it happened. This module owns the
//! source map (file names and texts, byte offset → line/column) and the two
//! renderings: human text (`file:line:col: error: ...` plus a snippet) and the
//! JSON document of `tg validate -json` (see `schemas/validate.schema.json`).
//! It does not decide what is an error: the `config` module does.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Identifies a source file inside a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub usize);

/// A byte range inside one source file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub range: Range<usize>,
}

impl Span {
    pub fn new(file: FileId, range: Range<usize>) -> Span {
        Span { file, range }
    }
}

/// A 1-based position as users count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    pub byte: usize,
}

/// One source file: its display path (relative to the testbed directory
/// when it lies inside it) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: String) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// Line and column (both 1-based; column counts characters) of a byte offset.
    pub fn position(&self, byte: usize) -> Position {
        let byte = byte.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&byte) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line_idx];
        let mut end = byte;
        while end > start && !self.text.is_char_boundary(end) {
            end -= 1;
        }
        // At the `\n` of a CRLF line break, the `\r` before it is part of
        // the line break, not a column.
        let column = self.text[start..end].trim_end_matches('\r').chars().count() + 1;
        Position {
            line: line_idx + 1,
            column,
            byte,
        }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map(|e| e.saturating_sub(1))
            .unwrap_or(self.text.len());
        self.text[start..end.max(start)].trim_end_matches('\r')
    }
}

/// All source files of one testbed.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(self.files.len() - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(i), f))
    }

    pub fn path(&self, id: FileId) -> &Path {
        &self.files[id.0].path
    }
}

/// One problem found in a testbed (or about the run), with where and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// One line: what is wrong. Lowercase, no trailing period.
    pub summary: String,
    /// Where it is, when it comes from a source file.
    pub span: Option<Span>,
    /// What to do about it (may be several lines).
    pub help: Option<String>,
    /// Extra lines of detail (a cycle, the list of candidates, ...).
    pub detail: Option<String>,
}

impl Diagnostic {
    pub fn error(summary: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            summary: one_line(summary.into()),
            span: None,
            help: None,
            detail: None,
        }
    }

    pub fn warning(summary: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(summary)
        }
    }

    pub fn at(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }

    pub fn at_opt(mut self, span: Option<Span>) -> Diagnostic {
        self.span = span;
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Diagnostic {
        self.detail = Some(detail.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A summary is one line even when it quotes user text (a label with a
/// line break in it): control characters are written as escapes, and so
/// are bidirectional controls (they would reorder the line).
fn one_line(s: String) -> String {
    let special = |c: char| c.is_control() || crate::names::is_bidi_control(c);
    if !s.chars().any(special) {
        return s;
    }
    s.chars()
        .flat_map(|c| -> Vec<char> {
            if special(c) {
                c.escape_default().collect()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A list of diagnostics gathered over one run; errors do not stop the
/// gathering, so a user sees every problem at once.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.0.len() - self.error_count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Sort by file, then position, errors first at equal positions; keeps
    /// output stable whatever order the checks ran in.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            let ka = a.span.as_ref().map(|s| (s.file, s.range.start));
            let kb = b.span.as_ref().map(|s| (s.file, s.range.start));
            ka.cmp(&kb)
                .then(a.severity.cmp(&b.severity))
                .then(a.summary.cmp(&b.summary))
        });
        self.0.dedup();
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// Render one diagnostic as text: a `path:line:col: error: summary` header
/// (the format editors and CI annotators parse), the source line with a
/// caret, then the detail and help.
pub fn render(d: &Diagnostic, sources: &SourceMap) -> String {
    let mut out = String::new();
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    match &d.span {
        Some(span) => {
            let file = sources.get(span.file);
            let pos = file.position(span.range.start);
            let _ = writeln!(
                out,
                "{}:{}:{}: {sev}: {}",
                file.path.display(),
                pos.line,
                pos.column,
                d.summary
            );
            let line = file.line_text(pos.line);
            let gutter = pos.line.to_string();
            let _ = writeln!(out, "{:w$} |", "", w = gutter.len());
            let _ = writeln!(out, "{gutter} | {}", visible(line));
            let end = file.position(span.range.end.max(span.range.start + 1));
            let width = if end.line == pos.line {
                end.column.saturating_sub(pos.column).max(1)
            } else {
                line.chars().count().saturating_sub(pos.column - 1).max(1)
            };
            // Tabs stay tabs under the line, so the caret lines up however
            // wide the terminal shows them.
            let indent: String = line
                .chars()
                .take(pos.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(
                out,
                "{:w$} | {indent}{}",
                "",
                "^".repeat(width),
                w = gutter.len()
            );
        }
        None => {
            let _ = writeln!(out, "{sev}: {}", d.summary);
        }
    }
    if let Some(detail) = &d.detail {
        for l in detail.lines() {
            let _ = writeln!(out, "  {l}");
        }
    }
    if let Some(help) = &d.help {
        let mut lines = help.lines();
        if let Some(first) = lines.next() {
            let _ = writeln!(out, "  help: {first}");
        }
        for l in lines {
            let _ = writeln!(out, "        {l}");
        }
    }
    out
}

/// A source line as it can be printed: control characters (a NUL, an
/// escape) become their visible Unicode pictures (`␀`), one character each,
/// and bidirectional controls (which would reorder the line on a terminal)
/// the replacement character.
fn visible(line: &str) -> std::borrow::Cow<'_, str> {
    let special = |c: char| (c.is_control() && c != '\t') || crate::names::is_bidi_control(c);
    if !line.chars().any(special) {
        return line.into();
    }
    line.chars()
        .map(|c| match c {
            '\t' => c,
            c if (c as u32) < 0x20 => char::from_u32(0x2400 + c as u32).unwrap_or('?'),
            '\u{7f}' => '\u{2421}',
            c if c.is_control() || crate::names::is_bidi_control(c) => '\u{fffd}',
            c => c,
        })
        .collect::<String>()
        .into()
}

/// Render all diagnostics followed by a one-line count.
pub fn render_all(ds: &Diagnostics, sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in ds.iter() {
        out.push_str(&render(d, sources));
        out.push('\n');
    }
    out
}

/// The JSON form of one diagnostic (see `schemas/validate.schema.json`).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub severity: Severity,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<JsonRange>,
}

#[derive(Debug, Serialize)]
pub struct JsonRange {
    pub filename: String,
    pub start: Position,
    pub end: Position,
}

pub fn to_json(d: &Diagnostic, sources: &SourceMap) -> JsonDiagnostic {
    JsonDiagnostic {
        severity: d.severity,
        summary: d.summary.clone(),
        detail: d.detail.clone(),
        help: d.help.clone(),
        range: d.span.as_ref().map(|s| {
            let f = sources.get(s.file);
            JsonRange {
                filename: f.path.display().to_string(),
                start: f.position(s.range.start),
                end: f.position(s.range.end),
            }
        }),
    }
}

/// "did you mean" helper: the closest candidate within a small edit distance.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), c))
        .filter(|(d, c)| *d <= (c.len().max(given.len()) / 3).max(1) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_chars() {
        let f = SourceFile::new("a.tg.hcl", "ab\nçd\n".to_string());
        assert_eq!(f.position(0).line, 1);
        assert_eq!(f.position(3).line, 2);
        assert_eq!(f.position(3).column, 1);
        assert_eq!(f.position(5).column, 2);
        assert_eq!(f.line_text(2), "çd");
        // CRLF: the `\n` is just past the line's last character.
        let f = SourceFile::new("a.tg.hcl", "}\r\nx".to_string());
        assert_eq!(f.position(2).column, 2);
        assert_eq!(f.position(1).column, 2);
        assert_eq!(f.position(3).line, 2);
    }

    #[test]
    fn render_shows_control_characters_and_keeps_tabs_under_the_caret() {
        let mut sources = SourceMap::default();
        let id = sources.add(SourceFile::new("a.tg.hcl", "\tx = \"a\0\"\n".to_string()));
        let d = Diagnostic::error("file contains a NUL byte").at(Span::new(id, 7..8));
        let out = render(&d, &sources);
        assert!(out.contains("1 | \tx = \"a\u{2400}\""), "{out}");
        assert!(out.contains("  | \t      ^\n"), "{out}");
    }

    #[test]
    fn summaries_stay_one_line() {
        let d = Diagnostic::warning("invalid name `a\nb\u{1b}`");
        assert_eq!(d.summary, "invalid name `a\\nb\\u{1b}`");
    }

    #[test]
    fn did_you_mean_finds_close_names() {
        assert_eq!(did_you_mean("imgae", ["image", "cpus"]), Some("image"));
        assert_eq!(did_you_mean("zzz", ["image", "cpus"]), None);
    }
}
