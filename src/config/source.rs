//! Reading testbed files: which files, in which order, and the byte-level
//! checks (UTF-8, no NUL) that come before parsing.

use std::path::{Path, PathBuf};

use crate::diagnostics::{Diagnostic, Diagnostics, FileId, SourceFile, SourceMap, Span};

/// The suffix of testbed files.
pub const TESTBED_SUFFIX: &str = ".tg.hcl";
/// The suffix of variable files.
pub const VARS_SUFFIX: &str = ".tgvars.hcl";

/// The testbed files of `dir`, in name order.
pub fn testbed_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(TESTBED_SUFFIX) && !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
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
