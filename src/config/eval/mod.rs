//! Evaluation: a parsed testbed in, an evaluated [`Testbed`] out.
//!
//! Two parts. The static checks ([`Checker`], once per parsed testbed:
//! `declare`, `references`, `cycles`) find every declaration, check every
//! reference and function call and find dependency cycles, so a user sees
//! all such problems at once. The evaluation ([`Evaluator`], once per
//! `settings` or `evaluate` call) runs the stages in the language's order:
//! `variables`, `locals`, `networks` (with pool CIDRs), `profiles`, node
//! placement and `addresses` (IPAM), the rest of `nodes`, `packages`,
//! `outputs`, `settings`, `finish`. A failed value only silences what
//! depends on it, so independent problems are all reported in one run;
//! errors point at the attribute.
//!
//! Shared by the stages: `expressions` (one attribute evaluated),
//! `resolve` and `structural` (references read without copying what is not
//! read), `size` (the limits on values), `expansion` (`count`/`for_each`
//! and the instance limit), `sensitivity` (what derives from a sensitive
//! variable). Nothing here reads the process's environment or files other
//! than those the testbed names (`file()`, `deb`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use hcl::eval::Evaluate;
use hcl::Value;
use indexmap::IndexMap;
use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use super::checked;
use super::functions;
use super::ipam::{self, NetAlloc, Refused};
use super::model::{DesiredInstance, OutputValue, Testbed};
use super::parse::Parsed;
use super::refs::{self, Reference};
use super::types::{self, VarType};
use super::{LoadOptions, Prior, Settings};
use crate::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use crate::config::decode::{RawAttr, RawBlock};
use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics, SourceMap, Span};
use crate::names;
use crate::platform::{Interface, NetworkSpec, NodeSpec, PackageSource, PackageSpec, Spec};

mod addresses;
pub mod console;
mod cycles;
mod declare;
mod expansion;
mod expressions;
mod finish;
mod impair;
mod locals;
mod moved;
mod networks;
mod nodes;
mod outputs;
mod packages;
mod profiles;
mod references;
mod resolve;
mod sensitivity;
mod settings;
mod size;
mod structural;
#[cfg(test)]
pub(crate) mod testing;
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
    /// The network's `impair` block: every node link on it suffers it.
    impair: crate::platform::Impairment,
    prevent_destroy: bool,
    depends_on: Vec<InstanceAddr>,
    /// Its sensitive attribute paths (see `DesiredInstance::sensitive`).
    sensitive: Vec<String>,
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
    /// Its value in expressions (`node.NAME` of one instance): an object.
    object: Value,
    spec: Option<NodeSpec>,
    platform: Option<String>,
    prevent_destroy: bool,
    depends_on: Vec<InstanceAddr>,
    /// Its sensitive attribute paths (see `DesiredInstance::sensitive`).
    sensitive: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Profile {
    image: Option<String>,
    cpus: Option<f64>,
    memory_mib: Option<u64>,
    labels: BTreeMap<String, String>,
    platform: Option<String>,
}

/// How far evaluation may go, from what parsing found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every stage: a testbed, or every error found.
    Full,
    /// Declarations, references, functions and cycles only (the files had
    /// schema errors: evaluating would mostly report their consequences).
    StaticChecks,
}

/// What the static checks found: every declaration and the errors. Made
/// once per parsed testbed ([`Checker`]) and shared by every evaluation.
#[derive(Debug, Default)]
pub(crate) struct Declarations {
    /// kind → name → block index, declaration order.
    declared: HashMap<&'static str, IndexMap<String, usize>>,
    /// local name → (block index, attribute name)
    locals: IndexMap<String, (usize, String)>,
    /// How many references to each local other locals make, and the
    /// locals referred to from anywhere else (see `resolve`).
    local_sites: HashMap<String, usize>,
    locals_used_outside: HashSet<String>,
    /// The `moved` blocks, checked, in the order they apply.
    pub(crate) moves: Vec<super::model::Move>,
    pub(crate) diags: Diagnostics,
}

impl Declarations {
    fn of(&self, kind: &str) -> Option<&IndexMap<String, usize>> {
        self.declared.get(kind)
    }

    fn is_declared(&self, kind: &str, name: &str) -> bool {
        self.of(kind).is_some_and(|m| m.contains_key(name))
    }

