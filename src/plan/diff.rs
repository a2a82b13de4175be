//! The diff: desired versus recorded, one [`Action`] per instance.
//!
//! [`diff`] compares the testbed with the refreshed state (see
//! [`super::refresh`]) and the placement (see [`super::placement`]) and
//! decides what apply does to every instance, in dependency order. It does
//! not write state, does not create anything and does not choose
//! platforms.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::addrs::{InstanceAddr, ResourceKind};
use crate::config::model::{DesiredInstance, Testbed};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::graph::InstanceGraph;
use crate::platform::registry::Registry;
use crate::platform::Spec;
use crate::state::{InstanceRecord, InstanceStatus, OutputRecord, Snapshot};

use super::placement::Placements;
use super::refresh::Refreshed;
use super::{spec_attributes, Action, Drift, DriftKind, Plan, ReplaceReason, ResourceChange};

/// How to plan.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Plan to destroy everything recorded.
    pub destroy: bool,
    /// `-target`: limit to these (and what they need, or for destroy what needs them).
    pub targets: Vec<InstanceAddr>,
    /// `-replace`: force these to be replaced.
    pub replace: Vec<InstanceAddr>,
    /// `-exclude`: leave these out, with what depends on them (or, for a
    /// destroy, what they depend on, which they still need).
    pub excludes: Vec<InstanceAddr>,
    /// `-refresh-only`: change nothing; the plan only carries the drift,
    /// which its apply accepts into state.
    pub refresh_only: bool,
}

/// Where the plan is made: identity fields copied into the [`Plan`].
#[derive(Debug, Clone, Default)]
pub struct PlanHeader {
    pub session: String,
    pub tg_version: String,
}

