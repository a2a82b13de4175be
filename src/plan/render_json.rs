//! The machine-readable plan (`tg plan -json`, `tg show -json PLANFILE`).
//!
//! One JSON document, modelled on Terraform's `show -json` plan format and
//! described by `schemas/plan.schema.json`. Only builds values; printing is
//! the CLI's job.

use serde_json::{json, Value};

use super::{name_and_index, Action, DriftKind, Plan, ResourceChange};

/// The JSON plan format version.
pub const FORMAT_VERSION: &str = "1.0";

/// The plan as one JSON document.
pub fn plan_json(plan: &Plan) -> Value {
    let changes: Vec<Value> = plan.changes.iter().map(change_json).collect();
    let drift: Vec<Value> = plan
        .drift
        .iter()
        .map(|d| {
            let (name, index) = name_and_index(&d.address);
            let mut v = json!({
                "address": d.address.to_string(),
                "type": d.address.kind().as_str(),
                "name": name,
                "kind": match d.kind {
                    DriftKind::Deleted => "deleted",
                    DriftKind::Changed => "changed",
                },
                "before": d.before,
                "after": d.after,
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
    let mut change = json!({
        "actions": actions,
        "before": c.before,
        "after": c.after,
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
