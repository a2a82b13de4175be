//! The function library of the testbed language.
//!
//! Owns every function callable from a testbed expression (`cidrhost`,
//! `format`, `lookup`, `file`, ...), their arity and argument checks, and the
//! one-line error messages they return. Semantics follow Terraform's functions
//! of the same name, adapted to hcl-rs [`Value`]s: sets are arrays with
//! duplicates removed (and sorted when all elements are strings or numbers),
//! maps are objects.
//!
//! Does not evaluate testbed expressions (hcl-rs does, and the config
//! evaluator attaches spans to errors; only `templatefile` evaluates its own
//! template), and does no I/O but reading the files `file()` and friends
//! name; `env()` reads the caller's environment, handed in with the host value.
//!
//! Every error is one lowercase line naming the argument at fault (hcl-rs
//! prefixes it with ``error calling function `name`: ``). Nothing panics on
//! any input: integers are range-checked, `range` and built strings are
//! bounded, files are read only if regular and at most 16 MiB.
//!
//! Functions are plain `fn` pointers (hcl-rs [`hcl::eval::Func`]), so what
//! the functions that read the host need of their caller (the directory
//! relative paths start from, `HOME`, the environment) travels as a value:
//! [`bind_host`] makes every call of them take [`HOST_VAR`] as a first
//! argument, which the evaluator binds to [`host_value`]. There is no
//! process-wide or thread-wide state.

mod args;
mod cidr;
mod collections;
mod encoding;
mod numeric;
mod strings;
mod system;
#[cfg(test)]
mod tests;

use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::Value;

use self::args::{Args, FnResult};

use self::system::Host;
pub use self::system::{bind_host, host_value, HOST_FUNCTIONS, HOST_VAR};

/// Marks a variadic maximum arity.
const MANY: usize = usize::MAX;

/// One function of the library.
struct Spec {
    name: &'static str,
    signature: &'static str,
    entry: hcl::eval::Func,
}

