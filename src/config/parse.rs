//! Parsing: the testbed's files and the `-var-file` files read and parsed
//! once, into a [`Parsed`] testbed that can then be evaluated as often as
//! the caller needs (settings first, then the whole testbed).
//!
//! Owns which files are read (see [`super::source`]), the byte-level and
//! syntax checks, decoding against the schema, and what a failure at this
//! stage means for later ones ([`eval::Mode`]). Evaluates nothing.

use std::path::PathBuf;
use std::sync::OnceLock;

use indexmap::IndexMap;

use super::decode::{self, RawAttr, RawBlock};
use super::eval::{self, Declarations};
use super::model::Testbed;
use super::{source, syntax_error, LoadError, LoadOptions, Prior, Settings};
use crate::diagnostics::{Diagnostic, Diagnostics, SourceMap};

/// A testbed read and parsed, not yet evaluated.
#[derive(Debug)]
pub struct Parsed {
    pub(super) opts: LoadOptions,
    pub(super) sources: SourceMap,
    /// Every block of every file, in file then declaration order.
    pub(super) blocks: Vec<RawBlock>,
    /// The `-var-file` files, in command-line order.
    pub(super) var_files: Vec<VarFile>,
    /// What reading, parsing and decoding found.
    pub(super) diags: Diagnostics,
    pub(super) mode: eval::Mode,
    /// The static checks' results, computed on first use.
    pub(super) declarations: OnceLock<Declarations>,
}

/// One `-var-file`: its `name = value` lines, and what is wrong with it
/// (reported when variables are evaluated, as before they were read then).
#[derive(Debug, Default)]
pub(super) struct VarFile {
    pub attrs: Vec<RawAttr>,
    pub problems: Diagnostics,
}

/// Read and parse the testbed in `opts.dir` and the variable files of
/// `opts.var_files`. Fails only when no testbed can come of it: the
/// directory cannot be read, has no testbed files, or a file cannot be
/// read or parsed (then every such problem is reported). Schema errors
/// (an unknown attribute, ...) are kept and reported by
/// [`Parsed::settings`] and [`Parsed::evaluate`], with the static checks.
pub fn parse(opts: &LoadOptions) -> Result<Parsed, LoadError> {
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let fail = |diags: Diagnostics, sources: SourceMap| LoadError {
        diagnostics: diags,
        sources,
    };
    let listing = match source::testbed_files(&opts.dir) {
        Ok(l) => l,
        Err(e) => {
            diags.push(
                Diagnostic::error(format!(
                    "cannot read the directory `{}`: {e}",
                    opts.dir.display()
                ))
                .help("run tg in a testbed directory, or pass `-chdir DIR`"),
            );
            return Err(fail(diags, sources));
        }
    };
    if listing.files.is_empty() && listing.refused.is_empty() {
        diags.push(
            Diagnostic::error(format!(
                "no testbed files (`*{}`) in `{}`",
                source::TESTBED_SUFFIX,
                opts.dir.display()
            ))
            .help("run tg in a testbed directory, or pass `-chdir DIR`"),
        );
        return Err(fail(diags, sources));
    }
    let mut unreadable = !listing.refused.is_empty();
    for d in listing.refused {
        diags.push(d);
    }
    let mut ids = Vec::new();
    for path in listing.files {
        let shown = source::display_path(&opts.dir, &path);
        match source::read_source(&path, shown, &mut sources, &mut diags) {
            Some(id) => ids.push(id),
            None => unreadable = true,
        }
    }
    parse_sources(opts, sources, &ids, diags, unreadable)
}

/// Parse testbed files given as text (tests).
#[cfg(test)]
pub(crate) fn parse_texts(opts: &LoadOptions, files: &[(&str, &str)]) -> Result<Parsed, LoadError> {
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let mut ids = Vec::new();
    for (name, text) in files {
        let id = sources.add(crate::diagnostics::SourceFile::new(*name, text.to_string()));
        source::check_bidi(id, &sources, &mut diags);
        ids.push(id);
    }
    parse_sources(opts, sources, &ids, diags, false)
}

