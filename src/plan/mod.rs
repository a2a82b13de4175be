//! Plans: what apply would change, and why.
//!
//! The change type is the contract between planning and applying:
//!
//! | action    | `before`                      | `after`             |
//! |-----------|-------------------------------|---------------------|
//! | `no-op`   | recorded (refreshed) spec     | the same spec       |
//! | `create`  | `None` (or a gone object)     | desired spec        |
//! | `update`  | refreshed spec                | desired spec        |
//! | `replace` | refreshed (or recorded) spec  | desired spec        |
//! | `delete`  | recorded spec                 | `None`              |
//!
//! [`diff`] computes a plan from a testbed and a state snapshot; the
//! `render_*` modules print it; [`planfile`] saves and loads it. Nothing here
//! talks to state stores or runs platforms except the refresh in [`diff`],
//! which only reads.

pub mod diff;
pub mod placement;
pub mod planfile;
pub mod redact;
pub mod refresh;
pub mod render_json;
pub mod render_markdown;
pub mod render_text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use crate::platform::Spec;
use crate::state::OutputRecord;

/// What apply does to one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Delete, then create.
    Replace,
    Delete,
}

impl Action {
    /// The Terraform-style list of primitive actions (`["delete","create"]`).
    pub fn json_actions(self) -> &'static [&'static str] {
        match self {
            Action::NoOp => &["no-op"],
            Action::Create => &["create"],
            Action::Update => &["update"],
            Action::Replace => &["delete", "create"],
            Action::Delete => &["delete"],
        }
    }

    /// The marker shown in front of an instance in the text plan.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    pub fn is_change(self) -> bool {
        self != Action::NoOp
    }
}

/// Why an instance must be replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ReplaceReason {
    /// This attribute changed and the platform cannot change it in place.
    Attribute { attribute: String },
    /// A create or update did not finish last time.
    Tainted,
    /// Asked for with `-replace`.
    Requested,
    /// The instance moves to another platform.
    Platform { from: String, to: String },
}

impl std::fmt::Display for ReplaceReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplaceReason::Attribute { attribute } => {
                write!(f, "`{attribute}` cannot be changed in place")
            }
            ReplaceReason::Tainted => {
                f.write_str("it is tainted (a create or update did not finish)")
            }
            ReplaceReason::Requested => f.write_str("it was asked for with `-replace`"),
            ReplaceReason::Platform { from, to } => {
                write!(f, "it moves from platform `{from}` to `{to}`")
            }
        }
    }
}

/// The planned change of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: InstanceAddr,
    pub action: Action,
    /// The platform that applies the change (for a delete: the one that made it).
    pub platform: String,
    pub before: Option<Spec>,
    pub after: Option<Spec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_reasons: Vec<ReplaceReason>,
    /// What this instance depends on: the desired dependencies, or for a
    /// delete the ones state recorded. Apply orders work with these.
    #[serde(default)]
    pub depends_on: Vec<InstanceAddr>,
    /// The attributes to record after create/update.
    #[serde(default)]
    pub attributes: serde_json::Value,
    /// Dotted paths into `after` and `attributes` whose values are
    /// sensitive ([`crate::config::model::DesiredInstance::sensitive`]);
    /// recorded with the instance by apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
    /// Dotted paths into `before` that were sensitive when it was recorded
    /// ([`crate::state::InstanceRecord::sensitive`]). Renderers hide
    /// `before` at these paths and at `sensitive`, `after` at `sensitive`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_sensitive: Vec<String>,
}

impl ResourceChange {
    pub fn kind(&self) -> ResourceKind {
        self.address.kind()
    }
}

/// Something changed outside tg since the last apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub address: InstanceAddr,
    pub kind: DriftKind,
    /// What was recorded.
    pub before: Spec,
    /// What the platform sees now (`None` when gone).
    pub after: Option<Spec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    /// "has been deleted outside tg".
    Deleted,
    /// "has changed outside tg".
    Changed,
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The session planned for.
    pub session: String,
    /// The session's lineage and serial the plan was made from.
    pub lineage: String,
    pub serial: u64,
    /// The testbed's hash (see [`crate::config::model::Testbed::hash`]).
    pub testbed_hash: String,
    pub tg_version: String,
    /// A `-destroy` plan.
    pub destroy: bool,
    /// A `-refresh-only` plan: its apply only records the drift.
    #[serde(default)]
    pub refresh_only: bool,
    /// Planned with `-target`: outputs are not saved by its apply.
    #[serde(default)]
    pub targeted: bool,
    /// Every instance considered, in apply order (dependencies first).
    pub changes: Vec<ResourceChange>,
    #[serde(default)]
    pub drift: Vec<Drift>,
    /// Capability warnings and other notes, one line each.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Output values to record after apply.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputRecord>,
    /// Recorded instances the testbed's `moved` blocks rename, from where
    /// state has them to their new address. The changes are planned at the
    /// new addresses; apply renames these in state first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<crate::state::moves::Renamed>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::NoOp => {}
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    /// Does applying this plan change anything (for a refresh-only plan:
    /// does it record any drift)?
    pub fn has_changes(&self) -> bool {
        if self.refresh_only {
            return !self.drift.is_empty();
        }
        !self.moves.is_empty() || self.changes.iter().any(|c| c.action.is_change())
    }

    /// Where state recorded `addr` before this plan moves it.
    pub fn moved_from(&self, addr: &InstanceAddr) -> Option<&InstanceAddr> {
        self.moves.iter().find(|m| &m.to == addr).map(|m| &m.from)
    }

    /// The changes that do something.
    pub fn actionable(&self) -> impl Iterator<Item = &ResourceChange> {
        self.changes.iter().filter(|c| c.action.is_change())
    }
}

/// The `name` and `index` of an address as the JSON plan shows them.
pub fn name_and_index(addr: &InstanceAddr) -> (String, Option<serde_json::Value>) {
    let index = match &addr.key {
        InstanceKey::None => None,
        InstanceKey::Int(i) => Some(serde_json::Value::from(*i)),
        InstanceKey::Str(s) => Some(serde_json::Value::from(s.clone())),
        InstanceKey::Node(n) => Some(serde_json::Value::from(n.to_string())),
    };
    (addr.name().to_string(), index)
}

/// A spec's attributes as a JSON object without the `kind` tag.
pub fn spec_attributes(spec: &Spec) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(spec) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.shift_remove("kind");
            m
        }
        _ => serde_json::Map::new(),
    }
}
