//! Config: testbed files (`*.tg.hcl`) in, an evaluated [`model::Testbed`] out.
//!
//! Owns reading and parsing the files (hcl-edit, keeping spans), the
//! language's static checks, evaluation of expressions (hcl-rs with tg's own
//! function library), expansion of `count`/`for_each`, and address
//! assignment (IPAM). Does no I/O but reading files and environment
//! variables; never talks to state or platforms.

mod checked;
pub mod decode;
pub mod eval;
pub mod functions;
pub mod ipam;
pub mod model;
pub mod refs;
pub mod source;
pub mod types;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use crate::addrs::InstanceAddr;
use crate::diagnostics::{Diagnostic, Diagnostics, FileId, SourceMap, Span};

/// What `load` needs besides the files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The testbed directory.
    pub dir: PathBuf,
    /// `-var name=value`, in command-line order.
    pub vars: Vec<String>,
    /// `-var-file FILE`, in command-line order.
    pub var_files: Vec<PathBuf>,
    /// What state recorded, so addresses and CIDRs stay put (IPAM stickiness).
    pub prior: Prior,
    /// The caller's environment variables (`TG_VAR_*`, `env()`, `HOME`)
    /// and working directory (relative `-var-file` paths). Never the
    /// process's own: see [`crate::environment`].
    pub env: crate::environment::Environment,
    /// The platform driver kinds the caller's factory offers (`netns`,
    /// `ssh`, ...): what `platform "KIND" "NAME"` blocks and a node's
    /// `platform = "KIND"` may name, besides declared platform blocks.
    pub drivers: Vec<String>,
}

/// Addresses recorded in state: IPAM keeps them for existing instances.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// node instance → network name → address.
    pub node_addresses: BTreeMap<InstanceAddr, BTreeMap<String, Ipv4Addr>>,
    /// network instance → CIDR.
    pub network_cidrs: BTreeMap<InstanceAddr, Ipv4Net>,
}

/// A failed load: every problem found, with the sources to render them.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub diagnostics: Diagnostics,
    pub sources: SourceMap,
}

impl LoadOptions {
    /// Where relative `-var-file` paths are resolved: the caller's working
    /// directory.
    pub fn cwd_or_dir(&self) -> PathBuf {
        let cwd = self.env.cwd();
        if cwd.as_os_str().is_empty() {
            self.dir.clone()
        } else {
            cwd.to_path_buf()
        }
    }
}

/// What must be known before state is read: where state lives and which
/// platforms the testbed declares.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub state: model::StateBackendConfig,
    pub platforms: Vec<model::PlatformConfig>,
}

/// Evaluate only the settings of the testbed in `opts.dir` (`state` and
/// `platform` blocks, and what they refer to).
pub fn load_settings(opts: &LoadOptions) -> Result<Settings, LoadError> {
    // Until evaluation is split in stages, the settings come from a whole
    // evaluation without prior addresses.
    let no_prior = LoadOptions {
        prior: Prior::default(),
        ..opts.clone()
    };
    load(&no_prior).map(|(tb, _)| Settings {
        state: tb.state,
        platforms: tb.platforms,
    })
}

/// Read, check and evaluate the testbed in `opts.dir`. On success the
/// testbed comes with its warnings.
pub fn load(opts: &LoadOptions) -> Result<(model::Testbed, Diagnostics), LoadError> {
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let files = match source::testbed_files(&opts.dir) {
        Ok(f) => f,
        Err(e) => {
            diags.push(
                Diagnostic::error(format!(
                    "cannot read the directory `{}`: {e}",
                    opts.dir.display()
                ))
                .help("run tg in a testbed directory, or pass `-chdir DIR`"),
            );
            return Err(LoadError {
                diagnostics: diags,
                sources,
            });
        }
    };
    if files.is_empty() {
        diags.push(
            Diagnostic::error(format!(
                "no testbed files (`*{}`) in `{}`",
                source::TESTBED_SUFFIX,
                opts.dir.display()
            ))
            .help("run tg in a testbed directory, or pass `-chdir DIR`"),
        );
        return Err(LoadError {
            diagnostics: diags,
            sources,
        });
    }
    let mut blocks = Vec::new();
    let mut unreadable = false;
    for path in files {
        let shown = source::display_path(&opts.dir, &path);
        let Some(id) = source::read_source(&path, shown, &mut sources, &mut diags) else {
            unreadable = true;
            continue;
        };
        let text = &sources.get(id).text;
        match hcl_edit::parser::parse_body(text) {
            Ok(body) => blocks.extend(decode::decode_body(id, body, &mut diags)),
            Err(e) => {
                unreadable = true;
                diags.push(syntax_error(id, text, &e));
            }
        }
    }
    let parse_failed = diags.has_errors();
    // A file that could not be read or parsed hides its declarations: any
    // further check would only report their absence. Schema errors (an
    // unknown or missing attribute, a block dropped for its labels) still
    // let the static checks run, but not evaluation, whose errors would
    // mostly be consequences ("has no image" after "unknown attribute
    // `imgae`").
    let mode = match (unreadable, parse_failed) {
        (true, _) => eval::Mode::Nothing,
        (false, true) => eval::Mode::StaticChecks,
        (false, false) => eval::Mode::Full,
    };
    let (testbed, more, sources) = eval::Evaluator::new(opts, sources, blocks).run(mode);
    diags.extend(more);
    diags.sort();
    match testbed {
        Some(tb) if !parse_failed => Ok((tb, diags)),
        _ => Err(LoadError {
            diagnostics: diags,
            sources,
        }),
    }
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