/// Parse the files read into `sources` (`ids`, in order); `unreadable`
/// says some could not be read.
fn parse_sources(
    opts: &LoadOptions,
    mut sources: SourceMap,
    ids: &[crate::diagnostics::FileId],
    mut diags: Diagnostics,
    mut unreadable: bool,
) -> Result<Parsed, LoadError> {
    let fail = |diags: Diagnostics, sources: SourceMap| LoadError {
        diagnostics: diags,
        sources,
    };
    let mut blocks = Vec::new();
    for &id in ids {
        let text = &sources.get(id).text;
        match hcl_edit::parser::parse_body(text) {
            Ok(body) => blocks.extend(decode::decode_body(id, body, &mut diags)),
            Err(e) => {
                unreadable = true;
                diags.push(syntax_error(id, text, &e));
            }
        }
    }
    if unreadable {
        // A file that could not be read or parsed hides its declarations:
        // any further check would only report their absence.
        return Err(fail(diags, sources));
    }
    // Schema errors (an unknown or missing attribute, a block dropped for
    // its labels) still let the static checks run, but not evaluation,
    // whose errors would mostly be consequences ("has no image" after
    // "unknown attribute `imgae`"). A bidirectional control character is
    // one too: the file reads differently from what it means.
    let mode = if diags.has_errors() {
        eval::Mode::StaticChecks
    } else {
        eval::Mode::Full
    };
    give_packages_requires(&mut blocks);
    let var_files = opts
        .var_files
        .iter()
        .map(|p| read_var_file(opts, p, &mut sources))
        .collect();
    Ok(Parsed {
        opts: opts.clone(),
        sources,
        blocks,
        var_files,
        diags,
        mode,
        declarations: OnceLock::new(),
    })
}

/// A package without `on` describes its implicit node in `requires`: give
/// it an empty one when absent, so there is always one to read.
fn give_packages_requires(blocks: &mut [RawBlock]) {
    for b in blocks.iter_mut() {
        if b.kind == "package"
            && b.attr("on").is_none()
            && !b.blocks.iter().any(|nb| nb.kind == "requires")
        {
            b.blocks.push(RawBlock {
                kind: "requires".into(),
                labels: vec![],
                span: b.span.clone(),
                attrs: IndexMap::new(),
                blocks: vec![],
            });
        }
    }
}

/// Read and parse one `-var-file` (relative paths start from the caller's
/// working directory).
fn read_var_file(opts: &LoadOptions, path: &PathBuf, sources: &mut SourceMap) -> VarFile {
    let full = if path.is_absolute() {
        path.clone()
    } else {
        opts.cwd_or_dir().join(path)
    };
    let mut out = VarFile::default();
    let Some(id) = source::read_source(&full, path.clone(), sources, &mut out.problems) else {
        return out;
    };
    let text = &sources.get(id).text;
    let body = match hcl_edit::parser::parse_body(text) {
        Ok(b) => b,
        Err(e) => {
            out.problems.push(syntax_error(id, text, &e));
            return out;
        }
    };
    for st in body {
        match st {
            hcl_edit::structure::Structure::Attribute(a) => {
                let span = decode::span_of(id, &a.key);
                let expr_span = decode::span_of(id, &a.value);
                out.attrs.push(RawAttr {
                    name: a.key.as_str().to_string(),
                    expr: a.value,
                    span,
                    expr_span,
                });
            }
            hcl_edit::structure::Structure::Block(b) => {
                out.problems.push(
                    Diagnostic::error("variable files hold `name = value` lines, not blocks")
                        .at(decode::span_of(id, &b.ident)),
                );
            }
        }
    }
    out
}

impl Parsed {
    /// The files read, to render diagnostics with.
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// The options it was parsed with.
    pub fn options(&self) -> &LoadOptions {
        &self.opts
    }

    /// The static checks (declarations, references, cycles), once.
    pub(super) fn declarations(&self) -> &Declarations {
        self.declarations
            .get_or_init(|| eval::Checker::new(self).run())
    }

