//! The evaluated testbed: what the rest of tg consumes.
//!
//! `config` turns HCL files into a [`Testbed`]: every resource expanded into
//! instances, every expression evaluated, every address assigned (IPAM).
//! Nothing downstream ever sees HCL. Spans are kept so later stages (plan,
//! platform checks) can still point at the line a problem comes from.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::Serialize;

use crate::addrs::InstanceAddr;
use crate::diagnostics::{SourceMap, Span};
use crate::platform::Spec;

/// One instance the configuration asks for.
#[derive(Debug, Clone)]
pub struct DesiredInstance {
    pub address: InstanceAddr,
    /// The platform named in the configuration; `None` = tg picks one.
    pub platform: Option<String>,
    pub spec: Spec,
    /// Everything this instance depends on: its networks, its node, the
    /// targets of `depends_on` and of references, expanded to instances.
    pub depends_on: Vec<InstanceAddr>,
    /// What expressions and users see of it (`name`, `hostname`, `address`,
    /// `addresses`, `platform`, `image`, `profile`, `labels` for a node).
    pub attributes: serde_json::Value,
    /// `lifecycle { prevent_destroy = true }`.
    pub prevent_destroy: bool,
    /// Where the resource block is declared.
    pub span: Option<Span>,
    /// The attributes whose values derive from a sensitive variable, as
    /// dotted paths (`labels.pw`, `image`) into both `attributes` and the
    /// spec's attributes (where they differ, both names are listed:
    /// `memory` and `memory_mib`, `address` and `interfaces`). Sorted. What
    /// shows an instance hides these (`(sensitive value)`).
    pub sensitive: Vec<String>,
}

/// An output block, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct OutputValue {
    pub value: serde_json::Value,
    pub sensitive: bool,
    pub description: Option<String>,
}

/// Where state is kept, from the `state` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StateBackendConfig {
    /// `.tg/state.db` under the testbed directory (or `path`).
    #[default]
    Sqlite,
    SqlitePath(String),
    Postgres {
        url: String,
    },
}

/// A host of a pool (`platform "ssh" "pool" { host "h" {...} }`): every
/// attribute the `host` block can carry.
#[derive(Debug, Clone, Serialize)]
pub struct PoolHost {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub profile: Option<String>,
    pub image: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub cpus: Option<f64>,
    pub memory_mib: Option<u64>,
}

/// A `platform` block, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformConfig {
    /// The driver kind (`ssh`, `netns`): one the caller's factory offers.
    pub driver: String,
    /// The block's name (`pool-a`).
    pub name: String,
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub hosts: Vec<PoolHost>,
}

/// A `moved` block: what state recorded at `from` now lives at `to`
/// (an instance, or a whole resource key by key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: InstanceAddr,
    pub to: InstanceAddr,
    /// The `moved` block.
    pub span: Span,
}

/// A whole evaluated testbed.
#[derive(Debug, Clone, Default)]
pub struct Testbed {
    /// `testbed { name = ... }`, else the directory's name.
    pub name: String,
    pub description: Option<String>,
    /// Instances in a stable order (declaration order, then key).
    pub instances: IndexMap<InstanceAddr, DesiredInstance>,
    pub outputs: IndexMap<String, OutputValue>,
    pub state: StateBackendConfig,
    pub platforms: Vec<PlatformConfig>,
    /// The `moved` blocks, in the order they apply (a move whose `to` is
    /// another's `from` comes first, so chains end where the last says).
    pub moves: Vec<Move>,
    /// A hash of every source file and variable value: what a saved plan records.
    pub hash: String,
    pub sources: SourceMap,
}
