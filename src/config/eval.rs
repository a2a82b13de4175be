//! Evaluation: raw blocks in, an evaluated [`Testbed`] out.
//!
//! The order is fixed by the language: variables, locals, networks (with
//! pool CIDRs), profiles, node placement (count/for_each, networks, fixed
//! addresses), IPAM, the rest of node attributes, packages, outputs. Before
//! any of it, every reference and function call of every expression is
//! checked and block-level dependency cycles are found, so a user sees all
//! such problems at once. Evaluation errors point at the attribute.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::rc::Rc;

use hcl::eval::Evaluate;
use hcl::Value;
use indexmap::IndexMap;
use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use super::checked;
use super::decode::{RawAttr, RawBlock};
use super::functions;
use super::ipam::{self, NetAlloc, Refused};
use super::model::{
    DesiredInstance, OutputValue, PlatformConfig, PoolHost, StateBackendConfig, Testbed,
};
use super::refs::{self, Reference};
use super::types::{self, VarType};
use super::{LoadOptions, Prior};
use crate::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics, SourceMap, Span};
use crate::names;
use crate::platform::{Interface, NetworkSpec, NodeSpec, PackageSource, PackageSpec, Spec};

/// Node attributes usable in expressions.
pub const NODE_ATTRS: &[&str] = &[
    "id",
    "name",
    "hostname",
    "address",
    "addresses",
    "platform",
    "image",
    "profile",
    "labels",
    "cpus",
    "memory",
];
/// Network attributes usable in expressions.
pub const NETWORK_ATTRS: &[&str] = &["id", "name", "cidr", "nat", "gateway"];
/// Package attributes usable in expressions.
pub const PACKAGE_ATTRS: &[&str] = &["id", "name", "version", "nodes"];
/// Builtin platforms a node may name.
pub const BUILTIN_PLATFORMS: &[&str] = &["netns"];
/// Most instances one resource may expand to.
pub const MAX_INSTANCES: u64 = 100_000;

/// Which roots an expression may refer to.
#[derive(Debug, Clone, Copy, Default)]
struct Allow {
    var: bool,
    local: bool,
    network: bool,
    node: bool,
    package: bool,
    count: bool,
    each: bool,
}

const NOTHING: Allow = Allow {
    var: false,
    local: false,
    network: false,
    node: false,
    package: false,
    count: false,
    each: false,
};
const VARS: Allow = Allow {
    var: true,
    local: true,
    ..NOTHING
};

/// The `count.index` / `each.key` of an instance being evaluated.
#[derive(Debug, Clone, Default)]
struct Repetition {
    count: Option<u64>,
    each: Option<(Value, Value)>,
}

/// How a resource expands.
#[derive(Debug, Clone)]
enum Expansion {
    Single,
    Count(u64),
    ForEach(Vec<(String, Value)>),
}