/// Compare the testbed with the (refreshed) state and decide every change.
/// `refreshed` misses instances that were not refreshed (`-refresh=false`):
/// those are taken as recorded.
pub fn diff(
    header: &PlanHeader,
    testbed: &Testbed,
    snapshot: &Snapshot,
    refreshed: &BTreeMap<InstanceAddr, Refreshed>,
    placements: &Placements,
    registry: &Registry,
    opts: &DiffOptions,
) -> Result<Plan, Diagnostics> {
    let mut diags = Diagnostics::default();
    let warnings = placements.warnings.clone();
    let mut changes: HashMap<InstanceAddr, ResourceChange> = HashMap::new();
    let mut drift = Vec::new();

    for rec in snapshot.instances.values() {
        match refreshed.get(&rec.address) {
            Some(Refreshed::Gone) => drift.push(Drift {
                address: rec.address.clone(),
                kind: DriftKind::Deleted,
                before: rec.spec.clone(),
                after: None,
            }),
            Some(Refreshed::Present(now)) if *now != rec.spec => drift.push(Drift {
                address: rec.address.clone(),
                kind: DriftKind::Changed,
                before: rec.spec.clone(),
                after: Some(now.clone()),
            }),
            _ => {}
        }
    }

    for r in &opts.replace {
        if !snapshot.instances.keys().any(|a| a.matches(r)) {
            diags.push(
                Diagnostic::error(format!("`-replace {r}`: no such instance is recorded"))
                    .help("`tg state list` shows the recorded instances"),
            );
        }
    }

    if opts.destroy {
        for rec in snapshot.instances.values() {
            changes.insert(rec.address.clone(), delete_change(rec));
        }
    } else {
        for d in testbed.instances.values() {
            let Some(platform) = placements.platform_of(&d.address) else {
                continue;
            };
            let change = desired_change(
                d,
                placements.placed_spec(d),
                platform,
                snapshot.instances.get(&d.address),
                refreshed.get(&d.address),
                registry,
                opts,
            );
            changes.insert(d.address.clone(), change);
        }
        for rec in snapshot.instances.values() {
            if !testbed.instances.contains_key(&rec.address) {
                changes.insert(rec.address.clone(), delete_change(rec));
            }
        }
    }

    // The graph of everything involved: desired dependencies, then what
    // state recorded for instances the config no longer has.
    let mut graph = InstanceGraph::new();
    let mut edges: Vec<(InstanceAddr, Vec<InstanceAddr>)> = Vec::new();
    if !opts.destroy {
        for d in testbed.instances.values() {
            edges.push((d.address.clone(), d.depends_on.clone()));
        }
    }
    for rec in snapshot.instances.values() {
        if opts.destroy || !testbed.instances.contains_key(&rec.address) {
            edges.push((rec.address.clone(), rec.dependencies.clone()));
        }
    }
    for (a, _) in &edges {
        graph.add(a.clone());
    }
    for (a, deps) in &edges {
        for d in deps {
            graph.add_edge(d, a);
        }
    }
    let order = match graph.topo_order() {
        Ok(o) => o,
        Err(e) => {
            let crate::graph::GraphError::Cycle { path } = &e;
            let span = path
                .first()
                .and_then(|a| testbed.instances.get(a))
                .and_then(|d| d.span.clone());
            diags.push(
                Diagnostic::error("the instances depend on each other in a cycle")
                    .at_opt(span)
                    .detail(e.to_string())
                    .help("remove one of the `depends_on` entries or references in the cycle"),
            );
            Vec::new()
        }
    };

    // -target: keep only what the targets need (or, destroying, what needs them).
    let selected = select(&graph, opts, &mut diags);

    // prevent_destroy.
    for (addr, c) in &changes {
        if !matches!(c.action, Action::Delete | Action::Replace) {
            continue;
        }
        if selected.as_ref().is_some_and(|s| !s.contains(addr)) {
            continue;
        }
        if let Some(d) = testbed.instances.get(addr) {
            if d.prevent_destroy {
                let verb = if c.action == Action::Delete {
                    "destroy"
                } else {
                    "replace"
                };
                diags.push(
                    Diagnostic::error(format!(
                        "`{addr}` has `lifecycle {{ prevent_destroy = true }}` and this plan would {verb} it"
                    ))
                    .at_opt(d.span.clone())
                    .help("remove `prevent_destroy` from its block first, or leave it out of the plan with `-target`"),
                );
            }
        }
    }

    if diags.has_errors() {
        diags.sort();
        return Err(diags);
    }

    let mut ordered = Vec::with_capacity(changes.len());
    for addr in order {
        if selected.as_ref().is_some_and(|s| !s.contains(&addr)) {
            continue;
        }
        if let Some(c) = changes.remove(&addr) {
            ordered.push(c);
        }
    }
    if let Some(sel) = &selected {
        drift.retain(|d| sel.contains(&d.address));
    }
    if opts.refresh_only {
        // Nothing is changed: every instance stays as it is, the drift is
        // what the apply records.
        for c in &mut ordered {
            c.action = Action::NoOp;
            c.replace_reasons.clear();
        }
        ordered.retain(|c| snapshot.instances.contains_key(&c.address));
    }

    let outputs: BTreeMap<String, OutputRecord> = if opts.destroy {
        BTreeMap::new()
    } else {
        testbed
            .outputs
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    OutputRecord {
                        value: v.value.clone(),
                        sensitive: v.sensitive,
                    },
                )
            })
            .collect()
    };

    Ok(Plan {
        session: header.session.clone(),
        lineage: snapshot.lineage.clone(),
        serial: snapshot.serial,
        testbed_hash: testbed.hash.clone(),
        tg_version: header.tg_version.clone(),
        destroy: opts.destroy,
        refresh_only: opts.refresh_only,
        targeted: selected.is_some(),
        changes: ordered,
        drift,
        warnings,
        outputs,
        moves: Vec::new(),
    })
}

