//! The machine-readable plan (`tg plan -json`, `tg show -json PLANFILE`).
//!
//! One JSON document, modelled on Terraform's `show -json` plan format and
//! described by `schemas/plan.schema.json`. Only builds values; printing is
//! the CLI's job. Unlike Terraform's, sensitive values are not in the
//! document: `before`/`after` hold `null` there, and
//! `before_sensitive`/`after_sensitive` mark where (`true`), as Terraform
//! marks them.

use serde_json::{json, Map, Value};

use super::{name_and_index, redact, Action, DriftKind, Plan, ResourceChange};
use crate::platform::Spec;

/// A spec as JSON with the values at `paths` replaced by `null`, and the
/// `*_sensitive` tree of it.
fn masked(spec: Option<&Spec>, paths: &[String]) -> (Value, Value) {
    let attrs: Option<Map<String, Value>> = spec.and_then(|s| match serde_json::to_value(s) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    });
    let tree = redact::sensitive_tree(attrs.as_ref(), paths);
    let value = match &attrs {
        None => Value::Null,
        Some(m) => Value::Object(redact::mask(m, paths, &Value::Null)),
    };
    (value, tree)
}

/// The sensitive paths of the change of `addr` (both sides), for drift.
fn paths_of(plan: &Plan, addr: &crate::addrs::InstanceAddr) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| &c.address == addr)
        .flat_map(|c| c.before_sensitive.iter().chain(&c.sensitive))
        .cloned()
        .collect()
}

/// The JSON plan format version.
pub const FORMAT_VERSION: &str = "1.0";

/// The plan as one JSON document.
pub fn plan_json(plan: &Plan) -> Value {
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            let mut v = change_json(c);
            if let Some(from) = plan.moved_from(&c.address) {
                // As Terraform writes a moved instance.
                v["previous_address"] = Value::from(from.to_string());
            }
            v
        })
        .collect();
    let drift: Vec<Value> = plan
        .drift
        .iter()
        .map(|d| {
            let (name, index) = name_and_index(&d.address);
            let paths = paths_of(plan, &d.address);
            let (before, before_sensitive) = masked(Some(&d.before), &paths);
            let (after, after_sensitive) = masked(d.after.as_ref(), &paths);
            let mut v = json!({
                "address": d.address.to_string(),
                "type": d.address.kind().as_str(),
                "name": name,
                "kind": match d.kind {
                    DriftKind::Deleted => "deleted",
                    DriftKind::Changed => "changed",
                },
                "before": before,
                "after": after,
                "before_sensitive": before_sensitive,
                "after_sensitive": after_sensitive,
            });
            if let Some(i) = index {
                v["index"] = i;
            }
            v
        })
        .collect();
    let s = plan.summary();
    json!({
        "format_version": FORMAT_VERSION,
        "tg_version": plan.tg_version,
        "session": plan.session,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "destroy": plan.destroy,
        "resource_changes": changes,
        "drift": drift,
        "warnings": plan.warnings,
        "summary": { "add": s.add, "change": s.change, "destroy": s.destroy },
        "has_changes": plan.has_changes(),
    })
}

fn change_json(c: &ResourceChange) -> Value {
    let (name, index) = name_and_index(&c.address);
    let actions: Vec<&str> = c.action.json_actions().to_vec();
    let mut before_paths = c.before_sensitive.clone();
    before_paths.extend(c.sensitive.iter().cloned());
    let (before, before_sensitive) = masked(c.before.as_ref(), &before_paths);
    let (after, after_sensitive) = masked(c.after.as_ref(), &c.sensitive);
    let mut change = json!({
        "actions": actions,
        "before": before,
        "after": after,
        "before_sensitive": before_sensitive,
        "after_sensitive": after_sensitive,
    });
    if c.action == Action::Replace {
        change["replace_reasons"] = c
            .replace_reasons
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .collect();
    }
    let mut v = json!({
        "address": c.address.to_string(),
        "type": c.address.kind().as_str(),
        "name": name,
        "platform": c.platform,
        "actions": actions,
        "change": change,
    });
    if let Some(i) = index {
        v["index"] = i;
    }
    v
}