    /// Every error the parse and the static checks found, if any.
    fn static_errors(&self) -> Option<LoadError> {
        let decl = self.declarations();
        if !self.diags.has_errors() && !decl.diags.has_errors() {
            return None;
        }
        let mut diags = self.diags.clone();
        diags.extend(decl.diags.clone());
        diags.sort();
        Some(self.error(diags))
    }

    fn error(&self, diagnostics: Diagnostics) -> LoadError {
        LoadError {
            diagnostics,
            sources: self.sources.clone(),
        }
    }

    /// The `moved` blocks, in the order they apply; none when the static
    /// checks failed (evaluating then reports why). Known before
    /// evaluation, so a caller can rename what state recorded first and
    /// the moved instances keep their addresses.
    pub fn moves(&self) -> Vec<super::model::Move> {
        if self.static_errors().is_some() {
            return Vec::new();
        }
        self.declarations().moves.clone()
    }

    /// Where state is kept and which platforms are declared: the `state`
    /// and `platform` blocks, evaluated with only the variables and locals
    /// they use. Fails with every error of the testbed's structure (as
    /// [`Parsed::evaluate`] would), or those of the settings' own values.
    pub fn settings(&self) -> Result<Settings, LoadError> {
        if let Some(e) = self.static_errors() {
            return Err(e);
        }
        let prior = Prior::default();
        let mut ev = eval::Evaluator::new(self, self.declarations(), &prior);
        match ev.run_settings() {
            Ok(s) => Ok(s),
            Err(d) => Err(self.error(d)),
        }
    }

    /// Evaluate the whole testbed as [`Parsed::evaluate`] does, and keep
    /// its values for expressions (`tg console`).
    pub fn console<'p>(
        &'p self,
        prior: &'p Prior,
    ) -> Result<(eval::console::Console<'p>, Diagnostics), LoadError> {
        if let Some(e) = self.static_errors() {
            return Err(e);
        }
        let ev = eval::Evaluator::new(self, self.declarations(), prior);
        eval::console::Console::new(ev).map_err(|d| self.error(d))
    }

    /// Evaluate the whole testbed; `prior` holds what state recorded, so
    /// existing instances keep their addresses. On success the testbed comes
    /// with its warnings.
    pub fn evaluate(&self, prior: &Prior) -> Result<(Testbed, Diagnostics), LoadError> {
        if let Some(e) = self.static_errors() {
            return Err(e);
        }
        let ev = eval::Evaluator::new(self, self.declarations(), prior);
        match ev.run() {
            Ok((tb, warnings)) => Ok((tb, warnings)),
            Err(d) => Err(self.error(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server parses once and evaluates from several threads.
    #[test]
    fn parsed_testbeds_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Parsed>();
    }

    #[test]
    fn parse_once_evaluate_twice() {
        let opts = crate::config::eval::testing::options();
        let parsed = parse_texts(
            &opts,
            &[(
                "main.tg.hcl",
                "network \"lab\" {\n  cidr = \"10.0.0.0/24\"\n}\nnode \"a\" {\n  image = \"host\"\n}\nnode \"b\" {\n  image = \"host\"\n}\n",
            )],
        )
        .unwrap();
        let (tb, _) = parsed.evaluate(&Prior::default()).unwrap();
        let addr = |tb: &Testbed, n: &str| {
            tb.instances[&n.parse::<crate::addrs::InstanceAddr>().unwrap()].attributes["address"]
                .clone()
        };
        assert_eq!(addr(&tb, "node.a"), "10.0.0.2");
        // State recorded `b` at .2: the same parse, evaluated again, keeps it.
        let prior = Prior {
            node_addresses: [(
                "node.b".parse().unwrap(),
                [("lab".to_string(), "10.0.0.2".parse().unwrap())].into(),
            )]
            .into(),
            ..Prior::default()
        };
        let (tb, _) = parsed.evaluate(&prior).unwrap();
        assert_eq!(addr(&tb, "node.b"), "10.0.0.2");
        assert_eq!(addr(&tb, "node.a"), "10.0.0.3");
        assert!(parsed.settings().is_ok());
    }
}