    fn names_of(&self, kind: &str) -> Vec<String> {
        self.of(kind)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// The static checks: declarations, references and cycles, before and
/// without any evaluation (see `declare`, `references`, `cycles`).
pub(crate) struct Checker<'p> {
    parsed: &'p Parsed,
    blocks: &'p [RawBlock],
    decl: Declarations,
}

impl<'p> Checker<'p> {
    pub(crate) fn new(parsed: &'p Parsed) -> Checker<'p> {
        Checker {
            parsed,
            blocks: &parsed.blocks,
            decl: Declarations::default(),
        }
    }

    /// Run every static check; the errors are in the result's `diags`.
    pub(crate) fn run(mut self) -> Declarations {
        self.declare();
        self.check_all_references();
        self.check_moves();
        if !self.decl.diags.has_errors() {
            self.check_cycles();
        }
        self.decl.diags.sort();
        self.decl
    }

    fn err(&mut self, d: Diagnostic) {
        self.decl.diags.push(d);
    }

    fn loc(&self, span: &Span) -> String {
        loc(&self.parsed.sources, span)
    }
}

/// `file:line:col` of a span.
fn loc(sources: &SourceMap, span: &Span) -> String {
    let f = sources.get(span.file);
    let p = f.position(span.range.start);
    format!("{}:{}:{}", f.path.display(), p.line, p.column)
}

/// One evaluation of a parsed testbed that passed the static checks.
pub(crate) struct Evaluator<'p> {
    parsed: &'p Parsed,
    opts: &'p LoadOptions,
    blocks: &'p [RawBlock],
    decl: &'p Declarations,
    prior: &'p Prior,
    /// What the host functions (`file`, `env`, ...) see of the caller.
    host: Value,
    max_instances: u64,
    /// Instances made so far, against `max_instances`.
    instance_count: u64,
    pub diags: Diagnostics,
    var_values: hcl::Map<String, Value>,
    var_raw: BTreeMap<String, String>,
    sensitive_vars: HashSet<String>,
    /// What of each local and resource is sensitive (see `sensitivity`).
    marks: sensitivity::Marks,
    local_values: hcl::Map<String, Value>,
    /// The sizes of the locals' values (see `size`).
    local_sizes: HashMap<String, size::Size>,
    /// References to each local by other locals not yet evaluated.
    local_uses_left: HashMap<String, usize>,
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

impl<'p> Evaluator<'p> {
    pub(crate) fn new(parsed: &'p Parsed, decl: &'p Declarations, prior: &'p Prior) -> Self {
        let opts = &parsed.opts;
        Evaluator {
            parsed,
            opts,
            blocks: &parsed.blocks,
            decl,
            prior,
            host: functions::host_value(&opts.dir, &opts.env),
            max_instances: opts.limits.max_instances,
            instance_count: 0,
            diags: Diagnostics::default(),
            var_values: hcl::Map::new(),
            var_raw: BTreeMap::new(),
            sensitive_vars: HashSet::new(),
            marks: sensitivity::Marks::default(),
            local_values: hcl::Map::new(),
            local_sizes: HashMap::new(),
            local_uses_left: decl.local_sites.clone(),
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

    /// Every stage, in the language's order; a failed value only stops
    /// what depends on it (see `poisoned`), so independent problems are
    /// all reported in one run.
    pub(crate) fn run(mut self) -> Result<(Testbed, Diagnostics), Diagnostics> {
        let tb = self.run_stages()?;
        Ok((tb, self.diags))
    }

    /// [`Self::run`], keeping the evaluator (its values) for more
    /// expressions: `tg console`. The warnings stay in `diags`.
    pub(crate) fn run_stages(&mut self) -> Result<Testbed, Diagnostics> {
        if self.parsed.mode != Mode::Full {
            // Only static errors (checked by the caller) can get here.
            return Err(std::mem::take(&mut self.diags));
        }
        let stages: [fn(&mut Self); 10] = [
            Self::read_limits,
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
            stage(self);
            self.close_value();
        }
        let settings = if !self.diags.has_errors() {
            let (name, description) = self.eval_testbed_block();
            Some((name, description, self.eval_state_and_platforms()))
        } else {
            None
        };
        self.scrub_sensitive();
        self.diags.sort();
        if self.diags.has_errors() {
            return Err(std::mem::take(&mut self.diags));
        }
        let (name, description, settings) = settings.unwrap_or_default();
        Ok(self.finish(name, description, settings))
    }

    /// Only what [`Settings`] needs: the variables and locals the `state`
    /// and `platform` blocks use, then those blocks.
    pub(crate) fn run_settings(&mut self) -> Result<Settings, Diagnostics> {
        let (vars, locals) = self.settings_inputs();
        self.eval_variables_only(Some(&vars));
        self.close_value();
        self.eval_locals_only(Some(&locals));
        self.close_value();
        let settings = if self.diags.has_errors() {
            Settings::default()
        } else {
            self.eval_state_and_platforms()
        };
        self.scrub_sensitive();
        self.diags.sort();
        if self.diags.has_errors() {
            return Err(std::mem::take(&mut self.diags));
        }
        Ok(settings)
    }

    /// `TG_MAX_INSTANCES` in the caller's environment replaces the limit.
    fn read_limits(&mut self) {
        let Some(raw) = self.opts.env.var(super::ENV_MAX_INSTANCES) else {
            return;
        };
        match raw.trim().parse::<u64>() {
            Ok(n) if n > 0 => self.max_instances = n,
            _ => self.err(
                Diagnostic::error(format!(
                    "invalid `{}={raw}`: expected a whole number greater than 0",
                    super::ENV_MAX_INSTANCES
                ))
                .help(format!(
                    "set it to the most instances the testbed may have, such as `{}=200000`, or unset it for the default of {}",
                    super::ENV_MAX_INSTANCES,
                    super::Limits::default().max_instances
                )),
            ),
        }
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
