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
use super::functions;
use super::ipam::{self, NetAlloc, Refused};
use super::model::{
    DesiredInstance, OutputValue, PlatformConfig, PoolHost, StateBackendConfig, Testbed,
};
use super::refs::{self, Reference};
use super::types::{self, VarType};
use super::{LoadOptions, Prior};
use crate::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use crate::config::decode::{RawAttr, RawBlock};
use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics, SourceMap, Span};
use crate::names;
use crate::platform::{Interface, NetworkSpec, NodeSpec, PackageSource, PackageSpec, Spec};

mod addresses;
mod cycles;
mod declare;
mod expansion;
mod expressions;
mod finish;
mod locals;
mod networks;
mod nodes;
mod outputs;
mod packages;
mod profiles;
mod references;
mod settings;
mod variables;

use cycles::{edges_by_name, referenced_names};
pub use cycles::{find_cycles, topo_order};
pub use declare::implicit_node_name;
pub use expressions::{parse_memory, to_json};
use networks::network_object;

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
    pub(super) fn instances(&self) -> Vec<(InstanceKey, Repetition)> {
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
    pub(super) fn open_value(&mut self, id: String) {
        self.close_value();
        self.current = Some((id, self.diags.error_count()));
        self.silenced = false;
    }

    /// End the current value: poison it if it failed or was skipped.
    pub(super) fn close_value(&mut self) {
        if let Some((id, errors)) = self.current.take() {
            if self.diags.error_count() > errors || self.silenced {
                self.poisoned.insert(id);
            }
        }
        self.silenced = false;
    }

    pub(super) fn is_poisoned(&self, root: &str, name: &str) -> bool {
        !self.poisoned.is_empty() && self.poisoned.contains(&format!("{root}.{name}"))
    }

    pub(super) fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub(super) fn declared(&self, kind: &str) -> Option<&IndexMap<String, usize>> {
        self.declared.get(kind)
    }

    pub(super) fn is_declared(&self, kind: &str, name: &str) -> bool {
        self.declared(kind).is_some_and(|m| m.contains_key(name))
    }

    pub(super) fn names_of(&self, kind: &str) -> Vec<String> {
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

    pub(super) fn loc(&self, span: &Span) -> String {
        let f = self.sources.get(span.file);
        let p = f.position(span.range.start);
        format!("{}:{}:{}", f.path.display(), p.line, p.column)
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

fn dedup(v: &mut Vec<InstanceAddr>) {
    let mut seen = HashSet::new();
    v.retain(|a| seen.insert(a.clone()));
}
