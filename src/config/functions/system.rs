//! Functions that read the host: `file`, `filebase64`, `filesha256`,
//! `fileexists`, `templatefile` and `env`.
//!
//! They read the caller's world, never the process's: the directory
//! relative paths start from, `HOME` (for a leading `~/`) and the
//! environment variables come in as the host value ([`host_value`]), the
//! first argument of every call (hcl-rs functions are plain `fn` pointers,
//! so there is no other way in). [`bind_host`] adds that argument to every
//! call of these functions before an expression is evaluated; a call
//! without it fails. A confined caller ([`Environment::confined_to`])
//! reads only files whose canonical path lies under its roots, and its
//! `env()` sees only the variables it allows
//! ([`Environment::with_testbed_vars`]). `file` reads regular files only, at most
//! [`FILE_MAX_BYTES`], and requires UTF-8. Nothing here writes anything or
//! caches what it read.

use std::io::Read;
use std::path::{Path, PathBuf};

use hcl::eval::{Context, Evaluate};
use hcl::Value;
use hcl_edit::expr::Expression;
use hcl_edit::visit_mut::{visit_expr_mut, VisitMut};

use super::args::{quote_truncated, Args, FnResult};
use crate::environment::Environment;

/// The largest file `file()` reads.
pub(super) const FILE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The variable holding the host value in an evaluation context. Not a
/// name a testbed can refer to (reference checks allow only `var.`,
/// `local.`, ... roots).
pub const HOST_VAR: &str = "tg_host";

/// The functions that read the host and take the host value first.
pub const HOST_FUNCTIONS: &[&str] = &[
    "env",
    "file",
    "filebase64",
    "fileexists",
    "filesha256",
    "templatefile",
];

/// What the host functions see of their caller, the value bound to
/// [`HOST_VAR`]: `{ dir = "...", home = "..." or null, env = { ... },
/// roots = [...] or null }`. `dir` is where relative paths start (the
/// testbed directory); `roots`, when not null, the only directories files
/// may be read under.
pub fn host_value(dir: &Path, env: &Environment) -> Value {
    let mut vars = hcl::Map::new();
    for (k, v) in env.testbed_vars() {
        vars.insert(k.to_string(), Value::from(v));
    }
    let mut o = hcl::Map::new();
    o.insert(
        "dir".into(),
        Value::from(dir.to_string_lossy().into_owned()),
    );
    o.insert(
        "home".into(),
        env.testbed_home()
            .map(|h| Value::from(h.to_string_lossy().into_owned()))
            .unwrap_or(Value::Null),
    );
    o.insert("env".into(), Value::Object(vars));
    o.insert(
        "roots".into(),
        match env.roots() {
            Some(roots) => Value::Array(
                roots
                    .iter()
                    .map(|r| Value::from(r.to_string_lossy().into_owned()))
                    .collect(),
            ),
            None => Value::Null,
        },
    );
    Value::Object(o)
}

/// The host value of one call, read back.
pub(super) struct Host<'a> {
    dir: &'a str,
    home: Option<&'a str>,
    env: &'a hcl::Map<String, Value>,
    /// `None`: not confined.
    roots: Option<Vec<PathBuf>>,
    value: &'a Value,
}

impl<'a> Host<'a> {
    /// The host value a call was given as its first argument.
    pub(super) fn from_value(v: Option<&'a Value>) -> Result<Host<'a>, String> {
        let missing = || {
            "this function reads files or the environment and was called without the caller's context"
                .to_string()
        };
        let o = v.and_then(Value::as_object).ok_or_else(missing)?;
        let roots = match o.get("roots") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|r| r.as_str().map(PathBuf::from).ok_or_else(missing))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(missing()),
        };
        Ok(Host {
            roots,
            dir: o.get("dir").and_then(Value::as_str).ok_or_else(missing)?,
            home: o.get("home").and_then(Value::as_str),
            env: o
                .get("env")
                .and_then(Value::as_object)
                .ok_or_else(missing)?,
            value: v.ok_or_else(missing)?,
        })
    }

    /// Where `path` (as written) points.
    fn resolve(&self, path: &str) -> PathBuf {
        let expanded = match path
            .strip_prefix("~/")
            .or(if path == "~" { Some("") } else { None })
        {
            Some(rest) => match self.home {
                Some(home) => PathBuf::from(home).join(rest),
                None => PathBuf::from(path),
            },
            None => PathBuf::from(path),
        };
        if expanded.is_absolute() || self.dir.is_empty() {
            return expanded;
        }
        Path::new(self.dir).join(expanded)
    }
}

/// Rewrite every call of a [`HOST_FUNCTIONS`] function in `expr` to take
/// [`HOST_VAR`] first: `file(p)` becomes `file(tg_host, p)`.
pub fn bind_host(expr: &mut Expression) {
    HostBinder.visit_expr_mut(expr);
}

struct HostBinder;

