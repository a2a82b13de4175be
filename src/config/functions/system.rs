//! Functions that read the host: `file`, `filebase64`, `filesha256`,
//! `fileexists`, `templatefile` and `env`.
//!
//! `file` resolves relative paths against the directory set with
//! [`with_base_dir`] (the testbed directory while a testbed is evaluated),
//! expands a leading `~/`, reads regular files only, at most
//! [`FILE_MAX_BYTES`], and requires UTF-8. `env` reads one variable. Neither
//! writes anything or caches what it read.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};

use hcl::eval::{Context, Evaluate};
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

/// A path argument, checked and resolved: (how to show it, where it points).
fn path_arg(a: &Args<'_>, i: usize) -> Result<(String, PathBuf), String> {
    let path = a.string(i)?;
    if path.is_empty() {
        return Err(format!("{} is empty; expected a file path", a.at(i)));
    }
    if path.contains('\0') {
        return Err(format!("{} contains a NUL character", a.at(i)));
    }
    let resolved = resolve(&path);
    let shown = if resolved.as_os_str() == std::ffi::OsStr::new(path.as_ref()) {
        format!("`{path}`")
    } else {
        format!("`{path}` (resolved to `{}`)", resolved.display())
    };
    Ok((shown, resolved))
}

/// The bytes of the regular file named by argument `i`, at most
/// [`FILE_MAX_BYTES`]; returns how to show the path too.
fn read_bytes(a: &Args<'_>, i: usize) -> Result<(String, Vec<u8>), String> {
    let (shown, resolved) = path_arg(a, i)?;
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
    Ok((shown, bytes))
}

/// The UTF-8 text of the file named by argument `i`.
fn read_text(a: &Args<'_>, i: usize) -> Result<(String, String), String> {
    let (shown, bytes) = read_bytes(a, i)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read {shown}: it is not utf-8 text (invalid byte at offset {}); use `filebase64` for binary files",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok((shown, text))
}

pub(super) fn file(a: &Args<'_>) -> FnResult {
    read_text(a, 0).map(|(_, text)| Value::String(text))
}

pub(super) fn filebase64(a: &Args<'_>) -> FnResult {
    read_bytes(a, 0).map(|(_, bytes)| Value::String(super::encoding::base64_encode(&bytes)))
}

pub(super) fn filesha256(a: &Args<'_>) -> FnResult {
    read_bytes(a, 0).map(|(_, bytes)| Value::String(super::encoding::sha256_hex(&bytes)))
}

pub(super) fn fileexists(a: &Args<'_>) -> FnResult {
    let (shown, resolved) = path_arg(a, 0)?;
    match std::fs::metadata(&resolved) {
        Ok(meta) if meta.is_dir() => Err(format!(
            "{shown} is a directory; `fileexists` checks for files"
        )),
        Ok(meta) => Ok(Value::Bool(meta.is_file())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Bool(false)),
        Err(e) => Err(format!("cannot check {shown}: {}", reason(&e))),
    }
}

pub(super) fn templatefile(a: &Args<'_>) -> FnResult {
    let (shown, text) = read_text(a, 0)?;
    let vars = a.object(1)?;
    let parsed = hcl_edit::parser::parse_template(&text).map_err(|e| {
        format!(
            "cannot parse template {shown} at line {}, column {}: {}",
            e.location().line(),
            e.location().column(),
            one_line(e.message())
        )
    })?;
    let template = hcl::Template::from(parsed);
    let mut ctx = Context::new();
    super::declare_nested(&mut ctx);
    for (name, value) in vars {
        let ident = hcl::Identifier::new(name.as_str()).map_err(|_| {
            format!(
                "{} key {} is not a valid variable name; use letters, digits, `_` and `-`, starting with a letter",
                a.at(1),
                quote_truncated(name, 40)
            )
        })?;
        ctx.declare_var(ident, value.clone());
    }
    template.evaluate(&ctx).map(Value::String).map_err(|e| {
        let hint = match e.kind() {
            hcl::eval::ErrorKind::UndefinedVar(_) => "; pass it in `vars`",
            _ => "",
        };
        format!(
            "cannot render template {shown}: {}{hint}",
            one_line(&e.to_string())
        )
    })
}

/// Called instead of `templatefile` inside a template: no recursion.
pub(super) fn templatefile_nested(_: &Args<'_>) -> FnResult {
    Err("`templatefile` cannot be called from inside a template".to_string())
}

/// Collapse a message onto one line.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
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