impl Expansion {
    fn instances(&self) -> Vec<(InstanceKey, Repetition)> {
        match self {
            Expansion::Single => vec![(InstanceKey::None, Repetition::default())],
            Expansion::Count(n) => (0..*n)
                .map(|i| {
                    (
                        InstanceKey::Int(i),
                        Repetition {
                            count: Some(i),
                            each: None,
                        },
                    )
                })
                .collect(),
            Expansion::ForEach(items) => items
                .iter()
                .map(|(k, v)| {
                    (
                        InstanceKey::Str(k.clone()),
                        Repetition {
                            count: None,
                            each: Some((Value::from(k.as_str()), v.clone())),
                        },
                    )
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
struct NetInst {
    addr: InstanceAddr,
    block: usize,
    host: String,
    cidr: Option<Ipv4Net>,
    cidr_span: Span,
    nat: bool,
    prevent_destroy: bool,
    depends_on: Vec<InstanceAddr>,
}

#[derive(Debug, Clone)]
struct NodeInst {
    addr: InstanceAddr,
    /// The block: a node block, or the package block of an implicit node.
    block: usize,
    rep: Repetition,
    host: String,
    networks: Vec<usize>,
    fixed: Option<(Ipv4Addr, Span)>,
    addresses: Vec<Ipv4Addr>,
    object: hcl::Map<String, Value>,
    spec: Option<NodeSpec>,
    platform: Option<String>,
    prevent_destroy: bool,
    depends_on: Vec<InstanceAddr>,
}

#[derive(Debug, Clone, Default)]
struct Profile {
    image: Option<String>,
    cpus: Option<f64>,
    memory_mib: Option<u64>,
    labels: BTreeMap<String, String>,
    platform: Option<String>,
}

/// How far [`Evaluator::run`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Every stage: a testbed, or every error found.
    Full,
    /// Declarations, references, functions and cycles only (the files had
    /// schema errors: evaluating would mostly report their consequences).
    StaticChecks,
    /// Nothing (a file could not be read or parsed).
    Nothing,
}

pub(super) struct Evaluator<'o> {
    opts: &'o LoadOptions,
    pub sources: SourceMap,
    pub diags: Diagnostics,
    blocks: Rc<Vec<RawBlock>>,
    /// kind → name → block index, declaration order.
    declared: HashMap<&'static str, IndexMap<String, usize>>,
    /// local name → (block index, attribute name)
    locals: IndexMap<String, (usize, String)>,
    var_values: hcl::Map<String, Value>,
    var_raw: BTreeMap<String, String>,
    sensitive_vars: HashSet<String>,
    local_values: hcl::Map<String, Value>,
    expansions: HashMap<(ResourceKind, String), Expansion>,
    nets: Vec<NetInst>,
    net_by_addr: HashMap<InstanceAddr, usize>,
    profiles: HashMap<String, Profile>,
    nodes: Vec<NodeInst>,
    node_by_addr: HashMap<InstanceAddr, usize>,
    /// Node instances of each node resource, in key order.
    node_resource: HashMap<String, Vec<usize>>,
    packages: Vec<DesiredInstance>,
    package_values: hcl::Map<String, Value>,
    outputs: IndexMap<String, OutputValue>,
    /// Values that failed (`var.x`, `network.lab`, `profile.p`, ...): what
    /// refers to them is skipped without a message, so one mistake is
    /// reported once, not again as the failure of everything that uses it.
    poisoned: HashSet<String>,
    /// An expression was skipped because it refers to a poisoned value.
    silenced: bool,
    /// The value being evaluated and the error count when it began.
    current: Option<(String, usize)>,
    /// Node instances the expressions evaluated since the last reset
    /// referred to one by one (`node.a[count.index]`), and node resources
    /// they referred to whole (`node.a[*]`): a node's dependencies.
    referred_instances: Vec<InstanceAddr>,
    referred_resources: HashSet<String>,
}

impl<'o> Evaluator<'o> {
    pub fn new(opts: &'o LoadOptions, sources: SourceMap, mut blocks: Vec<RawBlock>) -> Self {
        // A package without `on` describes its implicit node in `requires`:
        // give it an empty one when absent, so there is always one to read.
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
        Evaluator {
            opts,
            sources,
            diags: Diagnostics::default(),
            blocks: Rc::new(blocks),
            declared: HashMap::new(),
            locals: IndexMap::new(),
            var_values: hcl::Map::new(),
            var_raw: BTreeMap::new(),
            sensitive_vars: HashSet::new(),
            local_values: hcl::Map::new(),
            expansions: HashMap::new(),
            nets: Vec::new(),
            net_by_addr: HashMap::new(),
            profiles: HashMap::new(),
            nodes: Vec::new(),
            node_by_addr: HashMap::new(),
            node_resource: HashMap::new(),
            packages: Vec::new(),
            package_values: hcl::Map::new(),
            outputs: IndexMap::new(),
            poisoned: HashSet::new(),
            silenced: false,
            current: None,
            referred_instances: Vec::new(),
            referred_resources: HashSet::new(),
        }
    }

    /// Begin evaluating value `id` (`network.lab`); closes the previous one.
    fn open_value(&mut self, id: String) {
        self.close_value();
        self.current = Some((id, self.diags.error_count()));
        self.silenced = false;
    }

    /// End the current value: poison it if it failed or was skipped.
    fn close_value(&mut self) {
        if let Some((id, errors)) = self.current.take() {
            if self.diags.error_count() > errors || self.silenced {
                self.poisoned.insert(id);
            }
        }
        self.silenced = false;
    }

    fn is_poisoned(&self, root: &str, name: &str) -> bool {
        !self.poisoned.is_empty() && self.poisoned.contains(&format!("{root}.{name}"))
    }

    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn declared(&self, kind: &str) -> Option<&IndexMap<String, usize>> {
        self.declared.get(kind)
    }

    fn is_declared(&self, kind: &str, name: &str) -> bool {
        self.declared(kind).is_some_and(|m| m.contains_key(name))
    }

    fn names_of(&self, kind: &str) -> Vec<String> {
        self.declared(kind)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Run the stages `mode` asks for; errors accumulate in `self.diags`.
    pub fn run(mut self, mode: Mode) -> (Option<Testbed>, Diagnostics, SourceMap) {
        if mode == Mode::Nothing {
            return (None, self.diags, self.sources);
        }
        self.declare();
        self.check_all_references();
        if !self.diags.has_errors() {
            self.check_cycles();
        }
        if mode == Mode::StaticChecks {
            self.diags.sort();
            return (None, self.diags, self.sources);
        }
        // Structure errors stop here; from now on a failed value only
        // stops what depends on it (see `poisoned`), so independent
        // problems are all reported in one run.
        if self.diags.has_errors() {
            self.diags.sort();
            return (None, self.diags, self.sources);
        }
        let stages: [fn(&mut Self); 9] = [
            Self::eval_variables,
            Self::eval_locals,
            Self::eval_networks,
            Self::eval_profiles,
            Self::place_nodes,
            Self::assign_addresses,
            Self::eval_nodes,
            Self::eval_packages,
            Self::eval_outputs,
        ];
        for stage in stages {
            stage(&mut self);
            self.close_value();
        }
        let settings = if !self.diags.has_errors() {
            Some(self.eval_settings())
        } else {
            None
        };
        self.diags.sort();
        if self.diags.has_errors() {
            return (None, self.diags, self.sources);
        }
        let (name, description, state, platforms) = settings.unwrap_or_default();
        let tb = self.finish(name, description, state, platforms);
        (Some(tb), self.diags, self.sources)
    }

    // ----- declarations -------------------------------------------------

    fn declare(&mut self) {
        let blocks = self.blocks.clone();
        let mut singletons: HashMap<&str, Span> = HashMap::new();
        for (i, b) in blocks.iter().enumerate() {
            let kind: &'static str = match b.kind.as_str() {
                "variable" => "variable",
                "profile" => "profile",
                "network" => "network",
                "node" => "node",
                "package" => "package",
                "output" => "output",
                "platform" => "platform",
                "locals" => {
                    for (name, a) in &b.attrs {
                        if let Some((bi, an)) = self.locals.get(name) {
                            let first = blocks[*bi].attrs[an].span.clone();
                            let d = Diagnostic::error(format!(
                                "local value `{name}` is declared twice"
                            ))
                            .at(a.span.clone())
                            .help(format!(
                                "the first is at {}: rename or remove one",
                                self.loc(&first)
                            ));
                            self.err(d);
                            continue;
                        }
                        self.locals.insert(name.clone(), (i, name.clone()));
                    }
                    continue;
                }
                other @ ("testbed" | "state") => {
                    if let Some(first) = singletons.get(other) {
                        let d = Diagnostic::error(format!("only one `{other}` block is allowed"))
                            .at(b.span.clone())
                            .help(format!("merge it with the one at {}", self.loc(first)));
                        self.err(d);
                    } else {
                        singletons.insert(
                            if other == "testbed" {
                                "testbed"
                            } else {
                                "state"
                            },
                            b.span.clone(),
                        );
                    }
                    continue;
                }
                _ => continue,
            };
            let name = if kind == "platform" {
                b.labels.get(1).cloned().unwrap_or_default()
            } else {
                b.label().to_string()
            };
            let check = match kind {
                "network" | "node" => names::check_resource_name(&name),
                "profile" => names::check_profile_name(&name),
                "package" => names::check_debian_package(&name),
                _ => names::check_identifier(&name),
            };
            if let Err(why) = check {
                let what = match kind {
                    "network" | "node" => format!("invalid {kind} name `{name}`: {why}"),
                    "package" => format!("invalid package name `{name}`: {why}"),
                    _ => format!("invalid {kind} name `{name}`: {why}"),
                };
                let help = match kind {
                    "network" | "node" => "it becomes a host name and part of host object names: use lowercase letters, digits and `-`, such as `edge-eu`",
                    "package" => "use the package's name as Debian spells it, such as `nginx` or `libssl3`",
                    "profile" => "use lowercase letters, digits and `-`, `_`, `.`, `:`, such as `cdn:basic`",
                    _ => "use letters, digits, `_` and `-`, starting with a letter",
                };
                self.err(Diagnostic::error(what).at(b.span.clone()).help(help));
            }
            let map = self.declared.entry(kind).or_default();
            if let Some(&first) = map.get(&name) {
                let first_span = blocks[first].span.clone();
                let d = Diagnostic::error(format!("{kind} `{name}` is declared twice"))
                    .at(b.span.clone())
                    .help(format!(
                        "the first is at {}: rename or remove one",
                        self.loc(&first_span)
                    ));
                self.err(d);
                continue;
            }
            map.insert(name, i);
        }
        // A node and a package's implicit node must not clash, nor two
        // packages' implicit nodes (`python3.11` and `python3-11`).
        let mut implicit_of: HashMap<String, String> = HashMap::new();
        for (pkg, &bi) in self.declared("package").cloned().unwrap_or_default().iter() {
            if blocks[bi].attr("on").is_none() {
                let implicit = implicit_node_name(pkg);
                if let Some(other) = implicit_of.insert(implicit.clone(), pkg.clone()) {
                    let d = Diagnostic::error(format!(
                        "packages `{other}` and `{pkg}` have no `on`, and would both get the node `{implicit}`"
                    ))
                    .at(blocks[bi].span.clone())
                    .help("add `on = [...]` to one of them");
                    self.err(d);
                    continue;
                }
                if self.is_declared("node", &implicit) {
                    let d = Diagnostic::error(format!(
                        "package `{pkg}` has no `on`, and its node `{implicit}` clashes with a node of that name"
                    ))
                    .at(blocks[bi].span.clone())
                    .help("add `on = [...]` to the package, or rename the node");
                    self.err(d);
                }
            }
        }
    }

    fn loc(&self, span: &Span) -> String {
        let f = self.sources.get(span.file);
        let p = f.position(span.range.start);
        format!("{}:{}:{}", f.path.display(), p.line, p.column)
    }

    // ----- reference checks ---------------------------------------------

    /// What each attribute of each block may refer to.
    fn allow_for(&self, block: &RawBlock, attr: &str, nested: Option<&str>) -> Allow {
        let rep = Allow {
            count: block.attrs.contains_key("count"),
            each: block.attrs.contains_key("for_each"),
            ..NOTHING
        };
        match (block.kind.as_str(), nested) {
            ("variable", Some("validation")) => Allow {
                var: true,
                ..NOTHING
            },
            ("variable", _) => NOTHING,
            ("locals", _) | ("profile", _) | ("testbed", _) | ("state", _) | ("platform", _) => {
                VARS
            }
            ("network", Some("lifecycle"))
            | ("node", Some("lifecycle"))
            | ("package", Some("lifecycle")) => NOTHING,
            ("network", _) => match attr {
                "count" | "for_each" => Allow {
                    network: false,
                    ..VARS
                },
                _ => Allow {
                    network: true,
                    ..VARS.merge(rep)
                },
            },
            ("node", _) => match attr {
                "count" | "for_each" => Allow {
                    network: true,
                    ..VARS
                },
                "network" | "networks" | "address" => Allow {
                    network: true,
                    ..VARS.merge(rep)
                },
                _ => Allow {
                    network: true,
                    node: true,
                    ..VARS.merge(rep)
                },
            },
            ("package", Some("requires")) => Allow {
                network: true,
                ..VARS
            },
            ("package", _) => Allow {
                network: true,
                node: true,
                ..VARS
            },
            ("output", _) => Allow {
                network: true,
                node: true,
                package: true,
                ..VARS
            },
            _ => VARS,
        }
    }

    fn check_all_references(&mut self) {
        let blocks = self.blocks.clone();
        for b in blocks.iter() {
            for (name, a) in &b.attrs {
                if name == "depends_on" {
                    self.check_depends_on(b, a);
                    continue;
                }
                if b.kind == "variable" && name == "type" {
                    if let Err(why) = types::parse_type(&a.expr) {
                        self.err(
                            Diagnostic::error(format!("invalid type: {why}"))
                                .at(a.expr_span.clone()),
                        );
                    }
                    continue;
                }
                let allow = self.allow_for(b, name, None);
                self.check_refs(b, a, allow);
            }
            for nb in &b.blocks {
                for (name, a) in &nb.attrs {
                    let allow = self.allow_for(b, name, Some(&nb.kind));
                    self.check_refs(b, a, allow);
                }
            }
        }
    }

    fn check_refs(&mut self, block: &RawBlock, a: &RawAttr, allow: Allow) {
        let found = refs::scan(a.expr_span.file, &a.expr);
        for call in &found.calls {
            if !functions::NAMES.contains(&call.name.as_str()) {
                let mut d = Diagnostic::error(format!("unknown function `{}`", call.name))
                    .at(call.span.clone());
                d = match did_you_mean(&call.name, functions::NAMES.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("see the list of functions in docs/language.md"),
                };
                self.err(d);
            }
        }
        for r in &found.refs {
            if let Some(d) = self.check_ref(block, &a.name, r, allow) {
                self.err(d);
            }
        }
    }

    fn check_ref(
        &self,
        block: &RawBlock,
        attr: &str,
        r: &Reference,
        allow: Allow,
    ) -> Option<Diagnostic> {
        let here = if block.labels.is_empty() {
            format!("a `{}` block", block.kind)
        } else {
            format!(
                "{} `{}`",
                block.kind,
                block.labels.last().cloned().unwrap_or_default()
            )
        };
        let not_here = |what: &str, why: &str| {
            Some(
                Diagnostic::error(format!("`{what}` cannot be used in `{attr}` of {here}"))
                    .at(r.span.clone())
                    .help(why.to_string()),
            )
        };
        let (kind, allowed, attrs): (&str, bool, &[&str]) = match r.root.as_str() {
            "var" => ("variable", allow.var, &[]),
            "local" => ("local", allow.local, &[]),
            "network" => ("network", allow.network, NETWORK_ATTRS),
            "node" => ("node", allow.node, NODE_ATTRS),
            "package" => ("package", allow.package, PACKAGE_ATTRS),
            "count" => {
                if !allow.count {
                    return not_here(
                        "count",
                        "`count.index` is only known in a block that sets `count`",
                    );
                }
                if r.name.as_deref() != Some("index") {
                    return Some(
                        Diagnostic::error("`count` only has the attribute `index`")
                            .at(r.span.clone())
                            .help("write `count.index`"),
                    );
                }
                return None;
            }
            "each" => {
                if !allow.each {
                    return not_here("each", "`each.key` and `each.value` are only known in a block that sets `for_each`");
                }
                if !matches!(r.name.as_deref(), Some("key") | Some("value")) {
                    return Some(
                        Diagnostic::error("`each` only has the attributes `key` and `value`")
                            .at(r.span.clone()),
                    );
                }
                return None;
            }
            other => {
                let roots = [
                    "var", "local", "network", "node", "package", "count", "each",
                ];
                let mut d =
                    Diagnostic::error(format!("unknown reference `{other}`")).at(r.span.clone());
                d = match (other, did_you_mean(other, roots)) {
                    ("profile" | "platform", _) => d.help(format!(
                        "a {other} is named with a string: write `{other} = \"{}\"`",
                        r.name.as_deref().unwrap_or("NAME")
                    )),
                    (_, s) => match s {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("references start with `var.`, `local.`, `network.`, `node.` or `package.`; a string needs quotes"),
                    },
                };
                return Some(d);
            }
        };
        let Some(name) = &r.name else {
            return Some(
                Diagnostic::error(format!("`{}` must be followed by a {kind} name", r.root))
                    .at(r.span.clone())
                    .help(format!("write `{}.NAME`", r.root)),
            );
        };
        let exists = match kind {
            "local" => self.locals.contains_key(name),
            "variable" => self.is_declared("variable", name),
            "node" => {
                self.is_declared("node", name)
                    || self.names_of("package").iter().any(|p| {
                        implicit_node_name(p) == *name
                            && self.declared["package"]
                                .get(p)
                                .is_some_and(|&bi| self.blocks[bi].attr("on").is_none())
                    })
            }
            k => self.is_declared(k, name),
        };
        if !exists {
            let candidates: Vec<String> = if kind == "local" {
                self.locals.keys().cloned().collect()
            } else {
                self.names_of(kind)
            };
            let mut d =
                Diagnostic::error(format!("unknown {kind} `{}.{name}`", r.root)).at(r.span.clone());
            d = match did_you_mean(name, candidates.iter().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{}.{s}`?", r.root)),
                None if candidates.is_empty() => d.help(match kind {
                    "local" => format!("no local value is declared: declare it in a `locals` block: `{name} = ...`"),
                    "variable" => format!("no variable is declared: declare it with `variable \"{name}\" {{ ... }}`"),
                    k => format!("no {k} is declared: declare it with `{k} \"{name}\" {{ ... }}`"),
                }),
                None => d.help(format!("declared: {}", candidates.join(", "))),
            };
            return Some(d);
        }
        if !allowed {
            let why = match (block.kind.as_str(), r.root.as_str()) {
                ("variable", _) => "variable defaults and types are constants; validations may use `var.` only",
                ("node", "node") => "`count`, `for_each`, `network`, `networks` and `address` are evaluated before node addresses exist, so they cannot refer to nodes",
                (_, "node") | (_, "network") | (_, "package") => "resources can be referred to from nodes, packages and outputs",
                _ => "this attribute is evaluated before that value exists",
            };
            return not_here(&format!("{}.{name}", r.root), why);
        }
        if let Some(d) = self.check_indexing(r, kind, name) {
            return Some(d);
        }
        if let Some(at) = &r.attr {
            if !attrs.is_empty() && !attrs.contains(&at.as_str()) {
                let mut d = Diagnostic::error(format!("a {kind} has no attribute `{at}`"))
                    .at(r.attr_span.clone().unwrap_or_else(|| r.span.clone()));
                d = match did_you_mean(at, attrs.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("a {kind} has: {}", attrs.join(", "))),
                };
                return Some(d);
            }
        }
        None
    }

    /// `node.edge.address` of a node with `count` (a list: it needs an
    /// index), and `node.one[0]` of a node without `count` or `for_each`.
    fn check_indexing(&self, r: &Reference, kind: &str, name: &str) -> Option<Diagnostic> {
        if !matches!(kind, "node" | "network") || r.splat {
            return None;
        }
        let block = self
            .declared(kind)
            .and_then(|m| m.get(name))
            .map(|&bi| &self.blocks[bi])?;
        let attr = r.attr.as_deref().unwrap_or("id");
        let repeated = ["count", "for_each"]
            .into_iter()
            .find(|a| block.attrs.contains_key(*a));
        match (repeated, r.indexed) {
            (Some(rep), false) if r.attr.is_some() => {
                let one = if rep == "count" { "[0]" } else { "[\"KEY\"]" };
                Some(
                    Diagnostic::error(format!(
                        "`{kind}.{name}` has `{rep}`: it is a {} of instances, not one",
                        if rep == "count" { "list" } else { "map" }
                    ))
                    .at(r.attr_span.clone().unwrap_or_else(|| r.span.clone()))
                    .help(format!(
                        "refer to one instance, such as `{kind}.{name}{one}.{attr}`, or to all with `{kind}.{name}[*].{attr}`"
                    )),
                )
            }
            (None, true) => Some(
                Diagnostic::error(format!(
                    "`{kind}.{name}` has no `count` or `for_each`: it is one instance, not a list"
                ))
                .at(r.span.clone())
                .help(format!("write `{kind}.{name}.{attr}`, without an index")),
            ),
            _ => None,
        }
    }

    fn check_depends_on(&mut self, b: &RawBlock, a: &RawAttr) {
        match refs::static_list(a.expr_span.file, &a.expr) {
            Err(span) => {
                let quoted = self
                    .sources
                    .get(span.file)
                    .text
                    .get(span.range.clone())
                    .is_some_and(|t| t.starts_with('"'));
                self.err(
                    Diagnostic::error("`depends_on` takes a list of resources")
                        .at(span)
                        .help(if quoted {
                            "write the resources without quotes: `depends_on = [node.edge, network.lab]`"
                        } else {
                            "write `depends_on = [node.edge, network.lab]`"
                        }),
                )
            }
            Ok(list) => {
                for (r, _) in list {
                    let allow = Allow {
                        network: true,
                        node: true,
                        package: true,
                        ..NOTHING
                    };
                    if !matches!(r.root.as_str(), "network" | "node" | "package") {
                        self.err(
                            Diagnostic::error(format!(
                                "`depends_on` takes resources, found `{}`",
                                r.root
                            ))
                            .at(r.span.clone())
                            .help("list networks, nodes or packages, such as `node.edge`"),
                        );
                        continue;
                    }
                    if let Some(d) = self.check_ref(b, "depends_on", &r, allow) {
                        self.err(d);
                    }
                }
            }
        }
    }

    // ----- cycles -------------------------------------------------------

    /// The block-level reference graph: `local.x`, `network.x`, `node.x`,
    /// `package.x` and what each refers to.
    /// Also returns, for each edge, where its first reference is written.
    #[allow(clippy::type_complexity)]
    fn block_graph(
        &self,
    ) -> (
        Vec<(String, Span)>,
        Vec<Vec<usize>>,
        HashMap<(usize, usize), Span>,
    ) {
        let mut ids: IndexMap<String, Span> = IndexMap::new();
        for (name, (bi, an)) in &self.locals {
            ids.insert(
                format!("local.{name}"),
                self.blocks[*bi].attrs[an].span.clone(),
            );
        }
        for kind in ["network", "node", "package"] {
            if let Some(m) = self.declared(kind) {
                for (name, &bi) in m {
                    ids.insert(format!("{kind}.{name}"), self.blocks[bi].span.clone());
                }
            }
        }
        let mut edges = vec![Vec::new(); ids.len()];
        let mut spans: HashMap<(usize, usize), Span> = HashMap::new();
        let add = |from: &str,
                   r: &Reference,
                   edges: &mut Vec<Vec<usize>>,
                   spans: &mut HashMap<(usize, usize), Span>| {
            let Some(name) = &r.name else { return };
            let to = format!("{}.{name}", r.root);
            let to = if r.root == "node" && !ids.contains_key(&to) {
                // An implicit node is its package.
                self.names_of("package")
                    .into_iter()
                    .find(|p| implicit_node_name(p) == *name)
                    .map(|p| format!("package.{p}"))
                    .unwrap_or(to)
            } else {
                to
            };
            if let (Some(f), Some(t)) = (ids.get_index_of(from), ids.get_index_of(&to)) {
                if !edges[f].contains(&t) {
                    edges[f].push(t);
                    spans.insert((f, t), r.span.clone());
                }
            }
        };
        for (name, (bi, an)) in &self.locals {
            let a = &self.blocks[*bi].attrs[an];
            for r in refs::scan(a.expr_span.file, &a.expr).refs {
                add(&format!("local.{name}"), &r, &mut edges, &mut spans);
            }
        }
        for kind in ["network", "node", "package"] {
            let Some(m) = self.declared(kind) else {
                continue;
            };
            for (name, &bi) in m {
                let from = format!("{kind}.{name}");
                let b = &self.blocks[bi];
                let attrs = b
                    .attrs
                    .values()
                    .chain(b.blocks.iter().flat_map(|nb| nb.attrs.values()));
                for a in attrs {
                    if a.name == "depends_on" {
                        if let Ok(list) = refs::static_list(a.expr_span.file, &a.expr) {
                            for (r, _) in list {
                                add(&from, &r, &mut edges, &mut spans);
                            }
                        }
                    } else {
                        for r in refs::scan(a.expr_span.file, &a.expr).refs {
                            add(&from, &r, &mut edges, &mut spans);
                        }
                    }
                }
            }
        }
        (ids.into_iter().collect(), edges, spans)
    }

    fn check_cycles(&mut self) {
        let (ids, edges, spans) = self.block_graph();
        for cycle in find_cycles(&edges) {
            let path: Vec<&str> = cycle.iter().map(|&i| ids[i].0.as_str()).collect();
            let first = cycle[0];
            let mut shown = path.join(" -> ");
            shown.push_str(" -> ");
            shown.push_str(path[0]);
            // Point at the reference that starts the cycle.
            let next = cycle.get(1).copied().unwrap_or(first);
            let at = spans
                .get(&(first, next))
                .cloned()
                .unwrap_or_else(|| ids[first].1.clone());
            let d = if cycle.len() == 1 {
                Diagnostic::error(format!("`{}` refers to itself", path[0]))
                    .at(at)
                    .help("remove the reference to itself")
            } else {
                Diagnostic::error(format!("dependency cycle: {shown}"))
                    .at(at)
                    .detail(
                        cycle
                            .iter()
                            .map(|&i| format!("{} at {}", ids[i].0, self.loc(&ids[i].1)))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    )
                    .help("break the cycle: remove a reference or a `depends_on`")
            };
            self.err(d);
        }
    }

    // ----- expression evaluation ------------------------------------------

    /// Evaluate one attribute with what it may see; errors become diagnostics.
    fn eval(&mut self, a: &RawAttr, rep: &Repetition) -> Option<Value> {
        // Fast paths for what most attributes are: literals and `network.NAME`.
        if let Some(v) = literal_value(&a.expr) {
            return Some(v);
        }
        if let Some(v) = self.simple_network_ref(&a.expr) {
            return Some(v);
        }
        let found = refs::scan(a.expr_span.file, &a.expr);
        if found.refs.iter().any(|r| {
            r.name
                .as_ref()
                .is_some_and(|n| self.is_poisoned(&r.root, n))
        }) {
            self.silenced = true;
            return None;
        }
        let mut edit_expr = a.expr.clone();
        if found.arith {
            checked::rewrite(&mut edit_expr);
        }
        if found.is_static() && !found.arith {
            let expr = hcl::Expression::from(edit_expr);
            return match expr.evaluate(&hcl::eval::Context::new()) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.err(eval_error(a, &e));
                    None
                }
            };
        }
        // `node.X[i]` with a constant index, `count.index` or `each.key`
        // becomes a variable holding just that instance: declaring all of
        // `node.X` for every instance that refers to one of its instances
        // would make evaluation quadratic.
        let mut decls = Vec::new();
        let mut needs_full_node = false;
        if found.refs.iter().any(|r| r.root == "node") {
            let mut narrow = NarrowNodeRefs {
                ev: self,
                rep,
                decls: Vec::new(),
                referred: Vec::new(),
            };
            hcl_edit::visit_mut::VisitMut::visit_expr_mut(&mut narrow, &mut edit_expr);
            decls = narrow.decls;
            self.referred_instances.extend(narrow.referred);
            // Whatever could not be narrowed needs the whole resources.
            for r in refs::scan(a.expr_span.file, &edit_expr).refs {
                if r.root == "node" {
                    needs_full_node = true;
                    if let Some(name) = r.name {
                        self.referred_resources.insert(name);
                    }
                }
            }
        }
        let expr = hcl::Expression::from(edit_expr);
        let mut ctx = hcl::eval::Context::new();
        for (name, v) in decls {
            ctx.declare_var(name, v);
        }
        let roots: HashSet<&str> = found.refs.iter().map(|r| r.root.as_str()).collect();
        if roots.contains("var") {
            ctx.declare_var("var", Value::Object(self.var_values.clone()));
        }
        if roots.contains("local") {
            ctx.declare_var("local", Value::Object(self.local_values.clone()));
        }
        if roots.contains("network") {
            let m = self.referenced_values(&found.refs, "network", Self::network_value);
            ctx.declare_var("network", Value::Object(m));
        }
        if roots.contains("node") && needs_full_node {
            let m = self.referenced_values(&found.refs, "node", Self::node_value);
            ctx.declare_var("node", Value::Object(m));
        }
        if roots.contains("package") {
            ctx.declare_var("package", Value::Object(self.package_values.clone()));
        }
        if let Some(i) = rep.count {
            let mut m = hcl::Map::new();
            m.insert("index".to_string(), Value::from(i));
            ctx.declare_var("count", Value::Object(m));
        }
        if let Some((k, v)) = &rep.each {
            let mut m = hcl::Map::new();
            m.insert("key".to_string(), k.clone());
            m.insert("value".to_string(), v.clone());
            ctx.declare_var("each", Value::Object(m));
        }
        functions::declare_some(&mut ctx, found.calls.iter().map(|c| c.name.as_str()));
        if found.arith {
            checked::declare(&mut ctx);
        }
        let result = functions::with_base_dir(&self.opts.dir, || expr.evaluate(&ctx));
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(eval_error(a, &e));
                None
            }
        }
    }

    /// The values of the resources of one kind that `refs` name, keyed by name.
    fn referenced_values(
        &self,
        refs: &[Reference],
        root: &str,
        value: fn(&Self, &str) -> Option<Value>,
    ) -> hcl::Map<String, Value> {
        let mut m = hcl::Map::new();
        for name in refs
            .iter()
            .filter(|r| r.root == root)
            .filter_map(|r| r.name.as_ref())
        {
            if !m.contains_key(name) {
                if let Some(v) = value(self, name) {
                    m.insert(name.clone(), v);
                }
            }
        }
        m
    }

    /// `network.NAME` of a network without count/for_each.
    fn simple_network_ref(&self, e: &hcl_edit::expr::Expression) -> Option<Value> {
        use hcl_edit::expr::{Expression as E, TraversalOperator as Op};
        let E::Traversal(t) = e else { return None };
        let E::Variable(root) = &t.expr else {
            return None;
        };
        if root.as_str() != "network" || t.operators.len() != 1 {
            return None;
        }
        let Op::GetAttr(name) = t.operators[0].value() else {
            return None;
        };
        if self.is_poisoned("network", name.as_str()) {
            return None;
        }
        match self
            .expansions
            .get(&(ResourceKind::Network, name.as_str().to_string()))?
        {
            Expansion::Single => self.network_value(name.as_str()),
            _ => None,
        }
    }

    fn eval_typed<T>(
        &mut self,
        a: &RawAttr,
        rep: &Repetition,
        want: &str,
        f: impl FnOnce(&Value) -> Option<T>,
    ) -> Option<T> {
        let v = self.eval(a, rep)?;
        match f(&v) {
            Some(t) => Some(t),
            None => {
                let name = &a.name;
                let help = match want {
                    "true or false" => format!("write `{name} = true` or `{name} = false`"),
                    _ => format!("write `{name} = \"...\"`"),
                };
                self.err(
                    Diagnostic::error(format!(
                        "`{name}` must be {want}, found {}",
                        types::describe(&v)
                    ))
                    .at(a.expr_span.clone())
                    .help(help),
                );
                None
            }
        }
    }

    fn eval_string(&mut self, b: &RawBlock, name: &str, rep: &Repetition) -> Option<String> {
        let a = b.attr(name)?;
        self.eval_typed(a, rep, "a string", |v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }

    fn eval_bool(&mut self, b: &RawBlock, name: &str, rep: &Repetition) -> Option<bool> {
        let a = b.attr(name)?;
        let v = self.eval_typed(a, rep, "true or false", |v| v.as_bool());
        if v.is_none() {
            if let Some(d) = self.diags.0.last_mut() {
                if d.help.is_none() && d.span.as_ref() == Some(&a.expr_span) {
                    d.help = Some(format!(
                        "write `{name} = true` or `{name} = false`, without quotes"
                    ));
                }
            }
        }
        v
    }

    fn eval_labels(&mut self, b: &RawBlock, rep: &Repetition) -> Option<BTreeMap<String, String>> {
        let a = b.attr("labels")?;
        let v = self.eval(a, rep)?;
        let Value::Object(o) = v else {
            self.err(
                Diagnostic::error(format!(
                    "`labels` must be a map of strings, found {}",
                    types::describe(&v)
                ))
                .at(a.expr_span.clone())
                .help("write `labels = { role = \"edge\" }`"),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, v) in o {
            let s = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    self.err(
                        Diagnostic::error(format!(
                            "label `{k}` must be a string, found {}",
                            types::describe(&other)
                        ))
                        .at(a.expr_span.clone()),
                    );
                    return None;
                }
            };
            if k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
            {
                self.err(
                    Diagnostic::error(format!("invalid label key `{k}`"))
                        .at(a.expr_span.clone())
                        .help("label keys become Ansible group names: use letters, digits, `_`, `-`, `.`, `/`"),
                );
                return None;
            }
            out.insert(k, s);
        }
        Some(out)
    }

    fn eval_cpus(&mut self, b: &RawBlock, rep: &Repetition) -> Option<f64> {
        let a = b.attr("cpus")?;
        let v = self.eval(a, rep)?;
        match v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(c) if c > 0.0 && c <= 4096.0 => Some(c),
            _ => {
                self.err(
                    Diagnostic::error(format!(
                        "`cpus` must be a positive number, found {}",
                        types::describe(&v)
                    ))
                    .at(a.expr_span.clone())
                    .help("write `cpus = 1` or `cpus = 0.5`"),
                );
                None
            }
        }
    }

    fn eval_memory(&mut self, b: &RawBlock, rep: &Repetition) -> Option<u64> {
        let a = b.attr("memory")?;
        let v = self.eval(a, rep)?;
        let parsed = match &v {
            Value::Number(n) => n.as_u64().filter(|m| *m > 0),
            Value::String(s) => parse_memory(s),
            _ => None,
        };
        if parsed.is_none() {
            self.err(
                Diagnostic::error(format!(
                    "`memory` must be a size such as \"512MiB\" or \"2GiB\", found {}",
                    types::describe(&v)
                ))
                .at(a.expr_span.clone())
                .help("units: KiB, MiB, GiB, TiB (also K, M, G, T); a bare number means MiB"),
            );
        }
        parsed
    }

    // ----- variables ----------------------------------------------------

    fn eval_variables(&mut self) {
        let blocks = self.blocks.clone();
        let decls = self.declared("variable").cloned().unwrap_or_default();
        let mut values: BTreeMap<String, (String, String)> = BTreeMap::new(); // name -> (raw, source)
                                                                              // TG_VAR_name < -var-file < -var
        for (k, v) in std::env::vars() {
            if let Some(name) = k.strip_prefix("TG_VAR_") {
                if decls.contains_key(name) {
                    values.insert(name.to_string(), (v, format!("environment variable `{k}`")));
                }
            }
        }
        let mut file_values: BTreeMap<String, (Value, Span)> = BTreeMap::new();
        for path in self.opts.var_files.clone() {
            self.read_var_file(&path, &decls, &mut file_values);
        }
        let mut cli_values: BTreeMap<String, String> = BTreeMap::new();
        for raw in &self.opts.vars {
            let Some((name, value)) = raw.split_once('=') else {
                self.err(
                    Diagnostic::error(format!("invalid `-var {raw}`: expected NAME=VALUE"))
                        .help("write `-var edge_count=3`"),
                );
                continue;
            };
            let name = name.trim();
            if !decls.contains_key(name) {
                let mut d = Diagnostic::error(format!(
                    "`-var {name}=...`: no variable `{name}` is declared"
                ));
                d = match did_you_mean(name, decls.keys().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("declare it with a `variable` block"),
                };
                self.err(d);
                continue;
            }
            cli_values.insert(name.to_string(), value.to_string());
        }
        for (name, &bi) in &decls {
            self.open_value(format!("var.{name}"));
            let b = &blocks[bi];
            let ty = match b.attr("type") {
                Some(a) => types::parse_type(&a.expr).unwrap_or(VarType::Any),
                None => VarType::Any,
            };
            if self.eval_bool(b, "sensitive", &Repetition::default()) == Some(true) {
                self.sensitive_vars.insert(name.clone());
            }
            // Where a wrong value is pointed at: the value in a variable
            // file or the default; else (`-var`, `TG_VAR_`) the block.
            let mut value_span: Option<Span> = None;
            let (value, origin): (Option<Value>, String) = if let Some(raw) = cli_values.get(name) {
                self.var_raw.insert(name.clone(), raw.clone());
                (Some(raw_value(raw, &ty)), format!("`-var {name}=...`"))
            } else if let Some((v, span)) = file_values.get(name) {
                self.var_raw.insert(name.clone(), v.to_string());
                value_span = Some(span.clone());
                (Some(v.clone()), "a variable file".to_string())
            } else if let Some((raw, origin)) = values.get(name) {
                self.var_raw.insert(name.clone(), raw.clone());
                (Some(raw_value(raw, &ty)), origin.clone())
            } else if let Some(a) = b.attr("default").cloned() {
                (
                    self.eval(&a, &Repetition::default()),
                    "its default".to_string(),
                )
            } else {
                self.err(
                    Diagnostic::error(format!("variable `{name}` has no value"))
                        .at(b.span.clone())
                        .help(format!(
                            "set it with `-var {name}=...`, in a `-var-file`, with `TG_VAR_{name}`, or give it a `default`"
                        )),
                );
                continue;
            };
            let Some(value) = value else { continue };
            match types::convert(value, &ty) {
                Ok(v) => {
                    self.var_values.insert(name.clone(), v);
                }
                Err(why) => {
                    let at = value_span.clone().unwrap_or_else(|| {
                        b.attr("default")
                            .filter(|_| origin == "its default")
                            .map(|a| a.expr_span.clone())
                            .unwrap_or(b.span.clone())
                    });
                    // `why` quotes the value: never for a sensitive one.
                    let why = if self.sensitive_vars.contains(name) {
                        format!("it is not a {ty} (the value is sensitive: not shown)")
                    } else {
                        why
                    };
                    self.err(
                        Diagnostic::error(format!(
                            "invalid value for variable `{name}` (from {origin}): {why}"
                        ))
                        .at(at)
                        .help(format!("the variable's type is {ty}")),
                    );
                }
            }
        }
        self.close_value();
        // Validations see every variable (a failed one is skipped).
        for (name, &bi) in &decls {
            self.open_value(format!("var.{name}"));
            for v in blocks[bi].blocks_of("validation") {
                let (Some(cond), Some(msg)) = (v.attr("condition"), v.attr("error_message")) else {
                    continue;
                };
                let (cond, msg) = (cond.clone(), msg.clone());
                let Some(ok) = self.eval(&cond, &Repetition::default()) else {
                    continue;
                };
                match ok {
                    Value::Bool(true) => {}
                    Value::Bool(false) => {
                        let text = self
                            .eval(&msg, &Repetition::default())
                            .and_then(|m| m.as_str().map(str::to_string))
                            .unwrap_or_else(|| "the validation failed".into());
                        let shown = if self.sensitive_vars.contains(name) {
                            "(sensitive value)".to_string()
                        } else {
                            self.var_values
                                .get(name)
                                .map(|v| v.to_string())
                                .unwrap_or_default()
                        };
                        self.err(
                            Diagnostic::error(format!(
                                "invalid value for variable `{name}`: {text}"
                            ))
                            .at(cond.expr_span.clone())
                            .detail(format!("the value is {shown}"))
                            .help("change the value, or the validation's condition"),
                        );
                    }
                    other => self.err(
                        Diagnostic::error(format!(
                            "a validation `condition` must be true or false, found {}",
                            types::describe(&other)
                        ))
                        .at(cond.expr_span.clone()),
                    ),
                }
            }
        }
        self.close_value();
    }

    fn read_var_file(
        &mut self,
        path: &PathBuf,
        decls: &IndexMap<String, usize>,
        out: &mut BTreeMap<String, (Value, Span)>,
    ) {
        let full = if path.is_absolute() {
            path.clone()
        } else {
            self.opts.cwd_or_dir().join(path)
        };
        let shown = path.clone();
        let mut diags = Diagnostics::default();
        let Some(id) = super::source::read_source(&full, shown, &mut self.sources, &mut diags)
        else {
            self.diags.extend(diags);
            return;
        };
        let text = self.sources.get(id).text.clone();
        let body = match hcl_edit::parser::parse_body(&text) {
            Ok(b) => b,
            Err(e) => {
                self.err(super::syntax_error(id, &text, &e));
                return;
            }
        };
        for st in body.iter() {
            match st {
                hcl_edit::structure::Structure::Attribute(a) => {
                    let name = a.key.as_str().to_string();
                    let span = super::decode::span_of(id, &a.key);
                    if !decls.contains_key(&name) {
                        let mut d = Diagnostic::warning(format!(
                            "`{name}` is set but no variable `{name}` is declared"
                        ))
                        .at(span);
                        if let Some(s) = did_you_mean(&name, decls.keys().map(String::as_str)) {
                            d = d.help(format!("did you mean `{s}`?"));
                        }
                        self.err(d);
                        continue;
                    }
                    let raw = RawAttr {
                        name: name.clone(),
                        expr: a.value.clone(),
                        span: span.clone(),
                        expr_span: super::decode::span_of(id, &a.value),
                    };
                    let found = refs::scan(id, &a.value);
                    if let Some(r) = found.refs.first() {
                        self.err(
                            Diagnostic::error("variable files hold constant values")
                                .at(r.span.clone())
                                .help("write the value itself, such as `edge_count = 3`"),
                        );
                        continue;
                    }
                    if let Some(v) = self.eval(&raw, &Repetition::default()) {
                        out.insert(name, (v, raw.expr_span.clone()));
                    }
                }
                hcl_edit::structure::Structure::Block(b) => {
                    self.err(
                        Diagnostic::error("variable files hold `name = value` lines, not blocks")
                            .at(super::decode::span_of(id, &b.ident)),
                    );
                }
            }
        }
    }

    // ----- locals -------------------------------------------------------

    fn eval_locals(&mut self) {
        let names: Vec<String> = self.locals.keys().cloned().collect();
        // Order by references among locals (cycles were ruled out).
        let edges = edges_by_name(&names, |i| {
            let (bi, an) = &self.locals[&names[i]];
            referenced_names(&self.blocks[*bi].attrs[an], "local")
        });
        // A local that fails does not stop the others, only those that
        // use it (they would fail for the same reason).
        let mut failed = vec![false; names.len()];
        for i in topo_order(&edges) {
            self.open_value(format!("local.{}", names[i]));
            if edges[i].iter().any(|&j| failed[j]) {
                failed[i] = true;
                continue;
            }
            let (bi, an) = self.locals[&names[i]].clone();
            let a = self.blocks[bi].attrs[&an].clone();
            match self.eval(&a, &Repetition::default()) {
                Some(v) => {
                    self.local_values.insert(names[i].clone(), v);
                }
                None => failed[i] = true,
            }
        }
    }

    // ----- expansion ----------------------------------------------------

    fn expand(&mut self, b: &RawBlock) -> Option<Expansion> {
        let rep = Repetition::default();
        match (b.attr("count").cloned(), b.attr("for_each").cloned()) {
            (Some(_), Some(fe)) => {
                self.err(
                    Diagnostic::error("`count` and `for_each` cannot both be set")
                        .at(fe.span.clone())
                        .help("keep one of them"),
                );
                None
            }
            (Some(c), None) => {
                let v = self.eval(&c, &rep)?;
                match v.as_f64() {
                    Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= MAX_INSTANCES as f64 => {
                        Some(Expansion::Count(n as u64))
                    }
                    _ => {
                        self.err(
                            Diagnostic::error(format!(
                                "`count` must be a whole number from 0 to {MAX_INSTANCES}, found {}",
                                types::describe(&v)
                            ))
                            .at(c.expr_span.clone()),
                        );
                        None
                    }
                }
            }
            (None, Some(fe)) => {
                let v = self.eval(&fe, &rep)?;
                let items: Vec<(String, Value)> = match v {
                    Value::Object(o) => o.into_iter().collect(),
                    Value::Array(a) => {
                        let mut items = Vec::new();
                        for x in a {
                            match x {
                                Value::String(s) => {
                                    if !items.iter().any(|(k, _): &(String, Value)| *k == s) {
                                        items.push((s.clone(), Value::String(s)));
                                    }
                                }
                                other => {
                                    self.err(
                                        Diagnostic::error(format!(
                                            "`for_each` over a list needs strings, found {}",
                                            types::describe(&other)
                                        ))
                                        .at(fe.expr_span.clone())
                                        .help("use `toset([\"a\", \"b\"])` or a map"),
                                    );
                                    return None;
                                }
                            }
                        }
                        items.sort_by(|a, b| a.0.cmp(&b.0));
                        items
                    }
                    other => {
                        self.err(
                            Diagnostic::error(format!(
                                "`for_each` must be a map or a set of strings, found {}",
                                types::describe(&other)
                            ))
                            .at(fe.expr_span.clone()),
                        );
                        return None;
                    }
                };
                if b.kind == "node" || b.kind == "network" {
                    for (k, _) in &items {
                        if let Err(why) = names::check_instance_key(k) {
                            self.err(
                                Diagnostic::error(format!("invalid `for_each` key `{k}`: {why}"))
                                    .at(fe.expr_span.clone())
                                    .help("keys become part of host names (`web-a`)"),
                            );
                            return None;
                        }
                    }
                }
                Some(Expansion::ForEach(items))
            }
            (None, None) => Some(Expansion::Single),
        }
    }

    fn resource_value(
        &self,
        kind: ResourceKind,
        name: &str,
        objects: &[(InstanceKey, Value)],
    ) -> Option<Value> {
        let exp = self.expansions.get(&(kind, name.to_string()))?;
        Some(match exp {
            Expansion::Single => objects
                .first()
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null),
            Expansion::Count(_) => Value::Array(objects.iter().map(|(_, v)| v.clone()).collect()),
            Expansion::ForEach(_) => Value::Object(
                objects
                    .iter()
                    .filter_map(|(k, v)| match k {
                        InstanceKey::Str(s) => Some((s.clone(), v.clone())),
                        _ => None,
                    })
                    .collect(),
            ),
        })
    }

    fn network_value(&self, name: &str) -> Option<Value> {
        let objs: Vec<(InstanceKey, Value)> = self
            .nets
            .iter()
            .filter(|n| n.addr.name() == name)
            .map(|n| (n.addr.key.clone(), Value::Object(network_object(n))))
            .collect();
        self.resource_value(ResourceKind::Network, name, &objs)
    }

    fn node_value(&self, name: &str) -> Option<Value> {
        // A node with `count = 0` or an empty `for_each` has no instances
        // but is still a (empty) value.
        let idx = self
            .node_resource
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let objs: Vec<(InstanceKey, Value)> = idx
            .iter()
            .map(|&i| {
                (
                    self.nodes[i].addr.key.clone(),
                    Value::Object(self.nodes[i].object.clone()),
                )
            })
            .collect();
        self.resource_value(ResourceKind::Node, name, &objs)
    }

    // ----- networks -----------------------------------------------------

    fn eval_networks(&mut self) {
        let blocks = self.blocks.clone();
        let decls = self.declared("network").cloned().unwrap_or_default();
        // Order networks by their references to each other.
        let names: Vec<String> = decls.keys().cloned().collect();
        let edges = edges_by_name(&names, |i| {
            blocks[decls[&names[i]]]
                .attrs
                .values()
                .flat_map(|a| referenced_names(a, "network"))
                .collect()
        });
        let order = topo_order(&edges);
        let mut pending: Vec<usize> = Vec::new();
        for i in order {
            let name = names[i].clone();
            self.open_value(format!("network.{name}"));
            let bi = decls[&name];
            let b = &blocks[bi];
            let Some(exp) = self.expand(b) else { continue };
            self.expansions
                .insert((ResourceKind::Network, name.clone()), exp.clone());
            let prevent = self.prevent_destroy(b);
            for (key, rep) in exp.instances() {
                let addr = InstanceAddr::new(ResourceKind::Network, name.clone(), key);
                let host = addr.host_name();
                let cidr_span = b
                    .attr("cidr")
                    .map(|a| a.expr_span.clone())
                    .unwrap_or(b.span.clone());
                let cidr = match b.attr("cidr").cloned() {
                    Some(a) => {
                        match self.eval(&a, &rep) {
                            Some(Value::String(s)) => match parse_cidr(&s) {
                                Ok(c) => Some(c),
                                Err((why, help)) => {
                                    self.err(
                                        Diagnostic::error(format!("invalid CIDR `{s}`: {why}"))
                                            .at(a.expr_span.clone())
                                            .help(help),
                                    );
                                    continue;
                                }
                            },
                            Some(Value::Null) => None,
                            Some(other) => {
                                self.err(Diagnostic::error(format!("`cidr` must be a string such as \"10.42.0.0/24\", found {}", types::describe(&other))).at(a.expr_span.clone()));
                                continue;
                            }
                            None => continue,
                        }
                    }
                    None => None,
                };
                let nat = self.eval_bool(b, "nat", &rep).unwrap_or(false);
                let depends_on = self.static_depends_on(b);
                let n = NetInst {
                    addr: addr.clone(),
                    block: bi,
                    host,
                    cidr,
                    cidr_span,
                    nat,
                    prevent_destroy: prevent,
                    depends_on,
                };
                if n.cidr.is_none() {
                    pending.push(self.nets.len());
                }
                self.net_by_addr.insert(addr, self.nets.len());
                self.nets.push(n);
            }
        }
        // Network instance names name host objects (and key nodes'
        // `addresses`): like host names, short enough and unique.
        let mut seen: HashMap<String, InstanceAddr> = HashMap::new();
        for n in &self.nets {
            let span = self.blocks[n.block].span.clone();
            if let Err(why) = names::check_hostname(&n.host) {
                let why = why.replacen("host name", "network name", 1);
                self.diags.push(
                    Diagnostic::error(why)
                        .at(span.clone())
                        .help("use a shorter network name or key"),
                );
            }
            if let Some(other) = seen.insert(n.host.clone(), n.addr.clone()) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` and `{other}` would both be named `{}`",
                        n.addr, n.host
                    ))
                    .at(span)
                    .help("rename one of the networks"),
                );
            }
        }
        self.close_value();
        // Overlaps among fixed CIDRs.
        let fixed: Vec<usize> = (0..self.nets.len())
            .filter(|&i| self.nets[i].cidr.is_some())
            .collect();
        for (x, &i) in fixed.iter().enumerate() {
            for &j in &fixed[..x] {
                let (a, b) = (
                    self.nets[j].cidr.unwrap_or_default(),
                    self.nets[i].cidr.unwrap_or_default(),
                );
                if ipam::overlaps(&a, &b) {
                    let d = Diagnostic::error(format!(
                        "network `{}` ({b}) overlaps network `{}` ({a})",
                        self.nets[i].addr, self.nets[j].addr
                    ))
                    .at(self.nets[i].cidr_span.clone())
                    .help("networks of one testbed need disjoint CIDRs: pick another range");
                    self.err(d);
                }
            }
        }
        // Pool CIDRs for the rest: first every network keeps the /24 state
        // recorded for it (when still free), so a network added before an
        // existing one cannot take its range; then the others get the
        // first free /24, in declaration order.
        pending.sort_by_key(|&i| (self.nets[i].block, i));
        let mut taken: Vec<Ipv4Net> = self.nets.iter().filter_map(|n| n.cidr).collect();
        let mut rest = Vec::new();
        for i in pending {
            let prior = self
                .opts
                .prior
                .network_cidrs
                .get(&self.nets[i].addr)
                .copied();
            match prior.filter(|p| !taken.iter().any(|t| ipam::overlaps(t, p))) {
                Some(c) => {
                    taken.push(c);
                    self.nets[i].cidr = Some(c);
                }
                None => rest.push(i),
            }
        }
        for i in rest {
            match ipam::pick_pool_cidr(&taken, None) {
                Some(c) => {
                    taken.push(c);
                    self.nets[i].cidr = Some(c);
                }
                None => {
                    let d = Diagnostic::error(format!(
                        "no free /24 left in the pool {} for network `{}`",
                        ipam::POOL,
                        self.nets[i].addr
                    ))
                    .at(self.nets[i].cidr_span.clone())
                    .help("give the network a `cidr`");
                    self.err(d);
                }
            }
        }
    }

    fn prevent_destroy(&mut self, b: &RawBlock) -> bool {
        b.blocks_of("lifecycle")
            .any(|l| self.eval_bool(l, "prevent_destroy", &Repetition::default()) == Some(true))
    }

    fn static_depends_on(&self, b: &RawBlock) -> Vec<InstanceAddr> {
        let Some(a) = b.attr("depends_on") else {
            return Vec::new();
        };
        let Ok(list) = refs::static_list(a.expr_span.file, &a.expr) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (r, index) in list {
            let (Some(kind), Some(name)) = (ResourceKind::parse(&r.root), r.name) else {
                continue;
            };
            let key = match index {
                Some(i) => InstanceKey::Int(i),
                None => InstanceKey::None,
            };
            out.push(InstanceAddr::new(kind, name, key));
        }
        out
    }

    // ----- profiles -----------------------------------------------------

    fn eval_profiles(&mut self) {
        let blocks = self.blocks.clone();
        let rep = Repetition::default();
        for (name, &bi) in self.declared("profile").cloned().unwrap_or_default().iter() {
            self.open_value(format!("profile.{name}"));
            let b = &blocks[bi];
            let p = Profile {
                image: self.eval_string(b, "image", &rep),
                cpus: self.eval_cpus(b, &rep),
                memory_mib: self.eval_memory(b, &rep),
                labels: self.eval_labels(b, &rep).unwrap_or_default(),
                platform: self.eval_string(b, "platform", &rep),
            };
            if let Some(img) = &p.image {
                self.check_image(
                    img,
                    b.attr("image")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(b.span.clone()),
                );
            }
            self.profiles.insert(name.clone(), p);
        }
    }

    fn check_image(&mut self, image: &str, span: Span) {
        let ok = image == "host"
            || image.strip_prefix("debian:").is_some_and(|r| {
                !r.is_empty()
                    && r.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
            || image.strip_prefix("dir:").is_some_and(|p| !p.is_empty());
        if !ok {
            self.err(
                Diagnostic::error(format!("unknown image `{image}`"))
                    .at(span)
                    .help("images are `host`, `debian:RELEASE` (such as `debian:bookworm`) and `dir:/path/to/rootfs`"),
            );
        }
    }

    // ----- nodes: placement, IPAM, attributes ----------------------------

    /// Node blocks, and packages without `on` (their implicit node), in
    /// declaration order.
    fn node_sources(&self) -> Vec<(String, usize, bool)> {
        let mut out: Vec<(String, usize, bool)> = Vec::new();
        if let Some(m) = self.declared("node") {
            out.extend(m.iter().map(|(n, &bi)| (n.clone(), bi, false)));
        }
        if let Some(m) = self.declared("package") {
            for (p, &bi) in m {
                if self.blocks[bi].attr("on").is_none() {
                    out.push((implicit_node_name(p), bi, true));
                }
            }
        }
        out.sort_by_key(|(_, bi, _)| *bi);
        out
    }

    /// The block whose attributes describe a node: the node block, or the
    /// `requires` block of a package (an empty one when absent).
    fn node_attrs_block(blocks: &[RawBlock], bi: usize, implicit: bool) -> &RawBlock {
        let b = &blocks[bi];
        if !implicit {
            return b;
        }
        // `new` gave every package without `on` a `requires` block.
        b.blocks
            .iter()
            .find(|nb| nb.kind == "requires")
            .unwrap_or(b)
    }

    fn place_nodes(&mut self) {
        let blocks = self.blocks.clone();
        for (name, bi, implicit) in self.node_sources() {
            self.open_value(format!("node.{name}"));
            let ab = Self::node_attrs_block(&blocks, bi, implicit);
            let exp = if implicit {
                Some(Expansion::Single)
            } else {
                self.expand(ab)
            };
            let Some(exp) = exp else { continue };
            self.expansions
                .insert((ResourceKind::Node, name.clone()), exp.clone());
            let prevent = if implicit {
                false
            } else {
                self.prevent_destroy(ab)
            };
            let depends_on = if implicit {
                self.static_depends_on(&blocks[bi])
            } else {
                self.static_depends_on(ab)
            };
            for (key, rep) in exp.instances() {
                let addr = InstanceAddr::new(ResourceKind::Node, name.clone(), key);
                let host = addr.host_name();
                if let Err(why) = names::check_hostname(&host) {
                    self.err(
                        Diagnostic::error(why)
                            .at(ab.span.clone())
                            .help("use a shorter node name or key"),
                    );
                    continue;
                }
                let pkg = implicit.then(|| blocks[bi].label());
                let networks = self.eval_node_networks(ab, &rep, &addr, pkg);
                let Some(networks) = networks else { continue };
                let fixed = match ab.attr("address") {
                    None => None,
                    Some(a) => match self.eval(a, &rep) {
                        Some(Value::String(s)) => match s.parse::<Ipv4Addr>() {
                            Ok(ip) => Some((ip, a.expr_span.clone())),
                            Err(_) => {
                                self.err(Diagnostic::error(format!("invalid address `{s}`: expected an IPv4 address such as 10.42.0.10")).at(a.expr_span.clone()));
                                continue;
                            }
                        },
                        Some(Value::Null) => None,
                        Some(other) => {
                            self.err(
                                Diagnostic::error(format!(
                                    "`address` must be a string, found {}",
                                    types::describe(&other)
                                ))
                                .at(a.expr_span.clone()),
                            );
                            continue;
                        }
                        None => continue,
                    },
                };
                let inst = NodeInst {
                    addr: addr.clone(),
                    block: bi,
                    rep,
                    host,
                    networks,
                    fixed,
                    addresses: Vec::new(),
                    object: hcl::Map::new(),
                    spec: None,
                    platform: None,
                    prevent_destroy: prevent,
                    depends_on: depends_on.clone(),
                };
                self.node_resource
                    .entry(name.clone())
                    .or_default()
                    .push(self.nodes.len());
                self.node_by_addr.insert(addr, self.nodes.len());
                self.nodes.push(inst);
            }
        }
        self.close_value();
        // Host names must be unique in a session.
        let mut seen: HashMap<String, InstanceAddr> = HashMap::new();
        for n in &self.nodes {
            if let Some(other) = seen.insert(n.host.clone(), n.addr.clone()) {
                let span = self.blocks[n.block].span.clone();
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` and `{other}` would both have the host name `{}`",
                        n.addr, n.host
                    ))
                    .at(span)
                    .help("rename one of the nodes"),
                );
            }
        }
    }

    /// The networks of a node; `pkg` names the package of an implicit node.
    fn eval_node_networks(
        &mut self,
        b: &RawBlock,
        rep: &Repetition,
        addr: &InstanceAddr,
        pkg: Option<&str>,
    ) -> Option<Vec<usize>> {
        let (attr, many) = match (b.attr("network").cloned(), b.attr("networks").cloned()) {
            (Some(_), Some(m)) => {
                self.err(
                    Diagnostic::error("`network` and `networks` cannot both be set")
                        .at(m.span.clone())
                        .help("list every network in `networks`"),
                );
                return None;
            }
            (Some(a), None) => (a, false),
            (None, Some(a)) => (a, true),
            (None, None) => {
                // No network given: the first declared network, if there is exactly one.
                return match self.nets.len() {
                    1 => Some(vec![0]),
                    0 => {
                        self.err(
                            Diagnostic::error(format!("`{addr}` is on no network"))
                                .at(b.span.clone())
                                .help("declare a `network` block and set `network = network.NAME`"),
                        );
                        None
                    }
                    _ => {
                        let d = match pkg {
                            None => Diagnostic::error(format!(
                                "`{addr}` does not say which network it is on"
                            ))
                            .help("set `network = network.NAME` or `networks = [...]`"),
                            Some(p) => Diagnostic::error(format!(
                                "package `{p}` has no `on`, and does not say which network its node `{addr}` is on"
                            ))
                            .help(format!(
                                "add `requires {{ network = network.NAME }}` to package `{p}`, or install it on existing nodes with `on = [node.NAME]`"
                            )),
                        };
                        self.err(d.at(b.span.clone()));
                        None
                    }
                };
            }
        };
        let v = self.eval(&attr, rep)?;
        let items: Vec<Value> = match (many, v) {
            (false, Value::Array(_)) => {
                self.err(
                    Diagnostic::error("`network` takes one network; use `networks` for several")
                        .at(attr.expr_span.clone()),
                );
                return None;
            }
            (_, Value::Array(a)) => a,
            (_, v) => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            let id = item
                .as_object()
                .and_then(|o| o.get("id"))
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let idx = id
                .as_deref()
                .and_then(|id| id.parse::<InstanceAddr>().ok())
                .and_then(|a| self.net_by_addr.get(&a).copied());
            match idx {
                Some(i) if !out.contains(&i) => out.push(i),
                Some(_) => {
                    self.err(
                        Diagnostic::error("the same network is listed twice")
                            .at(attr.expr_span.clone()),
                    );
                    return None;
                }
                None => {
                    self.err(
                        Diagnostic::error(format!(
                            "`{}` must name networks, such as `network.lab`, found {}",
                            attr.name,
                            types::describe(&item)
                        ))
                        .at(attr.expr_span.clone())
                        .help(match &item {
                            Value::String(name) => format!(
                                "write a reference, without quotes: `network.{name}`"
                            ),
                            _ => "a network with `count` or `for_each` needs an index: `network.lab[0]`"
                                .to_string(),
                        }),
                    );
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.err(
                Diagnostic::error(format!("`{}` names no network", attr.name))
                    .at(attr.expr_span.clone()),
            );
            return None;
        }
        Some(out)
    }

    fn assign_addresses(&mut self) {
        let mut allocs: Vec<Option<NetAlloc>> = self
            .nets
            .iter()
            .map(|n| n.cidr.map(NetAlloc::new))
            .collect();
        let mut owner: HashMap<(usize, Ipv4Addr), InstanceAddr> = HashMap::new();
        for n in &mut self.nodes {
            n.addresses = vec![Ipv4Addr::UNSPECIFIED; n.networks.len()];
        }
        // 1. fixed addresses (first network)
        for i in 0..self.nodes.len() {
            let Some((ip, span)) = self.nodes[i].fixed.clone() else {
                continue;
            };
            let net = self.nodes[i].networks[0];
            let Some(alloc) = allocs[net].as_mut() else {
                continue;
            };
            match alloc.reserve(ip) {
                Ok(()) => {
                    owner.insert((net, ip), self.nodes[i].addr.clone());
                    self.nodes[i].addresses[0] = ip;
                }
                Err(r) => {
                    let cidr = alloc.cidr;
                    let netname = self.nets[net].addr.to_string();
                    let d = match r {
                        Refused::OutOfRange => Diagnostic::error(format!(
                            "address {ip} is outside `{netname}` ({cidr})"
                        ))
                        .help(format!(
                            "pick an address in {cidr}, such as `cidrhost(network.{}.cidr, 10)`",
                            self.nets[net].addr.name()
                        )),
                        Refused::Reserved(what) => Diagnostic::error(format!(
                            "address {ip} is {what} of `{netname}` ({cidr})"
                        ))
                        .help("nodes cannot use .0, .1 or the broadcast address: pick another"),
                        Refused::Taken => Diagnostic::error(format!(
                            "address {ip} is used twice: by `{}` and `{}`",
                            owner
                                .get(&(net, ip))
                                .map(|a| a.to_string())
                                .unwrap_or_default(),
                            self.nodes[i].addr
                        ))
                        .help("give each node its own address"),
                    };
                    self.diags.push(d.at(span));
                }
            }
        }
        // 2. addresses recorded in state
        let prior: &Prior = &self.opts.prior;
        for n in &mut self.nodes {
            let Some(recorded) = prior.node_addresses.get(&n.addr) else {
                continue;
            };
            for (slot, &net) in n.networks.iter().enumerate() {
                if n.addresses[slot] != Ipv4Addr::UNSPECIFIED {
                    continue;
                }
                let Some(ip) = recorded.get(&self.nets[net].host) else {
                    continue;
                };
                if let Some(alloc) = allocs[net].as_mut() {
                    if alloc.reserve(*ip).is_ok() {
                        n.addresses[slot] = *ip;
                    }
                }
            }
        }
        // 3. the lowest free address, in declaration order
        'assign: for i in 0..self.nodes.len() {
            for slot in 0..self.nodes[i].networks.len() {
                if self.nodes[i].addresses[slot] != Ipv4Addr::UNSPECIFIED {
                    continue;
                }
                let net = self.nodes[i].networks[slot];
                let Some(alloc) = allocs[net].as_mut() else {
                    continue;
                };
                match alloc.next_free() {
                    Some(ip) => self.nodes[i].addresses[slot] = ip,
                    None => {
                        let cap = alloc.capacity();
                        let cidr = alloc.cidr;
                        let span = self.nets[net].cidr_span.clone();
                        let d = Diagnostic::error(format!(
                            "network `{}` ({cidr}) has no address left for `{}`: it holds {cap} nodes",
                            self.nets[net].addr, self.nodes[i].addr
                        ))
                        .at(span)
                        .help("use a larger CIDR (a smaller prefix length) or fewer nodes");
                        self.diags.push(d);
                        break 'assign;
                    }
                }
            }
        }
        // Nodes left without an address (a full network) are not evaluated
        // further: the capacity error says it all.
        for n in &self.nodes {
            if n.addresses.contains(&Ipv4Addr::UNSPECIFIED) {
                self.poisoned.insert(format!("node.{}", n.addr.name()));
            }
        }
        // Base objects, so nodes can refer to each other's addresses.
        for i in 0..self.nodes.len() {
            let obj = self.base_node_object(i);
            self.nodes[i].object = obj;
        }
    }

    fn base_node_object(&self, i: usize) -> hcl::Map<String, Value> {
        let n = &self.nodes[i];
        let mut o = hcl::Map::new();
        o.insert("id".into(), Value::from(n.addr.to_string()));
        o.insert("name".into(), Value::from(n.addr.name()));
        o.insert("hostname".into(), Value::from(n.host.as_str()));
        o.insert(
            "address".into(),
            n.addresses
                .first()
                .map(|a| Value::from(a.to_string()))
                .unwrap_or(Value::Null),
        );
        let mut addrs = hcl::Map::new();
        for (slot, &net) in n.networks.iter().enumerate() {
            addrs.insert(
                self.nets[net].host.clone(),
                Value::from(n.addresses[slot].to_string()),
            );
        }
        o.insert("addresses".into(), Value::Object(addrs));
        o
    }

    fn eval_nodes(&mut self) {
        // Order node resources by their references to each other.
        let sources = self.node_sources();
        let names: Vec<String> = sources.iter().map(|(n, _, _)| n.clone()).collect();
        let blocks = self.blocks.clone();
        let edges = edges_by_name(&names, |i| {
            let (_, bi, implicit) = &sources[i];
            Self::node_attrs_block(&blocks, *bi, *implicit)
                .attrs
                .values()
                .flat_map(|a| referenced_names(a, "node"))
                .collect()
        });
        for ri in topo_order(&edges) {
            let (name, bi, implicit) = &sources[ri];
            if self.is_poisoned("node", name) {
                continue;
            }
            self.open_value(format!("node.{name}"));
            let ab = Self::node_attrs_block(&blocks, *bi, *implicit);
            let Some(ids) = self.node_resource.get(name).cloned() else {
                continue;
            };
            for i in ids {
                self.eval_node(i, ab);
            }
        }
    }

    fn eval_node(&mut self, i: usize, ab: &RawBlock) {
        self.referred_instances.clear();
        self.referred_resources.clear();
        let rep = self.nodes[i].rep.clone();
        let addr = self.nodes[i].addr.clone();
        let profile_name = self.eval_string(ab, "profile", &rep);
        let profile = match &profile_name {
            None => Profile::default(),
            Some(p) if self.is_poisoned("profile", p) => {
                self.silenced = true;
                return;
            }
            Some(p) => match self.profiles.get(p) {
                Some(p) => p.clone(),
                None => {
                    let span = ab
                        .attr("profile")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(ab.span.clone());
                    let known: Vec<String> = self.profiles.keys().cloned().collect();
                    let mut d = Diagnostic::error(format!("unknown profile `{p}`")).at(span);
                    d = match did_you_mean(p, known.iter().map(String::as_str)) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None if known.is_empty() => d.help("declare it with a `profile` block"),
                        None => d.help(format!("declared profiles: {}", known.join(", "))),
                    };
                    self.err(d);
                    return;
                }
            },
        };
        let image = match self.eval_string(ab, "image", &rep) {
            Some(img) => {
                self.check_image(
                    &img,
                    ab.attr("image")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(ab.span.clone()),
                );
                img
            }
            // Set but not a string: already reported.
            None if ab.attr("image").is_some() => return,
            None => match profile.image.clone() {
                Some(img) => img,
                None => {
                    let d = if ab.kind == "requires" {
                        let p = self.blocks[self.nodes[i].block].label().to_string();
                        Diagnostic::error(format!(
                            "package `{p}` has no `on`, and its node `{addr}` has no image"
                        ))
                        .help(format!(
                            "add `requires {{ image = \"host\" }}` (or a `profile`) to package `{p}`, or install it on existing nodes with `on = [node.NAME]`"
                        ))
                    } else {
                        Diagnostic::error(format!("`{addr}` has no image")).help(
                            "set `image = \"host\"` (or `debian:bookworm`, `dir:/path`), or a `profile` that has one",
                        )
                    };
                    self.err(d.at(ab.span.clone()));
                    return;
                }
            },
        };
        let cpus = self.eval_cpus(ab, &rep).or(profile.cpus);
        let memory_mib = self.eval_memory(ab, &rep).or(profile.memory_mib);
        let mut labels = profile.labels.clone();
        labels.extend(self.eval_labels(ab, &rep).unwrap_or_default());
        let platform = self
            .eval_string(ab, "platform", &rep)
            .or(profile.platform.clone());
        if let Some(p) = &platform {
            let span = ab
                .attr("platform")
                .map(|a| a.expr_span.clone())
                .unwrap_or(ab.span.clone());
            self.check_platform_name(p, span);
        }
        let n = &self.nodes[i];
        let interfaces: Vec<Interface> = n
            .networks
            .iter()
            .enumerate()
            .map(|(slot, &net)| {
                let cidr = self.nets[net].cidr.unwrap_or_default();
                Interface {
                    network: self.nets[net].host.clone(),
                    address: n.addresses[slot],
                    prefix_len: cidr.prefix_len(),
                    gateway: ipam::gateway(cidr),
                }
            })
            .collect();
        let spec = NodeSpec {
            settings: Default::default(),
            host: None,
            hostname: n.host.clone(),
            image: image.clone(),
            cpus,
            memory_mib,
            labels: labels.clone(),
            interfaces,
        };
        let mut depends_on: Vec<InstanceAddr> = n
            .networks
            .iter()
            .map(|&net| self.nets[net].addr.clone())
            .collect();
        depends_on.extend(self.expand_targets(&n.depends_on.clone()));
        // References to other nodes in attributes are dependencies too:
        // the instance referred to, or every instance of a resource used
        // whole (as the evaluation recorded them).
        let own = &self.nodes[i].addr;
        depends_on.extend(
            self.referred_instances
                .iter()
                .filter(|a| *a != own)
                .cloned(),
        );
        for name in &self.referred_resources {
            for &j in self
                .node_resource
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                if j != i {
                    depends_on.push(self.nodes[j].addr.clone());
                }
            }
        }
        dedup(&mut depends_on);
        let mut o = self.base_node_object(i);
        o.insert(
            "platform".into(),
            platform.clone().map(Value::from).unwrap_or(Value::Null),
        );
        o.insert("image".into(), Value::from(image));
        o.insert(
            "profile".into(),
            profile_name.map(Value::from).unwrap_or(Value::Null),
        );
        o.insert(
            "labels".into(),
            Value::Object(
                labels
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect(),
            ),
        );
        o.insert(
            "cpus".into(),
            cpus.and_then(hcl::Number::from_f64)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        );
        o.insert(
            "memory".into(),
            memory_mib
                .map(|m| Value::from(format!("{m}MiB")))
                .unwrap_or(Value::Null),
        );
        let n = &mut self.nodes[i];
        n.object = o;
        n.spec = Some(spec);
        n.platform = platform;
        n.depends_on = depends_on;
    }

    fn check_platform_name(&mut self, p: &str, span: Span) {
        let mut known: Vec<String> = self.opts.drivers.clone();
        known.extend(self.names_of("platform"));
        if !known.iter().any(|k| k == p) {
            let mut d = Diagnostic::error(format!("unknown platform `{p}`")).at(span);
            d = match did_you_mean(p, known.iter().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "platforms: {} (or a `platform` block's name)",
                    known.join(", ")
                )),
            };
            self.err(d);
        }
    }

    /// `depends_on` targets as instances: a whole resource expands to all of
    /// its instances.
    fn expand_targets(&self, targets: &[InstanceAddr]) -> Vec<InstanceAddr> {
        let mut out = Vec::new();
        for t in targets {
            match t.kind() {
                ResourceKind::Node => {
                    for &j in self
                        .node_resource
                        .get(t.name())
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                    {
                        if self.nodes[j].addr.matches(t) {
                            out.push(self.nodes[j].addr.clone());
                        }
                    }
                }
                ResourceKind::Network => {
                    out.extend(
                        self.nets
                            .iter()
                            .filter(|n| n.addr.matches(t))
                            .map(|n| n.addr.clone()),
                    );
                }
                ResourceKind::Package => {
                    out.extend(
                        self.packages
                            .iter()
                            .filter(|p| p.address.resource == t.resource)
                            .map(|p| p.address.clone()),
                    );
                }
            }
        }
        out
    }

    // ----- packages -----------------------------------------------------

    fn eval_packages(&mut self) {
        let blocks = self.blocks.clone();
        let rep = Repetition::default();
        let decls = self.declared("package").cloned().unwrap_or_default();
        // Packages may depend on packages: order them.
        let names: Vec<String> = decls.keys().cloned().collect();
        let edges = edges_by_name(&names, |i| {
            self.static_depends_on(&blocks[decls[&names[i]]])
                .into_iter()
                .filter(|t| t.kind() == ResourceKind::Package)
                .map(|t| t.name().to_string())
                .collect()
        });
        for pi in topo_order(&edges) {
            let name = names[pi].clone();
            self.open_value(format!("package.{name}"));
            let b = &blocks[decls[&name]];
            let version = self.eval_string(b, "version", &rep);
            if let Some(v) = &version {
                if let Err(why) = names::check_debian_version(v) {
                    let span = b
                        .attr("version")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(b.span.clone());
                    self.err(Diagnostic::error(format!("invalid version `{v}` for package `{name}`: {why}")).at(span).help("give the exact Debian version, such as `1.22.1-9`; `apt-cache policy NAME` lists them"));
                }
            }
            let source_kind = self.eval_string(b, "source", &rep);
            let deb = self.eval_string(b, "deb", &rep);
            let source = match (source_kind.as_deref(), deb) {
                (None | Some("apt"), None) => PackageSource::Apt,
                (None | Some("deb"), Some(path)) => {
                    let p = PathBuf::from(&path);
                    let full = if p.is_absolute() {
                        p
                    } else {
                        self.opts.dir.join(p)
                    };
                    let full = std::fs::canonicalize(&full).unwrap_or(full);
                    if !full.is_file() {
                        let span = b
                            .attr("deb")
                            .map(|a| a.expr_span.clone())
                            .unwrap_or(b.span.clone());
                        self.err(Diagnostic::error(format!("deb file `{path}` does not exist")).at(span).help("give a path to a `.deb` file, relative to the testbed directory"));
                    }
                    PackageSource::Deb { path: full }
                }
                (Some("deb"), None) => {
                    self.err(
                        Diagnostic::error(format!(
                            "package `{name}` has `source = \"deb\"` but no `deb` file"
                        ))
                        .at(b.span.clone())
                        .help("add `deb = \"path/to/file.deb\"`"),
                    );
                    continue;
                }
                (Some("apt"), Some(_)) => {
                    let span = b
                        .attr("source")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(b.span.clone());
                    self.err(
                        Diagnostic::error("`source = \"apt\"` and `deb` do not go together")
                            .at(span)
                            .help("remove `source`, or the `deb` file"),
                    );
                    continue;
                }
                (Some(other), _) => {
                    let span = b
                        .attr("source")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(b.span.clone());
                    let mut d =
                        Diagnostic::error(format!("unknown package source `{other}`")).at(span);
                    d = match did_you_mean(other, ["apt", "deb"]) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(
                            "sources are `apt` (default) and `deb` (with `deb = \"file.deb\"`)",
                        ),
                    };
                    self.err(d);
                    continue;
                }
            };
            let on: Vec<usize> = match b.attr("on").cloned() {
                None => self
                    .node_resource
                    .get(&implicit_node_name(&name))
                    .cloned()
                    .unwrap_or_default(),
                Some(a) => match self.package_targets(&a) {
                    Some(v) => v,
                    None => continue,
                },
            };
            let mut extra = self.static_depends_on(b);
            extra = self.expand_targets(&extra);
            let prevent = self.prevent_destroy(b);
            let mut hosts = Vec::new();
            for ni in on {
                let node = &self.nodes[ni];
                hosts.push(Value::from(node.host.as_str()));
                let addr = InstanceAddr::new(
                    ResourceKind::Package,
                    name.clone(),
                    InstanceKey::Node(Box::new(node.addr.clone())),
                );
                let mut depends_on = vec![node.addr.clone()];
                depends_on.extend(
                    extra
                        .iter()
                        .filter(|d| {
                            // A package depending on a package: the instance on the same node.
                            d.kind() != ResourceKind::Package
                                || matches!(&d.key, InstanceKey::Node(n) if **n == node.addr)
                        })
                        .cloned(),
                );
                dedup(&mut depends_on);
                let spec = PackageSpec {
                    name: name.clone(),
                    version: version.clone(),
                    source: source.clone(),
                    node: node.host.clone(),
                };
                let mut attrs = serde_json::Map::new();
                attrs.insert("name".into(), name.clone().into());
                attrs.insert(
                    "version".into(),
                    version
                        .clone()
                        .map(Into::into)
                        .unwrap_or(serde_json::Value::Null),
                );
                attrs.insert("node".into(), node.host.clone().into());
                self.packages.push(DesiredInstance {
                    address: addr,
                    platform: node.platform.clone(),
                    spec: Spec::Package(spec),
                    depends_on,
                    attributes: serde_json::Value::Object(attrs),
                    prevent_destroy: prevent,
                    span: Some(b.span.clone()),
                });
            }
            let mut o = hcl::Map::new();
            o.insert("id".into(), Value::from(format!("package.{name}")));
            o.insert("name".into(), Value::from(name.as_str()));
            o.insert(
                "version".into(),
                version.map(Value::from).unwrap_or(Value::Null),
            );
            o.insert("nodes".into(), Value::Array(hosts));
            self.package_values.insert(name.clone(), Value::Object(o));
        }
    }

    /// The nodes a package's `on` names.
    fn package_targets(&mut self, a: &RawAttr) -> Option<Vec<usize>> {
        let v = self.eval(a, &Repetition::default())?;
        let mut ids: Vec<String> = Vec::new();
        let mut bad = None;
        collect_node_ids(&v, &mut |id| ids.push(id.to_string()), &mut |other| {
            bad = Some(types::describe(other))
        });
        let mut out = Vec::new();
        for id in ids {
            match id
                .parse::<InstanceAddr>()
                .ok()
                .and_then(|x| self.node_by_addr.get(&x).copied())
            {
                Some(i) if !out.contains(&i) => out.push(i),
                Some(_) => {}
                None => bad = Some(format!("`{id}`")),
            }
        }
        if let Some(b) = bad {
            self.err(
                Diagnostic::error(format!(
                    "`on` takes nodes, such as `[node.edge]`, found {b}"
                ))
                .at(a.expr_span.clone())
                .help("write node references, without quotes: `on = [node.edge, node.web[\"a\"]]`"),
            );
            return None;
        }
        if out.is_empty() {
            self.err(
                Diagnostic::warning("`on` names no node: the package is installed nowhere")
                    .at(a.expr_span.clone())
                    .help(
                        "name a node in `on`, or remove `on` to give the package a node of its own",
                    ),
            );
        }
        Some(out)
    }

    // ----- outputs and settings -------------------------------------------

    fn eval_outputs(&mut self) {
        let blocks = self.blocks.clone();
        let rep = Repetition::default();
        let sensitive_locals = self.sensitive_locals();
        for (name, &bi) in self.declared("output").cloned().unwrap_or_default().iter() {
            self.open_value(format!("output.{name}"));
            let b = &blocks[bi];
            let Some(a) = b.attr("value").cloned() else {
                continue;
            };
            let sensitive = self.eval_bool(b, "sensitive", &rep).unwrap_or(false);
            let uses_sensitive = refs::scan(a.expr_span.file, &a.expr)
                .refs
                .into_iter()
                .find(|r| {
                    r.name.as_ref().is_some_and(|n| match r.root.as_str() {
                        "var" => self.sensitive_vars.contains(n),
                        "local" => sensitive_locals.contains(n),
                        _ => false,
                    })
                });
            if let (false, Some(r)) = (sensitive, uses_sensitive) {
                let what = match r.root.as_str() {
                    "var" => "the sensitive variable",
                    _ => "a sensitive variable through",
                };
                self.err(
                    Diagnostic::error(format!(
                        "output `{name}` shows {what} `{}.{}`",
                        r.root,
                        r.name.unwrap_or_default()
                    ))
                    .at(r.span)
                    .help("add `sensitive = true` to the output"),
                );
                continue;
            }
            let description = self.eval_string(b, "description", &rep);
            let Some(v) = self.eval(&a, &rep) else {
                continue;
            };
            self.outputs.insert(
                name.clone(),
                OutputValue {
                    value: to_json(&v),
                    sensitive,
                    description,
                },
            );
        }
    }

    /// Locals that use a sensitive variable, directly or through other
    /// locals: an output showing them must be sensitive too.
    fn sensitive_locals(&self) -> HashSet<String> {
        let mut out: HashSet<String> = HashSet::new();
        if self.sensitive_vars.is_empty() {
            return out;
        }
        loop {
            let before = out.len();
            for (name, (bi, an)) in &self.locals {
                if out.contains(name) {
                    continue;
                }
                let a = &self.blocks[*bi].attrs[an];
                let uses = refs::scan(a.expr_span.file, &a.expr).refs.iter().any(|r| {
                    r.name.as_ref().is_some_and(|n| match r.root.as_str() {
                        "var" => self.sensitive_vars.contains(n),
                        "local" => out.contains(n),
                        _ => false,
                    })
                });
                if uses {
                    out.insert(name.clone());
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    fn eval_settings(
        &mut self,
    ) -> (
        String,
        Option<String>,
        StateBackendConfig,
        Vec<PlatformConfig>,
    ) {
        let blocks = self.blocks.clone();
        let rep = Repetition::default();
        let mut name = self
            .opts
            .dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "testbed".into());
        let mut description = None;
        let mut state = StateBackendConfig::Sqlite;
        let mut platforms = Vec::new();
        for b in blocks.iter() {
            match b.kind.as_str() {
                "testbed" => {
                    if let Some(n) = self.eval_string(b, "name", &rep) {
                        name = n;
                    }
                    description = self.eval_string(b, "description", &rep);
                }
                "state" => {
                    let backend = self
                        .eval_string(b, "backend", &rep)
                        .unwrap_or_else(|| "sqlite".into());
                    state = match backend.as_str() {
                        "sqlite" => match self.eval_string(b, "path", &rep) {
                            Some(p) => StateBackendConfig::SqlitePath(p),
                            None => StateBackendConfig::Sqlite,
                        },
                        "postgres" => {
                            match self.eval_string(b, "url", &rep) {
                                Some(url) => StateBackendConfig::Postgres { url },
                                None => {
                                    self.err(Diagnostic::error("the postgres backend needs a `url`").at(b.span.clone()).help("add `url = env(\"TG_PG_URL\")` or a `postgres://` URL"));
                                    StateBackendConfig::Sqlite
                                }
                            }
                        }
                        other => {
                            let span = b
                                .attr("backend")
                                .map(|a| a.expr_span.clone())
                                .unwrap_or(b.span.clone());
                            let mut d =
                                Diagnostic::error(format!("unknown state backend `{other}`"))
                                    .at(span);
                            d = match did_you_mean(other, ["sqlite", "postgres"]) {
                                Some(s) => d.help(format!("did you mean `{s}`?")),
                                None => d.help("backends are `sqlite` (default) and `postgres`"),
                            };
                            self.err(d);
                            StateBackendConfig::Sqlite
                        }
                    };
                }
                "platform" => {
                    let driver = b.labels[0].clone();
                    if !["ssh", "netns"].contains(&driver.as_str()) {
                        let mut d =
                            Diagnostic::error(format!("unknown platform driver `{driver}`"))
                                .at(b.span.clone());
                        d = match did_you_mean(&driver, ["ssh", "netns"]) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help("drivers are `netns` and `ssh`"),
                        };
                        self.err(d);
                        continue;
                    }
                    let mut attributes = BTreeMap::new();
                    for (k, a) in &b.attrs {
                        if let Some(v) = self.eval(&a.clone(), &rep) {
                            attributes.insert(k.clone(), to_json(&v));
                        }
                    }
                    let mut hosts = Vec::new();
                    for h in b.blocks_of("host") {
                        let address = self.eval_string(h, "address", &rep).unwrap_or_default();
                        let profile = self.eval_string(h, "profile", &rep);
                        if let Some(p) = &profile {
                            if !self.profiles.contains_key(p) {
                                let span = h
                                    .attr("profile")
                                    .map(|a| a.expr_span.clone())
                                    .unwrap_or(h.span.clone());
                                self.err(
                                    Diagnostic::error(format!("unknown profile `{p}`")).at(span),
                                );
                            }
                        }
                        hosts.push(PoolHost {
                            name: h.label().to_string(),
                            address,
                            profile,
                        });
                    }
                    platforms.push(PlatformConfig {
                        driver,
                        name: b.labels[1].clone(),
                        attributes,
                        hosts,
                    });
                }
                _ => {}
            }
        }
        (name, description, state, platforms)
    }

    fn finish(
        &mut self,
        name: String,
        description: Option<String>,
        state: StateBackendConfig,
        platforms: Vec<PlatformConfig>,
    ) -> Testbed {
        let mut instances = IndexMap::new();
        for n in &self.nets {
            let cidr = n.cidr.unwrap_or_default();
            let spec = NetworkSpec {
                name: n.host.clone(),
                cidr,
                gateway: ipam::gateway(cidr),
                nat: n.nat,
            };
            let mut depends_on = self.expand_targets(&n.depends_on);
            dedup(&mut depends_on);
            instances.insert(
                n.addr.clone(),
                DesiredInstance {
                    address: n.addr.clone(),
                    platform: None,
                    spec: Spec::Network(spec),
                    depends_on,
                    attributes: to_json(&Value::Object(network_object(n))),
                    prevent_destroy: n.prevent_destroy,
                    span: Some(self.blocks[n.block].span.clone()),
                },
            );
        }
        for n in &self.nodes {
            let Some(spec) = n.spec.clone() else { continue };
            instances.insert(
                n.addr.clone(),
                DesiredInstance {
                    address: n.addr.clone(),
                    platform: n.platform.clone(),
                    spec: Spec::Node(spec),
                    depends_on: n.depends_on.clone(),
                    attributes: to_json(&Value::Object(n.object.clone())),
                    prevent_destroy: n.prevent_destroy,
                    span: Some(self.blocks[n.block].span.clone()),
                },
            );
        }
        for p in self.packages.drain(..) {
            instances.insert(p.address.clone(), p);
        }
        // The testbed's hash: every file and every variable value.
        let mut h = Sha256::new();
        for (_, f) in self.sources.files() {
            h.update(f.path.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(f.text.as_bytes());
            h.update([0]);
        }
        for (k, v) in &self.var_values {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.to_string().as_bytes());
            h.update([0]);
        }
        let hash = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Testbed {
            name,
            description,
            instances,
            outputs: std::mem::take(&mut self.outputs),
            state,
            platforms,
            hash,
            sources: self.sources.clone(),
        }
    }
}

/// Rewrites `node.X[KEY]...` into a fresh variable bound to that one
/// instance's object, when KEY is a literal, `count.index` or `each.key`.
struct NarrowNodeRefs<'e, 'o> {
    ev: &'e Evaluator<'o>,
    rep: &'e Repetition,
    decls: Vec<(String, Value)>,
    /// The instances the rewritten references point at.
    referred: Vec<InstanceAddr>,
}

impl NarrowNodeRefs<'_, '_> {
    fn key_of(&self, ix: &hcl_edit::expr::Expression) -> Option<InstanceKey> {
        use hcl_edit::expr::{Expression as E, TraversalOperator as Op};
        match ix {
            E::Number(n) => n.value().as_u64().map(InstanceKey::Int),
            E::String(s) => Some(InstanceKey::Str(s.value().clone())),
            E::Traversal(t) => {
                let E::Variable(root) = &t.expr else {
                    return None;
                };
                let [op] = t.operators.as_slice() else {
                    return None;
                };
                let Op::GetAttr(attr) = op.value() else {
                    return None;
                };
                match (root.as_str(), attr.as_str()) {
                    ("count", "index") => self.rep.count.map(InstanceKey::Int),
                    ("each", "key") => match &self.rep.each {
                        Some((Value::String(k), _)) => Some(InstanceKey::Str(k.clone())),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn instance(&mut self, name: &str, key: &InstanceKey) -> Option<Value> {
        let idx = self.ev.node_resource.get(name)?;
        let node = idx
            .iter()
            .map(|&i| &self.ev.nodes[i])
            .find(|n| &n.addr.key == key)?;
        self.referred.push(node.addr.clone());
        Some(Value::Object(node.object.clone()))
    }
}

impl hcl_edit::visit_mut::VisitMut for NarrowNodeRefs<'_, '_> {
    fn visit_expr_mut(&mut self, expr: &mut hcl_edit::expr::Expression) {
        use hcl_edit::expr::{Expression as E, Traversal, TraversalOperator as Op};
        if let E::Traversal(t) = expr {
            if matches!(&t.expr, E::Variable(v) if v.as_str() == "node") {
                let narrowed = match t.operators.as_slice() {
                    [first, second, ..] => match (first.value(), second.value()) {
                        (Op::GetAttr(name), Op::Index(ix)) => self
                            .key_of(ix)
                            .and_then(|k| self.instance(name.as_str(), &k)),
                        (Op::GetAttr(name), Op::LegacyIndex(n)) => {
                            self.instance(name.as_str(), &InstanceKey::Int(*n.value()))
                        }
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(v) = narrowed {
                    let var = format!("tg_ref_{}", self.decls.len());
                    self.decls.push((var.clone(), v));
                    let head = E::Variable(hcl_edit::Decorated::new(hcl_edit::Ident::new(var)));
                    let rest: Vec<_> = t.operators.drain(2..).collect();
                    *expr = if rest.is_empty() {
                        head
                    } else {
                        E::Traversal(Box::new(Traversal::new(head, rest)))
                    };
                    return;
                }
            }
        }
        hcl_edit::visit_mut::visit_expr_mut(self, expr);
    }
}

impl Allow {
    const fn merge(self, other: Allow) -> Allow {
        Allow {
            var: self.var || other.var,
            local: self.local || other.local,
            network: self.network || other.network,
            node: self.node || other.node,
            package: self.package || other.package,
            count: self.count || other.count,
            each: self.each || other.each,
        }
    }
}

/// The node a package without `on` gets: `pkg-NAME` with `+` and `.` as `-`.
pub fn implicit_node_name(package: &str) -> String {
    let cleaned: String = package
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("pkg-{}", cleaned.trim_end_matches('-'))
}

fn network_object(n: &NetInst) -> hcl::Map<String, Value> {
    let mut o = hcl::Map::new();
    o.insert("id".into(), Value::from(n.addr.to_string()));
    o.insert("name".into(), Value::from(n.host.as_str()));
    match n.cidr {
        Some(c) => {
            o.insert("cidr".into(), Value::from(c.to_string()));
            o.insert("gateway".into(), Value::from(ipam::gateway(c).to_string()));
        }
        None => {
            o.insert("cidr".into(), Value::Null);
            o.insert("gateway".into(), Value::Null);
        }
    }
    o.insert("nat".into(), Value::from(n.nat));
    o
}

fn collect_node_ids(v: &Value, found: &mut dyn FnMut(&str), other: &mut dyn FnMut(&Value)) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect_node_ids(x, found, other)),
        Value::Object(o) => match o.get("id").and_then(|i| i.as_str()) {
            Some(id) if id.starts_with("node.") => found(id),
            _ => o.values().for_each(|x| collect_node_ids(x, found, other)),
        },
        x => other(x),
    }
}

fn dedup(v: &mut Vec<InstanceAddr>) {
    let mut seen = HashSet::new();
    v.retain(|a| seen.insert(a.clone()));
}

/// A value from the command line or environment: strings stay strings for
/// `string` variables; anything else is parsed as an HCL expression.
fn raw_value(raw: &str, ty: &VarType) -> Value {
    if matches!(ty, VarType::String) {
        return Value::from(raw);
    }
    match hcl_edit::parser::parse_expr(raw) {
        Ok(mut e) => {
            let found = refs::scan(crate::diagnostics::FileId(0), &e);
            if !found.is_static() {
                return Value::from(raw);
            }
            let mut ctx = hcl::eval::Context::new();
            if found.arith {
                checked::rewrite(&mut e);
                checked::declare(&mut ctx);
            }
            hcl::Expression::from(e)
                .evaluate(&ctx)
                .unwrap_or_else(|_| Value::from(raw))
        }
        Err(_) => Value::from(raw),
    }
}

fn parse_cidr(s: &str) -> Result<Ipv4Net, (String, String)> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        (
            "expected an IPv4 network such as 10.42.0.0/24".to_string(),
            "write the network address and prefix length, such as `10.42.0.0/24`".to_string(),
        )
    })?;
    if net.network() != net.addr() {
        return Err((
            "it has host bits set".to_string(),
            format!("did you mean `{}`?", net.trunc()),
        ));
    }
    if net.prefix_len() > 30 {
        return Err((
            "it is too small: a network needs at least a /30 (the host side and one node)"
                .to_string(),
            format!(
                "use a /30 or larger, such as `{}`",
                Ipv4Net::new(net.network(), 24)
                    .map(|n| n.trunc())
                    .unwrap_or(net)
            ),
        ));
    }
    if net.prefix_len() < 8 {
        return Err((
            "it is too large".to_string(),
            "use a prefix of /8 or longer, such as `10.42.0.0/24`".to_string(),
        ));
    }
    Ok(net)
}

/// Parse `512MiB`, `2GiB`, `1G`, `512` (MiB) into MiB, rounding up.
pub fn parse_memory(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let bytes_per: f64 = match unit.trim() {
        "" | "MiB" | "M" | "Mi" => 1024.0 * 1024.0,
        "KiB" | "K" | "Ki" => 1024.0,
        "GiB" | "G" | "Gi" => 1024.0 * 1024.0 * 1024.0,
        "TiB" | "T" | "Ti" => 1024.0_f64.powi(4),
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "B" => 1.0,
        _ => return None,
    };
    let mib = (n * bytes_per / (1024.0 * 1024.0)).ceil();
    (1.0..1e12).contains(&mib).then_some(mib as u64)
}

/// The value of a literal expression (strings, numbers, bools, null, and
/// lists and maps of them) without going through the evaluator.
fn literal_value(e: &hcl_edit::expr::Expression) -> Option<Value> {
    use hcl_edit::expr::{Expression as E, ObjectKey};
    Some(match e {
        E::Null(_) => Value::Null,
        E::Bool(b) => Value::Bool(*b.value()),
        E::Number(n) => Value::Number(*n.value()),
        E::String(s) => Value::String(s.value().clone()),
        E::Array(a) => Value::Array(a.iter().map(literal_value).collect::<Option<Vec<_>>>()?),
        E::Object(o) => {
            let mut m = hcl::Map::new();
            for (k, v) in o.iter() {
                let key = match k {
                    ObjectKey::Ident(i) => i.as_str().to_string(),
                    ObjectKey::Expression(E::String(s)) => s.value().clone(),
                    ObjectKey::Expression(E::Variable(i)) => i.as_str().to_string(),
                    _ => return None,
                };
                if m.insert(key, literal_value(v.expr())?).is_some() {
                    return None; // duplicate keys: let the evaluator report it
                }
            }
            Value::Object(m)
        }
        _ => return None,
    })
}

/// hcl values to JSON.
pub fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Map an hcl-rs evaluation error to a diagnostic at the attribute.
fn eval_error(a: &RawAttr, e: &hcl::eval::Error) -> Diagnostic {
    use hcl::eval::ErrorKind;
    let (summary, help): (String, Option<String>) = match e.kind() {
        ErrorKind::UndefinedVar(v) => (format!("unknown reference `{v}`"), None),
        ErrorKind::UndefinedFunc(f) => (format!("unknown function `{f}`"), None),
        ErrorKind::NoSuchKey(k) => (
            format!("no key or attribute `{k}` in `{}`", a.name),
            Some(
                "check the name; a resource with `count` needs an index, such as `node.edge[0]`"
                    .into(),
            ),
        ),
        ErrorKind::Index(i) => (
            format!("index {i} is out of range"),
            Some("check the list's length".into()),
        ),
        ErrorKind::Unexpected(v, expected) => (
            format!("expected {expected}, found {}", types::describe(v)),
            Some(
                "a resource with `count` is a list (`node.edge[0]`), one with `for_each` a map (`node.web[\"a\"]`)"
                    .into(),
            ),
        ),
        // Checked arithmetic: its message is the whole story.
        ErrorKind::FuncCall(name, msg) if checked::is_internal(&name.to_string()) => {
            (msg.clone(), None)
        }
        ErrorKind::FuncCall(name, msg) => (
            // Arity errors end with `; usage: ...`: that goes to the help.
            format!(
                "in `{name}(...)`: {}",
                msg.split_once("; usage: ").map_or(msg.as_str(), |(m, _)| m)
            ),
            functions::signature(&name.to_string()).map(|s| format!("usage: `{s}`")),
        ),
        ErrorKind::BinaryOp(l, op, r) => (
            format!(
                "`{op}` cannot combine {} and {}",
                types::describe(l),
                types::describe(r)
            ),
            None,
        ),
        ErrorKind::UnaryOp(op, v) => (
            format!("`{op}` cannot apply to {}", types::describe(v)),
            None,
        ),
        ErrorKind::KeyExists(k) => (
            format!("key `{k}` is produced twice"),
            Some("use `...` grouping or unique keys".into()),
        ),
        other => (other.to_string(), None),
    };
    let mut d = Diagnostic::error(summary).at(a.expr_span.clone());
    if let Some(h) = help {
        d = d.help(h);
    }
    d
}

/// Adjacency lists `i -> the items i refers to` over `names`, from each
/// item's referenced names (names that are not items are ignored).
fn edges_by_name(
    names: &[String],
    mut refers_to: impl FnMut(usize) -> Vec<String>,
) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    (0..names.len())
        .map(|i| {
            refers_to(i)
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect()
        })
        .collect()
}

/// The names an attribute refers to under `root` (`network.lab` -> `lab`).
fn referenced_names(a: &RawAttr, root: &str) -> Vec<String> {
    refs::scan(a.expr_span.file, &a.expr)
        .refs
        .into_iter()
        .filter(|r| r.root == root)
        .filter_map(|r| r.name)
        .collect()
}

/// Deterministic topological order (dependencies first) of a graph given
/// as adjacency lists `i -> what i depends on`. Cycles must have been ruled
/// out; any left are broken arbitrarily. Iterative: deep chains are fine.
pub fn topo_order(edges: &[Vec<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    let mut out = Vec::with_capacity(n);
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some((v, i)) = stack.last_mut() {
            let v = *v;
            if let Some(&w) = edges[v].get(*i) {
                *i += 1;
                if state[w] == 0 {
                    state[w] = 1;
                    stack.push((w, 0));
                }
            } else {
                state[v] = 2;
                out.push(v);
                stack.pop();
            }
        }
    }
    out
}

/// Every elementary cycle found by a DFS (one per back edge), each as the
/// list of vertices in order. Iterative.
pub fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut state = vec![0u8; n];
    let mut cycles = Vec::new();
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (v, ref mut i)) = stack.last_mut() {
            if let Some(&w) = edges[v].get(*i) {
                *i += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        let pos = stack.iter().position(|(x, _)| *x == w).unwrap_or(0);
                        let cycle: Vec<usize> = stack[pos..].iter().map(|(x, _)| *x).collect();
                        let mut key = cycle.clone();
                        key.sort_unstable();
                        if reported.insert(key) {
                            cycles.push(cycle);
                        }
                    }
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512MiB"), Some(512));
        assert_eq!(parse_memory("2GiB"), Some(2048));
        assert_eq!(parse_memory("1G"), Some(1024));
        assert_eq!(parse_memory("256"), Some(256));
        assert_eq!(parse_memory("1.5GiB"), Some(1536));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(parse_memory("0"), None);
    }

    #[test]
    fn topo_and_cycles() {
        let edges = vec![vec![1], vec![2], vec![]];
        assert_eq!(topo_order(&edges), vec![2, 1, 0]);
        let cyc = vec![vec![1], vec![0], vec![2]];
        let c = find_cycles(&cyc);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn implicit_names() {
        assert_eq!(implicit_node_name("nginx"), "pkg-nginx");
        assert_eq!(implicit_node_name("g++"), "pkg-g");
        assert_eq!(implicit_node_name("python3.11"), "pkg-python3-11");
    }
}