impl VisitMut for HostBinder {
    fn visit_expr_mut(&mut self, expr: &mut Expression) {
        visit_expr_mut(self, expr);
        if let Expression::FuncCall(call) = expr {
            if call.name.namespace.is_empty() && HOST_FUNCTIONS.contains(&call.name.name.as_str()) {
                let host =
                    Expression::Variable(hcl_edit::Decorated::new(hcl_edit::Ident::new(HOST_VAR)));
                call.args.insert(0, host);
            }
        }
    }
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

/// A path argument, checked and resolved: (how to show it, where it
/// points). For a confined caller, where it points is its canonical path,
/// and a path outside the caller's roots is an error.
fn path_arg(h: &Host<'_>, a: &Args<'_>, i: usize) -> Result<(String, PathBuf), String> {
    let path = a.string(i)?;
    if path.is_empty() {
        return Err(format!("{} is empty; expected a file path", a.at(i)));
    }
    if path.contains('\0') {
        return Err(format!("{} contains a NUL character", a.at(i)));
    }
    let resolved = h.resolve(&path);
    let shown = if resolved.as_os_str() == std::ffi::OsStr::new(path.as_ref()) {
        format!("`{path}`")
    } else {
        format!("`{path}` (resolved to `{}`)", resolved.display())
    };
    let Some(roots) = &h.roots else {
        return Ok((shown, resolved));
    };
    match crate::environment::confine(roots, &resolved) {
        Ok(real) => Ok((shown, real)),
        Err(crate::environment::Confined::Outside(_)) => Err(format!(
            "cannot read {shown}: it is outside the directories this testbed may read"
        )),
        Err(e) => Err(format!("cannot read {shown}: {e}")),
    }
}

/// The bytes of the regular file named by argument `i`, at most
/// [`FILE_MAX_BYTES`]; returns how to show the path too.
fn read_bytes(h: &Host<'_>, a: &Args<'_>, i: usize) -> Result<(String, Vec<u8>), String> {
    let (shown, resolved) = path_arg(h, a, i)?;
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
fn read_text(h: &Host<'_>, a: &Args<'_>, i: usize) -> Result<(String, String), String> {
    let (shown, bytes) = read_bytes(h, a, i)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read {shown}: it is not utf-8 text (invalid byte at offset {}); use `filebase64` for binary files",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok((shown, text))
}

pub(super) fn file(h: &Host<'_>, a: &Args<'_>) -> FnResult {
    read_text(h, a, 0).map(|(_, text)| Value::String(text))
}

pub(super) fn filebase64(h: &Host<'_>, a: &Args<'_>) -> FnResult {
    read_bytes(h, a, 0).map(|(_, bytes)| Value::String(super::encoding::base64_encode(&bytes)))
}

pub(super) fn filesha256(h: &Host<'_>, a: &Args<'_>) -> FnResult {
    read_bytes(h, a, 0).map(|(_, bytes)| Value::String(super::encoding::sha256_hex(&bytes)))
}

pub(super) fn fileexists(h: &Host<'_>, a: &Args<'_>) -> FnResult {
    let (shown, resolved) = path_arg(h, a, 0)?;
    match std::fs::metadata(&resolved) {
        Ok(meta) if meta.is_dir() => Err(format!(
            "{shown} is a directory; `fileexists` checks for files"
        )),
        Ok(meta) => Ok(Value::Bool(meta.is_file())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Bool(false)),
        Err(e) => Err(format!("cannot check {shown}: {}", reason(&e))),
    }
}

pub(super) fn templatefile(h: &Host<'_>, a: &Args<'_>) -> FnResult {
    let (shown, text) = read_text(h, a, 0)?;
    let vars = a.object(1)?;
    let mut parsed = hcl_edit::parser::parse_template(&text).map_err(|e| {
        format!(
            "cannot parse template {shown} at line {}, column {}: {}",
            e.location().line(),
            e.location().column(),
            one_line(e.message())
        )
    })?;
    hcl_edit::visit_mut::visit_template_mut(&mut HostBinder, &mut parsed);
    let fueled = crate::config::fuel::rewrite_template(&mut parsed);
    let template = hcl::Template::from(parsed);
    let mut ctx = Context::new();
    super::declare_nested(&mut ctx);
    if fueled {
        crate::config::fuel::declare(&mut ctx);
    }
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
    // Declared last: a template variable cannot stand in for it.
    ctx.declare_var(HOST_VAR, h.value.clone());
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
pub(super) fn templatefile_nested(_: &Host<'_>, _: &Args<'_>) -> FnResult {
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

pub(super) fn env(h: &Host<'_>, a: &Args<'_>) -> FnResult {
    let name = a.string(0)?;
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!(
            "{} is not a valid environment variable name: {}",
            a.at(0),
            quote_truncated(&name, 40)
        ));
    }
    match h.env.get(name.as_ref()) {
        Some(value) => Ok(value.clone()),
        None => match a.opt(1) {
            Some(default) => Ok(default.clone()),
            None => Err(format!(
                "environment variable `{name}` is not set; set it, or pass a default as the second argument"
            )),
        },
    }
}