/// What `-target` and `-exclude` keep (`None`: everything). An excluded
/// instance goes with what needs it (destroying: with what it needs, which
/// it still uses); a target brings what it needs (destroying: what needs
/// it), unless that was excluded.
fn select(
    graph: &InstanceGraph,
    opts: &DiffOptions,
    diags: &mut Diagnostics,
) -> Option<BTreeSet<InstanceAddr>> {
    if opts.targets.is_empty() && opts.excludes.is_empty() {
        return None;
    }
    for (flag, list) in [("-target", &opts.targets), ("-exclude", &opts.excludes)] {
        for t in list {
            if !graph.instances().any(|a| a.matches(t)) {
                diags.push(
                    Diagnostic::error(format!(
                        "`{flag} {t}` matches no instance of the testbed or the state"
                    ))
                    .help("use a resource address such as `node.edge` or an instance address such as `node.edge[0]`"),
                );
            }
        }
    }
    let out: BTreeSet<InstanceAddr> = if opts.excludes.is_empty() {
        BTreeSet::new()
    } else if opts.destroy {
        graph.with_dependencies(&opts.excludes)
    } else {
        graph.with_dependents(&opts.excludes)
    };
    let kept: BTreeSet<InstanceAddr> = if opts.targets.is_empty() {
        graph.instances().cloned().collect()
    } else {
        let targets: Vec<InstanceAddr> = graph
            .instances()
            .filter(|a| opts.targets.iter().any(|t| a.matches(t)) && !out.contains(*a))
            .cloned()
            .collect();
        if opts.destroy {
            graph.with_dependents(&targets)
        } else {
            graph.with_dependencies(&targets)
        }
    };
    Some(kept.difference(&out).cloned().collect())
}

fn delete_change(rec: &InstanceRecord) -> ResourceChange {
    ResourceChange {
        address: rec.address.clone(),
        action: Action::Delete,
        platform: rec.platform.clone(),
        before: Some(rec.spec.clone()),
        after: None,
        replace_reasons: Vec::new(),
        depends_on: rec.dependencies.clone(),
        attributes: rec.attributes.clone(),
        sensitive: Vec::new(),
        before_sensitive: rec.sensitive.clone(),
    }
}

fn desired_change(
    d: &DesiredInstance,
    spec: Spec,
    platform: &str,
    recorded: Option<&InstanceRecord>,
    refreshed: Option<&Refreshed>,
    registry: &Registry,
    opts: &DiffOptions,
) -> ResourceChange {
    let mut attributes = d.attributes.clone();
    if let serde_json::Value::Object(m) = &mut attributes {
        if d.address.kind() == ResourceKind::Node
            && !matches!(m.get("platform"), Some(v) if !v.is_null())
        {
            m.insert("platform".into(), platform.into());
        }
        if let Spec::Node(n) = &spec {
            if let Some(h) = &n.host {
                m.insert("host".into(), h.clone().into());
            }
        }
    }
    let mut change = ResourceChange {
        address: d.address.clone(),
        action: Action::Create,
        platform: platform.to_string(),
        before: None,
        after: Some(spec),
        replace_reasons: Vec::new(),
        depends_on: d.depends_on.clone(),
        attributes,
        sensitive: d.sensitive.clone(),
        before_sensitive: Vec::new(),
    };
    let Some(rec) = recorded else {
        return change;
    };
    change.before_sensitive = rec.sensitive.clone();
    let current = match refreshed {
        Some(Refreshed::Gone) => return change,
        Some(Refreshed::Present(s)) => s,
        None => &rec.spec,
    };
    change.before = Some(current.clone());
    if rec.status == InstanceStatus::Tainted {
        change.replace_reasons.push(ReplaceReason::Tainted);
    }
    if opts.replace.iter().any(|r| d.address.matches(r)) {
        change.replace_reasons.push(ReplaceReason::Requested);
    }
    if rec.platform != platform {
        change.replace_reasons.push(ReplaceReason::Platform {
            from: rec.platform.clone(),
            to: platform.to_string(),
        });
    }
    let desired = change.after.as_ref().unwrap_or(&d.spec);
    let changed = changed_attributes(current, desired);
    let updatable = registry
        .get(platform)
        .map(|p| p.updatable(d.address.kind()))
        .unwrap_or(&[]);
    for attr in &changed {
        if !updatable.contains(&attr.as_str()) {
            change.replace_reasons.push(ReplaceReason::Attribute {
                attribute: attr.clone(),
            });
        }
    }
    change.action = if !change.replace_reasons.is_empty() {
        Action::Replace
    } else if !changed.is_empty() {
        Action::Update
    } else {
        Action::NoOp
    };
    change
}

