//! Config: testbed files (`*.tg.hcl`) in, an evaluated [`model::Testbed`] out.
//!
//! Owns reading and parsing the files (hcl-edit, keeping spans), the
//! language's static checks, evaluation of expressions (hcl-rs with tg's own
//! function library), expansion of `count`/`for_each`, and address
//! assignment (IPAM). Does no I/O but reading files; never talks to state
//! or platforms, and reads nothing of the process: environment variables,
//! the working directory and the platform kinds on offer come in through
//! [`LoadOptions`].
//!
//! Parse once, evaluate in two steps: [`parse`] reads every file,
//! [`Parsed::settings`] evaluates just the `state` and `platform` blocks
//! (and the variables and locals they use) so a caller can find the state
//! store first, and [`Parsed::evaluate`] evaluates the whole testbed with the
//! addresses state recorded ([`Prior`]). [`load`] does both for callers
//! without state.

mod checked;
pub mod decode;
pub mod eval;
mod fuel;
pub mod functions;
pub mod ipam;
pub mod model;
mod parse;
pub mod refs;
pub mod source;
pub mod types;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use crate::addrs::InstanceAddr;
use crate::diagnostics::{Diagnostic, Diagnostics, FileId, SourceMap, Span};

pub use parse::{parse, Parsed};

/// What `parse` and `load` need besides the files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The testbed directory.
    pub dir: PathBuf,
    /// `-var name=value`, in command-line order.
    pub vars: Vec<String>,
    /// `-var-file FILE`, in command-line order.
    pub var_files: Vec<PathBuf>,
    /// What state recorded, so addresses and CIDRs stay put (IPAM
    /// stickiness). Used by [`load`]; [`Parsed::evaluate`] takes its own.
    pub prior: Prior,
    /// The caller's environment variables (`TG_VAR_*`, `env()`, `HOME`)
    /// and working directory (relative `-var-file` paths). Never the
    /// process's own: see [`crate::environment`].
    pub env: crate::environment::Environment,
    /// The platform driver kinds the caller's factory offers (`netns`,
    /// `ssh`, ...): what `platform "KIND" "NAME"` blocks and a node's
    /// `platform = "KIND"` may name, besides declared platform blocks.
    pub drivers: Vec<String>,
    /// Bounds on what one testbed may make evaluation do.
    pub limits: Limits,
}

/// Bounds on evaluation, so no testbed can exhaust time or memory. A
/// testbed that reaches one gets an error naming the limit and where it
/// was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most instances (networks, nodes and packages) one testbed may have.
    /// `TG_MAX_INSTANCES` in the caller's environment replaces it.
    pub max_instances: u64,
    /// Most list elements and map entries one evaluated value may hold,
    /// counted through every level of nesting.
    pub max_value_elements: usize,
    /// Most bytes of strings (map keys included) one evaluated value may hold.
    pub max_value_bytes: usize,
}

/// The environment variable that replaces [`Limits::max_instances`].
pub const ENV_MAX_INSTANCES: &str = "TG_MAX_INSTANCES";

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_instances: 50_000,
            max_value_elements: 1 << 20,
            max_value_bytes: 32 << 20,
        }
    }
}

/// Addresses recorded in state: IPAM keeps them for existing instances.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// node instance → network name → address.
    pub node_addresses: BTreeMap<InstanceAddr, BTreeMap<String, Ipv4Addr>>,
    /// network instance → CIDR.
    pub network_cidrs: BTreeMap<InstanceAddr, Ipv4Net>,
}

/// What a caller needs before it reads state: where state is kept and the
/// platforms the testbed declares.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub state: model::StateBackendConfig,
    pub platforms: Vec<model::PlatformConfig>,
}

/// A failed load: every problem found, with the sources to render them.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub diagnostics: Diagnostics,
    pub sources: SourceMap,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::diagnostics::render_all(&self.diagnostics, &self.sources).trim_end())
    }
}

impl std::error::Error for LoadError {}

impl LoadOptions {
    /// Where relative `-var-file` paths are resolved: the caller's working
    /// directory (the testbed directory when the caller gave none).
    pub fn cwd_or_dir(&self) -> PathBuf {
        let cwd = self.env.cwd();
        if cwd.as_os_str().is_empty() {
            self.dir.clone()
        } else {
            cwd.to_path_buf()
        }
    }
}

/// Evaluate only the settings of the testbed in `opts.dir` (the `state`
/// and `platform` blocks and what they refer to): [`parse`] then
/// [`Parsed::settings`].
pub fn load_settings(opts: &LoadOptions) -> Result<Settings, LoadError> {
    parse(opts)?.settings()
}

/// Read, check and evaluate the testbed in `opts.dir` with `opts.prior`:
/// [`parse`] then [`Parsed::evaluate`]. On success the testbed comes with
/// its warnings.
pub fn load(opts: &LoadOptions) -> Result<(model::Testbed, Diagnostics), LoadError> {
    parse(opts)?.evaluate(&opts.prior)
}

/// Is `offset` after an attribute inside a block opened on the same line
/// (`host "a" { address = "x"  profile = "y" }`)?
fn in_one_line_block(text: &str, offset: usize) -> bool {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    before
        .rfind('{')
        .is_some_and(|open| before[open..].contains('=') && !before[open..].contains('}'))
}

/// A parse error as a diagnostic at its position.
pub(crate) fn syntax_error(file: FileId, text: &str, e: &hcl_edit::parser::Error) -> Diagnostic {
    let loc = e.location();
    let mut offset = loc.offset().min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let msg = e.message().trim();
    // hcl-edit rejects an attribute set twice in one block as a syntax
    // error; say it the way the other checks do.
    if msg.contains("redefined attribute") {
        let name: String = text[offset..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        return Diagnostic::error(format!("attribute `{name}` is set twice"))
            .at(Span::new(file, offset..offset + name.len().max(1)))
            .help("remove one of the two");
    }
    let msg = if msg.is_empty() {
        "invalid syntax"
    } else {
        msg
    };
    let at = text[offset..].chars().next();
    if text[offset..].trim().is_empty() && !text.is_empty() {
        // The parser ran off the end: something opened was never closed.
        return Diagnostic::error(format!("syntax error: unexpected end of file ({msg})"))
            .at(Span::new(file, offset..offset + 1))
            .help("a block, list, object, `(` or string is not closed: check that every `{`, `[`, `(` and `\"` above has its closing pair");
    }
    let help = if msg.contains("nesting depth") {
        "nest expressions less deeply: give inner parts names in a `locals` block"
    } else if at == Some('\'') {
        "strings are written in double quotes: `\"host\"`"
    } else if at == Some(':') {
        "attributes are set with `=`: `name = value`"
    } else if msg.ends_with("expected `]`") {
        "separate list elements with `,`: `[a, b]`"
    } else if msg.contains("invalid block body") && in_one_line_block(text, offset) {
        "a block written on one line holds one attribute: put each attribute of this block on its own line"
    } else {
        "check for a missing `=`, `}`, `]`, `)` or quote near here"
    };
    Diagnostic::error(format!("syntax error: {msg}"))
        .at(Span::new(file, offset..offset + 1))
        .help(help)
}
