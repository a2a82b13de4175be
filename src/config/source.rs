//! Reading testbed files: which files, in which order, and the byte-level
//! checks (a regular file, UTF-8, no NUL, no bidirectional control
//! characters) that come before parsing.

use std::path::{Path, PathBuf};

use crate::diagnostics::{Diagnostic, Diagnostics, FileId, SourceFile, SourceMap, Span};

/// The suffix of testbed files.
pub const TESTBED_SUFFIX: &str = ".tg.hcl";
/// The suffix of variable files.
pub const VARS_SUFFIX: &str = ".tgvars.hcl";

/// The testbed files of a directory.
#[derive(Debug, Default)]
pub struct Listing {
    /// Regular files (or links to them), in name order.
    pub files: Vec<PathBuf>,
    /// Entries named like testbed files that cannot be read as one: a
    /// symbolic link whose target is gone, a directory, a FIFO. Refused
    /// rather than skipped: skipping would make the testbed silently lose
    /// what that file declared (and a plan propose to destroy it).
    pub refused: Vec<Diagnostic>,
}

impl Listing {
    /// Nothing named like a testbed file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.refused.is_empty()
    }
}

/// The testbed files of `dir`, in name order (names starting with `.` are
/// not testbed files).
pub fn testbed_files(dir: &Path) -> std::io::Result<Listing> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(TESTBED_SUFFIX) && !n.starts_with('.'))
        })
        .collect();
    paths.sort();
    let mut listing = Listing::default();
    for p in paths {
        let shown = display_path(dir, &p);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => listing.files.push(p),
            Ok(m) => listing.refused.push(
                Diagnostic::error(format!(
                    "`{}` is {}, not a testbed file",
                    shown.display(),
                    kind_of(&m)
                ))
                .help("testbed files are regular files: rename or remove it"),
            ),
            Err(e) => {
                let link = std::fs::read_link(&p).ok();
                let d = match (link, e.kind()) {
                    (Some(target), std::io::ErrorKind::NotFound) => Diagnostic::error(format!(
                        "`{}` is a symbolic link to `{}`, which does not exist",
                        shown.display(),
                        target.display()
                    ))
                    .help("restore the file it points to, or remove the link"),
                    _ => Diagnostic::error(format!("cannot read `{}`: {e}", shown.display()))
                        .help("check that the file is readable"),
                };
                listing.refused.push(d);
            }
        }
    }
    Ok(listing)
}

/// "a directory", "a FIFO", ... for what is not a regular file.
pub fn kind_of(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// How a file is named in diagnostics: relative to `dir` when inside it.
pub fn display_path(dir: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(dir)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Read one file into the source map, checking it is UTF-8 text without
/// NUL bytes. Returns `None` (with a diagnostic) when it cannot be used.
pub fn read_source(
    path: &Path,
    shown_as: PathBuf,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Option<FileId> {
    // Only regular files: reading a FIFO or a device could block forever.
    if let Ok(m) = std::fs::metadata(path) {
        if !m.is_file() {
            diags.push(
                Diagnostic::error(format!(
                    "cannot read `{}`: it is {}, not a regular file",
                    shown_as.display(),
                    kind_of(&m)
                ))
                .help("give the path of a regular file"),
            );
            return None;
        }
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "it does not exist".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            diags.push(
                Diagnostic::error(format!("cannot read `{}`: {why}", shown_as.display()))
                    .help("check the path (relative paths start from the current directory) and that the file is readable"),
            );
            return None;
        }
    };
    // Editors may save UTF-8 with a byte order mark: it is not content.
    let bytes = match bytes.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    match String::from_utf8(bytes) {
        Ok(text) => {
            let nul = text.find('\0');
            let id = sources.add(SourceFile::new(shown_as.clone(), text));
            if let Some(at) = nul {
                diags.push(
                    Diagnostic::error("file contains a NUL byte")
                        .at(Span::new(id, at..at + 1))
                        .help("testbed files are text: remove the NUL byte (was a binary file saved with a .tg.hcl name?)"),
                );
                return None;
            }
            check_bidi(id, sources, diags);
            Some(id)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // Keep the valid prefix so the error can point at the line.
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let id = sources.add(SourceFile::new(shown_as, text));
            diags.push(
                Diagnostic::error(format!(
                    "file is not valid UTF-8 (invalid byte at offset {at})"
                ))
                .at(Span::new(id, at..at + 1))
                .help("save the file as UTF-8"),
            );
            None
        }
    }
}

/// A bidirectional control character (U+202A..U+202E, U+2066..U+2069 and
/// the marks, see [`crate::names::is_bidi_control`]) makes a file display
/// differently from what it means ("Trojan Source"): each is an error at
/// its place.
pub(crate) fn check_bidi(id: FileId, sources: &SourceMap, diags: &mut Diagnostics) {
    let text = &sources.get(id).text;
    if text.is_ascii() {
        return;
    }
    for (at, c) in text.char_indices() {
        if crate::names::is_bidi_control(c) {
            diags.push(
                Diagnostic::error(format!(
                    "bidirectional control character U+{:04X} in the file",
                    c as u32
                ))
                .at(Span::new(id, at..at + c.len_utf8()))
                .help("it makes the text display in a different order than it is read: remove it (to put it in a string on purpose, write it as an escape such as `\\u202e`)"),
            );
        }
    }
}