/// The top-level attributes that differ between two specs, in the order of
/// the `after` spec's fields (then any only `before` has).
pub fn changed_attributes(before: &Spec, after: &Spec) -> Vec<String> {
    if before == after {
        return Vec::new();
    }
    let b = spec_attributes(before);
    let a = spec_attributes(after);
    if std::mem::discriminant(before) != std::mem::discriminant(after) {
        return a.keys().cloned().collect();
    }
    let mut out: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    out.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::DesiredInstance;
    use crate::platform::testdouble::TestDouble;
    use crate::platform::{Interface, NetworkSpec, NodeSpec};
    use std::sync::Arc;

    fn addr(s: &str) -> InstanceAddr {
        s.parse().unwrap()
    }

    fn net() -> Spec {
        Spec::Network(NetworkSpec {
            name: "lab".into(),
            cidr: "10.0.0.0/24".parse().unwrap(),
            gateway: "10.0.0.1".parse().unwrap(),
            nat: false,
            hosts: Vec::new(),
        })
    }

    fn node(image: &str, role: &str) -> Spec {
        Spec::Node(NodeSpec {
            settings: Default::default(),
            hostname: "edge-0".into(),
            image: image.into(),
            cpus: None,
            memory_mib: None,
            labels: [("role".to_string(), role.to_string())].into(),
            interfaces: vec![Interface {
                impair: Default::default(),
                network: "lab".into(),
                address: "10.0.0.2".parse().unwrap(),
                prefix_len: 24,
                gateway: "10.0.0.1".parse().unwrap(),
            }],
            host: None,
        })
    }

    fn desired(a: &str, spec: Spec, deps: &[&str]) -> DesiredInstance {
        DesiredInstance {
            address: addr(a),
            platform: None,
            spec,
            depends_on: deps.iter().map(|d| addr(d)).collect(),
            attributes: serde_json::json!({}),
            prevent_destroy: false,
            span: None,
            sensitive: vec![],
        }
    }

    fn testbed(items: Vec<DesiredInstance>) -> Testbed {
        Testbed {
            instances: items.into_iter().map(|d| (d.address.clone(), d)).collect(),
            ..Testbed::default()
        }
    }

    fn recorded(a: &str, spec: Spec, status: InstanceStatus) -> InstanceRecord {
        InstanceRecord {
            address: addr(a),
            platform: "double".into(),
            status,
            spec,
            private: serde_json::Value::Null,
            dependencies: vec![],
            attributes: serde_json::Value::Null,
            sensitive: vec![],
        }
    }

    fn snapshot(recs: Vec<InstanceRecord>) -> Snapshot {
        Snapshot {
            lineage: "L".into(),
            serial: 4,
            instances: recs.into_iter().map(|r| (r.address.clone(), r)).collect(),
            outputs: Default::default(),
        }
    }

    /// Plan `tb` against `snap` and return `address action` lines.
    /// Every instance of `tb` on the test double.
    fn on_double(tb: &Testbed) -> Placements {
        Placements {
            platform: tb
                .instances
                .keys()
                .map(|a| (a.clone(), "double".to_string()))
                .collect(),
            ..Placements::default()
        }
    }

    fn check(tb: &Testbed, snap: &Snapshot, opts: DiffOptions) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::new();
        reg.register(Arc::new(TestDouble::new(dir.path())));
        let plan = diff(
            &PlanHeader::default(),
            tb,
            snap,
            &BTreeMap::new(),
            &on_double(tb),
            &reg,
            &opts,
        )
        .unwrap();
        plan.changes
            .iter()
            .map(|c| {
                let reasons: Vec<String> =
                    c.replace_reasons.iter().map(|r| r.to_string()).collect();
                format!("{} {:?} {}", c.address, c.action, reasons.join("; "))
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn actions_per_instance() {
        let tb = testbed(vec![
            desired("network.lab", net(), &[]),
            desired("node.edge[0]", node("host", "edge"), &["network.lab"]),
        ]);
        // Nothing recorded: everything is created, dependencies first.
        assert_eq!(
            check(&tb, &snapshot(vec![]), DiffOptions::default()),
            ["network.lab Create", "node.edge[0] Create"]
        );
        // Labels are updatable; the image is not.
        let snap = snapshot(vec![
            recorded("network.lab", net(), InstanceStatus::Ready),
            recorded("node.edge[0]", node("host", "old"), InstanceStatus::Ready),
        ]);
        assert_eq!(
            check(&tb, &snap, DiffOptions::default()),
            ["network.lab NoOp", "node.edge[0] Update"]
        );
        let snap = snapshot(vec![
            recorded("network.lab", net(), InstanceStatus::Ready),
            recorded(
                "node.edge[0]",
                node("debian:bookworm", "edge"),
                InstanceStatus::Ready,
            ),
        ]);
        assert_eq!(
            check(&tb, &snap, DiffOptions::default()),
            [
                "network.lab NoOp",
                "node.edge[0] Replace `image` cannot be changed in place"
            ]
        );
        // Tainted and requested replacements.
        let snap = snapshot(vec![
            recorded("network.lab", net(), InstanceStatus::Tainted),
            recorded("node.edge[0]", node("host", "edge"), InstanceStatus::Ready),
        ]);
        let opts = DiffOptions {
            replace: vec![addr("node.edge")],
            ..DiffOptions::default()
        };
        assert_eq!(
            check(&tb, &snap, opts),
            [
                "network.lab Replace it is tainted (a create or update did not finish)",
                "node.edge[0] Replace it was asked for with `-replace`"
            ]
        );
        // Orphans are deleted; destroy deletes everything.
        let snap = snapshot(vec![
            recorded("network.lab", net(), InstanceStatus::Ready),
            recorded("node.edge[0]", node("host", "edge"), InstanceStatus::Ready),
            recorded("node.old", node("host", "x"), InstanceStatus::Ready),
        ]);
        assert_eq!(
            check(&tb, &snap, DiffOptions::default()),
            ["network.lab NoOp", "node.edge[0] NoOp", "node.old Delete"]
        );
        let destroy = DiffOptions {
            destroy: true,
            ..DiffOptions::default()
        };
        assert_eq!(
            check(&tb, &snap, destroy),
            [
                "network.lab Delete",
                "node.edge[0] Delete",
                "node.old Delete"
            ]
        );
    }

    #[test]
    fn prevent_destroy_and_bad_targets_are_errors() {
        let mut tb = testbed(vec![desired("network.lab", net(), &[])]);
        tb.instances[0].prevent_destroy = true;
        let snap = snapshot(vec![recorded("network.lab", net(), InstanceStatus::Ready)]);
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::new();
        reg.register(Arc::new(TestDouble::new(dir.path())));
        let opts = DiffOptions {
            destroy: true,
            ..DiffOptions::default()
        };
        let e = diff(
            &PlanHeader::default(),
            &tb,
            &snap,
            &BTreeMap::new(),
            &on_double(&tb),
            &reg,
            &opts,
        )
        .unwrap_err();
        assert!(e.0[0]
            .summary
            .contains("`network.lab` has `lifecycle { prevent_destroy = true }`"));
        let opts = DiffOptions {
            targets: vec![addr("node.nope")],
            ..DiffOptions::default()
        };
        let e = diff(
            &PlanHeader::default(),
            &tb,
            &snap,
            &BTreeMap::new(),
            &on_double(&tb),
            &reg,
            &opts,
        )
        .unwrap_err();
        assert!(e.0[0]
            .summary
            .contains("`-target node.nope` matches no instance"));
    }

    #[test]
    fn changed_attributes_lists_top_level_keys() {
        assert_eq!(
            changed_attributes(&node("host", "a"), &node("host", "a")),
            Vec::<String>::new()
        );
        assert_eq!(
            changed_attributes(&node("host", "a"), &node("x", "b")),
            ["image", "labels"]
        );
    }
}
