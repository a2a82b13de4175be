//! Functions that read the host: `file` and `env`.
//!
//! `file` resolves relative paths against the directory set with
//! [`with_base_dir`] (the testbed directory while a testbed is evaluated),
//! expands a leading `~/`, reads regular files only, at most
//! [`FILE_MAX_BYTES`], and requires UTF-8. `env` reads one variable. Neither
//! writes anything or caches what it read.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};

use hcl::Value;

use super::args::{quote_truncated, Args, FnResult};

/// The largest file `file()` reads.
pub(super) const FILE_MAX_BYTES: u64 = 16 * 1024 * 1024;

thread_local! {
    static BASE_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Puts the previous base directory back, even if `f` panics.
struct Restore(Option<PathBuf>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        BASE_DIR.with(|b| *b.borrow_mut() = previous);
    }
}

/// Run `f` with `file()` resolving relative paths against `dir` on this
/// thread; the previous directory is restored afterwards. Without a base
/// directory, relative paths resolve against the current directory.
pub fn with_base_dir<T>(dir: &Path, f: impl FnOnce() -> T) -> T {
    let previous = BASE_DIR.with(|b| b.borrow_mut().replace(dir.to_path_buf()));
    let _restore = Restore(previous);
    f()
}

/// Where `path` (as written) points.
fn resolve(path: &str) -> PathBuf {
    let expanded = match path
        .strip_prefix("~/")
        .or(if path == "~" { Some("") } else { None })
    {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest),
            None => PathBuf::from(path),
        },
        None => PathBuf::from(path),
    };
    if expanded.is_absolute() {
        return expanded;
    }
    BASE_DIR.with(|b| match b.borrow().as_ref() {
        Some(base) => base.join(&expanded),
        None => expanded,
    })
}

/// An I/O error as a lowercase reason.
fn reason(err: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::NotFound => "no such file or directory".to_string(),
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let text = err.to_string();
            let text = match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => "unknown error".to_string(),
            }
        }
    }
}

pub(super) fn file(a: &Args<'_>) -> FnResult {
    let path = a.string(0)?;
    if path.is_empty() {
        return Err(format!("{} is empty; expected a file path", a.at(0)));
    }
    if path.contains('\0') {
        return Err(format!("{} contains a NUL character", a.at(0)));
    }
    let resolved = resolve(&path);
    let shown = if resolved.as_os_str() == std::ffi::OsStr::new(path.as_ref()) {
        format!("`{path}`")
    } else {
        format!("`{path}` (resolved to `{}`)", resolved.display())
    };
    let meta =
        std::fs::metadata(&resolved).map_err(|e| format!("cannot read {shown}: {}", reason(&e)))?;
    if meta.is_dir() {
        return Err(format!(
            "cannot read {shown}: it is a directory, not a file"
        ));
    }
    if !meta.is_file() {
        return Err(format!("cannot read {shown}: it is not a regular file"));
    }
    if meta.len() > FILE_MAX_BYTES {
        return Err(too_big(&shown));
    }
    let handle = std::fs::File::open(&resolved)
        .map_err(|e| format!("cannot read {shown}: {}", reason(&e)))?;
    let mut bytes = Vec::new();
    handle
        .take(FILE_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {}", reason(&e)))?;
    if bytes.len() as u64 > FILE_MAX_BYTES {
        return Err(too_big(&shown));
    }
    String::from_utf8(bytes).map(Value::String).map_err(|e| {
        format!(
            "cannot read {shown}: it is not utf-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn too_big(shown: &str) -> String {
    format!(
        "cannot read {shown}: it is larger than {} MiB",
        FILE_MAX_BYTES / (1024 * 1024)
    )
}

pub(super) fn env(a: &Args<'_>) -> FnResult {
    let name = a.string(0)?;
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!(
            "{} is not a valid environment variable name: {}",
            a.at(0),
            quote_truncated(&name, 40)
        ));
    }
    match std::env::var_os(name.as_ref()) {
        Some(value) => value.into_string().map(Value::String).map_err(|_| {
            format!("environment variable `{name}` is not valid utf-8")
        }),
        None => match a.opt(1) {
            Some(default) => Ok(default.clone()),
            None => Err(format!(
                "environment variable `{name}` is not set; set it, or pass a default as the second argument"
            )),
        },
    }
}