/// Check the arity of a call, then run the implementation.
fn call(
    signature: &'static str,
    min: usize,
    max: usize,
    imp: fn(&Args<'_>) -> FnResult,
    args: &FuncArgs,
) -> FnResult {
    let got = args.len();
    if got < min || got > max {
        return Err(arity_error(signature, min, max, got));
    }
    imp(&Args::new(args.as_slice(), signature))
}

/// `expected 1 argument, found 2; usage: ...`.
fn arity_error(signature: &'static str, min: usize, max: usize, got: usize) -> String {
    let expected = match (min, max) {
        (0, MANY) => "any number of arguments".to_string(),
        (1, MANY) => "at least 1 argument".to_string(),
        (n, MANY) => format!("at least {n} arguments"),
        (1, 1) => "1 argument".to_string(),
        (n, m) if n == m => format!("{n} arguments"),
        (n, m) if m == n + 1 => format!("{n} or {m} arguments"),
        (n, m) => format!("{n} to {m} arguments"),
    };
    format!("expected {expected}, found {got}; usage: `{signature}`")
}

/// [`call`] for a function that reads the host: the first argument is the
/// host value ([`bind_host`] put it there), the rest are the call's own.
fn call_host(
    signature: &'static str,
    min: usize,
    max: usize,
    imp: fn(&Host<'_>, &Args<'_>) -> FnResult,
    args: &FuncArgs,
) -> FnResult {
    let all = args.as_slice();
    let host = Host::from_value(all.first())?;
    let own = &all[1..];
    let got = own.len();
    if got < min || got > max {
        return Err(arity_error(signature, min, max, got));
    }
    imp(&host, &Args::new(own, signature))
}

/// Declares the library: `name: "signature", min, max => CALLER implementation;`
/// where CALLER is [`call`], or [`call_host`] for a function that reads the host.
macro_rules! library {
    ($( $name:ident : $sig:literal, $min:expr, $max:expr => $caller:ident $imp:path; )*) => {
        const SPECS: &[Spec] = &[$(
            Spec {
                name: stringify!($name),
                signature: $sig,
                entry: {
                    fn entry(args: FuncArgs) -> Result<Value, String> {
                        $caller($sig, $min, $max, $imp, &args)
                    }
                    entry
                },
            },
        )*];
    };
}

library! {
    abs: "abs(number)", 1, 1 => call numeric::abs;
    alltrue: "alltrue(list)", 1, 1 => call collections::alltrue;
    anytrue: "anytrue(list)", 1, 1 => call collections::anytrue;
    base64decode: "base64decode(string)", 1, 1 => call encoding::base64decode;
    base64encode: "base64encode(string)", 1, 1 => call encoding::base64encode;
    ceil: "ceil(number)", 1, 1 => call numeric::ceil;
    chomp: "chomp(string)", 1, 1 => call strings::chomp;
    chunklist: "chunklist(list, size)", 2, 2 => call collections::chunklist;
    cidrhost: "cidrhost(prefix, hostnum)", 2, 2 => call cidr::cidrhost;
    cidrnetmask: "cidrnetmask(prefix)", 1, 1 => call cidr::cidrnetmask;
    cidrsubnet: "cidrsubnet(prefix, newbits, netnum)", 3, 3 => call cidr::cidrsubnet;
    cidrsubnets: "cidrsubnets(prefix, newbits...)", 1, MANY => call cidr::cidrsubnets;
    coalesce: "coalesce(values...)", 1, MANY => call collections::coalesce;
    compact: "compact(list)", 1, 1 => call collections::compact;
    concat: "concat(lists...)", 1, MANY => call collections::concat;
    contains: "contains(list, value)", 2, 2 => call collections::contains;
    distinct: "distinct(list)", 1, 1 => call collections::distinct;
    element: "element(list, index)", 2, 2 => call collections::element;
    endswith: "endswith(string, suffix)", 2, 2 => call strings::endswith;
    env: "env(name, [default])", 1, 2 => call_host system::env;
    file: "file(path)", 1, 1 => call_host system::file;
    filebase64: "filebase64(path)", 1, 1 => call_host system::filebase64;
    fileexists: "fileexists(path)", 1, 1 => call_host system::fileexists;
    filesha256: "filesha256(path)", 1, 1 => call_host system::filesha256;
    flatten: "flatten(list)", 1, 1 => call collections::flatten;
    floor: "floor(number)", 1, 1 => call numeric::floor;
    format: "format(spec, values...)", 1, MANY => call strings::format;
    formatlist: "formatlist(spec, values...)", 1, MANY => call strings::formatlist;
    indent: "indent(spaces, string)", 2, 2 => call strings::indent;
    index: "index(list, value)", 2, 2 => call collections::index;
    join: "join(separator, lists...)", 2, MANY => call strings::join;
    jsondecode: "jsondecode(string)", 1, 1 => call encoding::jsondecode;
    jsonencode: "jsonencode(value)", 1, 1 => call encoding::jsonencode;
    keys: "keys(map)", 1, 1 => call collections::keys;
    length: "length(value)", 1, 1 => call collections::length;
    lookup: "lookup(map, key, [default])", 2, 3 => call collections::lookup;
    lower: "lower(string)", 1, 1 => call strings::lower;
    max: "max(numbers...)", 1, MANY => call numeric::max;
    merge: "merge(maps...)", 0, MANY => call collections::merge;
    min: "min(numbers...)", 1, MANY => call numeric::min;
    one: "one(list)", 1, 1 => call collections::one;
    range: "range([start], limit, [step])", 1, 3 => call numeric::range;
    replace: "replace(string, substring, replacement)", 3, 3 => call strings::replace;
    reverse: "reverse(list)", 1, 1 => call collections::reverse;
    setintersection: "setintersection(sets...)", 1, MANY => call collections::setintersection;
    setsubtract: "setsubtract(a, b)", 2, 2 => call collections::setsubtract;
    setunion: "setunion(sets...)", 1, MANY => call collections::setunion;
    sha256: "sha256(string)", 1, 1 => call encoding::sha256;
    slice: "slice(list, start, end)", 3, 3 => call collections::slice;
    sort: "sort(list)", 1, 1 => call collections::sort;
    split: "split(separator, string)", 2, 2 => call strings::split;
    startswith: "startswith(string, prefix)", 2, 2 => call strings::startswith;
    strrev: "strrev(string)", 1, 1 => call strings::strrev;
    substr: "substr(string, offset, length)", 3, 3 => call strings::substr;
    sum: "sum(list)", 1, 1 => call numeric::sum;
    templatefile: "templatefile(path, vars)", 2, 2 => call_host system::templatefile;
    title: "title(string)", 1, 1 => call strings::title;
    tolist: "tolist(value)", 1, 1 => call collections::tolist;
    tomap: "tomap(value)", 1, 1 => call collections::tomap;
    tonumber: "tonumber(value)", 1, 1 => call numeric::tonumber;
    toset: "toset(value)", 1, 1 => call collections::toset;
    tostring: "tostring(value)", 1, 1 => call encoding::tostring;
    trimprefix: "trimprefix(string, prefix)", 2, 2 => call strings::trimprefix;
    trimspace: "trimspace(string)", 1, 1 => call strings::trimspace;
    trimsuffix: "trimsuffix(string, suffix)", 2, 2 => call strings::trimsuffix;
    upper: "upper(string)", 1, 1 => call strings::upper;
    values: "values(map)", 1, 1 => call collections::values;
    zipmap: "zipmap(keys, values)", 2, 2 => call collections::zipmap;
}

/// Every function name, sorted (for "did you mean" on unknown functions).
pub const NAMES: &[&str] = &[
    "abs",
    "alltrue",
    "anytrue",
    "base64decode",
    "base64encode",
    "ceil",
    "chomp",
    "chunklist",
    "cidrhost",
    "cidrnetmask",
    "cidrsubnet",
    "cidrsubnets",
    "coalesce",
    "compact",
    "concat",
    "contains",
    "distinct",
    "element",
    "endswith",
    "env",
    "file",
    "filebase64",
    "fileexists",
    "filesha256",
    "flatten",
    "floor",
    "format",
    "formatlist",
    "indent",
    "index",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "max",
    "merge",
    "min",
    "one",
    "range",
    "replace",
    "reverse",
    "setintersection",
    "setsubtract",
    "setunion",
    "sha256",
    "slice",
    "sort",
    "split",
    "startswith",
    "strrev",
    "substr",
    "sum",
    "templatefile",
    "title",
    "tolist",
    "tomap",
    "tonumber",
    "toset",
    "tostring",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "upper",
    "values",
    "zipmap",
];

/// Declare every function of the testbed language in `ctx`.
///
/// Arity and argument types are checked by the functions themselves (every
/// parameter is declared `any`), so a wrong call gets a message naming the
/// parameter and showing the usage instead of hcl-rs's generic one.
pub fn declare_all(ctx: &mut Context<'_>) {
    for spec in SPECS {
        declare(ctx, spec.name, spec.entry);
    }
}

/// The library as seen from inside a `templatefile` template: the same,
/// except that `templatefile` itself refuses (no recursion).
fn declare_nested(ctx: &mut Context<'_>) {
    fn refuse(args: FuncArgs) -> Result<Value, String> {
        call_host(
            "templatefile(path, vars)",
            0,
            MANY,
            system::templatefile_nested,
            &args,
        )
    }
    for spec in SPECS {
        let entry = if spec.name == "templatefile" {
            refuse
        } else {
            spec.entry
        };
        declare(ctx, spec.name, entry);
    }
}

fn declare(ctx: &mut Context<'_>, name: &'static str, entry: hcl::eval::Func) {
    let def = FuncDef::builder()
        .variadic_param(ParamType::Any)
        .build(entry);
    ctx.declare_func(name, def);
}

/// Declare only the named functions (unknown names are skipped): cheaper
/// than [`declare_all`] when evaluating many small expressions.
pub fn declare_some<'n>(ctx: &mut Context<'_>, names: impl IntoIterator<Item = &'n str>) {
    for name in names {
        if let Some(spec) = SPECS.iter().find(|s| s.name == name) {
            declare(ctx, spec.name, spec.entry);
        }
    }
}

/// A one-line usage string such as `cidrhost(prefix, hostnum)`, for error
/// messages; `None` for names that are not in the library.
pub fn signature(name: &str) -> Option<&'static str> {
    SPECS.iter().find(|s| s.name == name).map(|s| s.signature)
}
