//! Desired versus recorded: refresh, platform choice and the diff.
//!
//! [`refresh`] asks each platform what became of the recorded objects (read
//! only). [`diff`] then compares the testbed with the refreshed state and
//! decides one [`Action`] per instance, choosing a platform for every new
//! instance and collecting capability warnings. It does not write state and
//! does not create anything.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use crate::config::model::{DesiredInstance, Testbed};
use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics};
use crate::graph::InstanceGraph;
use crate::platform::registry::Registry;
use crate::platform::{ReadRequest, ReadResponse, SessionRef, Spec};
use crate::state::{InstanceRecord, InstanceStatus, OutputRecord, Snapshot};

use super::{spec_attributes, Action, Drift, DriftKind, Plan, ReplaceReason, ResourceChange};

/// What refresh found for one recorded instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Refreshed {
    Present(Spec),
    Gone,
}

/// Progress of a refresh, for the reporter.
pub trait RefreshHook: Send + Sync {
    fn refreshing(&self, _addr: &InstanceAddr) {}
    fn refreshed(&self, _addr: &InstanceAddr, _result: &Refreshed) {}
}

/// A refresh hook that reports nothing.
pub struct NoRefreshHook;
impl RefreshHook for NoRefreshHook {}

/// Read every recorded instance through its platform, `parallelism` at a
/// time. A platform that is not available, or a failing read, is an error
/// diagnostic (the plan cannot be trusted without it).
pub async fn refresh(
    snapshot: &Snapshot,
    registry: &Registry,
    session: &SessionRef,
    parallelism: usize,
    hook: &dyn RefreshHook,
) -> Result<BTreeMap<InstanceAddr, Refreshed>, Diagnostics> {
    let sem = Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let mut diags = Diagnostics::default();
    let mut out = BTreeMap::new();
    for rec in snapshot.instances.values() {
        let Some(platform) = registry.get(&rec.platform).cloned() else {
            diags.push(
                Diagnostic::error(format!(
                    "`{}` was made by platform `{}`, which is not available here",
                    rec.address, rec.platform
                ))
                .help("run tg where that platform is available, or forget the instance with `tg state rm`"),
            );
            continue;
        };
        hook.refreshing(&rec.address);
        let req = ReadRequest {
            session: session.clone(),
            address: rec.address.to_string(),
            spec: rec.spec.clone(),
            private: rec.private.clone(),
        };
        let addr = rec.address.clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (addr, platform.read(req).await)
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((addr, Ok(resp))) => {
                let r = match resp {
                    ReadResponse::Present { spec } => Refreshed::Present(spec),
                    ReadResponse::Gone => Refreshed::Gone,
                };
                hook.refreshed(&addr, &r);
                out.insert(addr, r);
            }
            Ok((addr, Err(e))) => {
                let mut d = Diagnostic::error(format!("refreshing `{addr}` failed: {}", e.message))
                    .help("fix the platform problem, or plan with `-refresh=false`");
                if let Some(detail) = e.detail {
                    d = d.detail(detail);
                }
                diags.push(d);
            }
            Err(e) => diags.push(Diagnostic::error(format!("a refresh task failed: {e}"))),
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(out)
    }
}

/// How to plan.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Plan to destroy everything recorded.
    pub destroy: bool,
    /// `-target`: limit to these (and what they need, or for destroy what needs them).
    pub targets: Vec<InstanceAddr>,
    /// `-replace`: force these to be replaced.
    pub replace: Vec<InstanceAddr>,
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
    registry: &Registry,
    opts: &DiffOptions,
) -> Result<Plan, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut warnings = Vec::new();
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
        let platforms = choose_platforms(testbed, snapshot, registry, &mut diags, &mut warnings);
        for d in testbed.instances.values() {
            let Some(platform) = platforms.get(&d.address) else {
                continue;
            };
            let change = desired_change(
                d,
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
    let selected: Option<BTreeSet<InstanceAddr>> = if opts.targets.is_empty() {
        None
    } else {
        for t in &opts.targets {
            if !graph.instances().any(|a| a.matches(t)) {
                diags.push(
                    Diagnostic::error(format!(
                        "`-target {t}` matches no instance of the testbed or the state"
                    ))
                    .help("use a resource address such as `node.edge` or an instance address such as `node.edge[0]`"),
                );
            }
        }
        Some(if opts.destroy {
            graph.with_dependents(&opts.targets)
        } else {
            graph.with_dependencies(&opts.targets)
        })
    };

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
        targeted: selected.is_some(),
        changes: ordered,
        drift,
        warnings,
        outputs,
    })
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
    }
    let mut change = ResourceChange {
        address: d.address.clone(),
        action: Action::Create,
        platform: platform.to_string(),
        before: None,
        after: Some(d.spec.clone()),
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
    let changed = changed_attributes(current, &d.spec);
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

/// Pick a platform for every desired instance: nodes by their `platform`,
/// what state recorded, or the first platform that accepts them; packages
/// follow their node; networks follow the first node on them.
fn choose_platforms(
    testbed: &Testbed,
    snapshot: &Snapshot,
    registry: &Registry,
    diags: &mut Diagnostics,
    warnings: &mut Vec<String>,
) -> HashMap<InstanceAddr, String> {
    let mut chosen: HashMap<InstanceAddr, String> = HashMap::new();
    let names: Vec<&str> = registry.names().collect();
    let unknown = |d: &DesiredInstance, name: &str, diags: &mut Diagnostics| {
        let mut diag = Diagnostic::error(format!(
            "`{}` asks for platform `{name}`, which is not available",
            d.address
        ))
        .at_opt(d.span.clone());
        diag = match did_you_mean(name, names.iter().copied()) {
            Some(s) => diag.help(format!("did you mean `{s}`?")),
            None => diag.help(format!(
                "available platforms: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )),
        };
        diags.push(diag);
    };

    // Nodes first.
    for d in testbed.instances.values() {
        let Spec::Node(spec) = &d.spec else { continue };
        if let Some(name) = &d.platform {
            let Some(p) = registry.get(name) else {
                unknown(d, name, diags);
                continue;
            };
            let cap = p.check_node(spec);
            if let Some(r) = cap.refused {
                diags.push(
                    Diagnostic::error(format!(
                        "platform `{name}` cannot host `{}`: {r}",
                        d.address
                    ))
                    .at_opt(d.span.clone())
                    .help("change the node's spec, or remove `platform` so tg picks one that fits"),
                );
                continue;
            }
            warnings.extend(cap.warnings.iter().map(|w| format!("{}: {w}", d.address)));
            chosen.insert(d.address.clone(), name.clone());
            continue;
        }
        // Stick with the recorded platform while it still accepts the node.
        if let Some(rec) = snapshot.instances.get(&d.address) {
            if let Some(p) = registry.get(&rec.platform) {
                let cap = p.check_node(spec);
                if cap.refused.is_none() {
                    warnings.extend(cap.warnings.iter().map(|w| format!("{}: {w}", d.address)));
                    chosen.insert(d.address.clone(), rec.platform.clone());
                    continue;
                }
            }
        }
        match registry.pick(spec) {
            Ok((name, w)) => {
                warnings.extend(w.iter().map(|w| format!("{}: {w}", d.address)));
                chosen.insert(d.address.clone(), name);
            }
            Err(refusals) => {
                diags.push(
                    Diagnostic::error(format!("no platform can host `{}`", d.address))
                        .at_opt(d.span.clone())
                        .detail(if refusals.is_empty() {
                            "no platform is available".to_string()
                        } else {
                            refusals.join("\n")
                        })
                        .help("change the node's spec so a platform accepts it"),
                );
            }
        }
    }

    // Networks: the first node on them decides.
    let mut net_platform: HashMap<InstanceAddr, String> = HashMap::new();
    for d in testbed.instances.values() {
        if d.address.kind() != ResourceKind::Node {
            continue;
        }
        let Some(p) = chosen.get(&d.address) else {
            continue;
        };
        for dep in &d.depends_on {
            if dep.kind() == ResourceKind::Network {
                net_platform.entry(dep.clone()).or_insert_with(|| p.clone());
            }
        }
    }
    let first = names.first().map(|s| s.to_string());
    for d in testbed.instances.values() {
        let pick = match d.address.kind() {
            ResourceKind::Node => continue,
            ResourceKind::Network => d
                .platform
                .clone()
                .or_else(|| net_platform.get(&d.address).cloned())
                .or_else(|| {
                    snapshot
                        .instances
                        .get(&d.address)
                        .map(|r| r.platform.clone())
                })
                .or_else(|| first.clone()),
            ResourceKind::Package => {
                let node = match &d.address.key {
                    InstanceKey::Node(n) => Some((**n).clone()),
                    _ => d
                        .depends_on
                        .iter()
                        .find(|a| a.kind() == ResourceKind::Node)
                        .cloned(),
                };
                d.platform
                    .clone()
                    .or_else(|| node.and_then(|n| chosen.get(&n).cloned()))
                    .or_else(|| first.clone())
            }
        };
        let Some(name) = pick else {
            diags.push(
                Diagnostic::error(format!("no platform is available for `{}`", d.address))
                    .at_opt(d.span.clone()),
            );
            continue;
        };
        let Some(p) = registry.get(&name) else {
            unknown(d, &name, diags);
            continue;
        };
        for problem in p.check_spec(&d.spec) {
            diags.push(
                Diagnostic::error(format!(
                    "platform `{name}` cannot make `{}`: {problem}",
                    d.address
                ))
                .at_opt(d.span.clone()),
            );
        }
        chosen.insert(d.address.clone(), name);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::DesiredInstance;
    use crate::platform::testdouble::TestDouble;
    use crate::platform::{Interface, NetworkSpec, NodeSpec};

    fn addr(s: &str) -> InstanceAddr {
        s.parse().unwrap()
    }

    fn net() -> Spec {
        Spec::Network(NetworkSpec {
            name: "lab".into(),
            cidr: "10.0.0.0/24".parse().unwrap(),
            gateway: "10.0.0.1".parse().unwrap(),
            nat: false,
        })
    }

    fn node(image: &str, role: &str) -> Spec {
        Spec::Node(NodeSpec {
            hostname: "edge-0".into(),
            image: image.into(),
            cpus: None,
            memory_mib: None,
            labels: [("role".to_string(), role.to_string())].into(),
            interfaces: vec![Interface {
                network: "lab".into(),
                address: "10.0.0.2".parse().unwrap(),
                prefix_len: 24,
                gateway: "10.0.0.1".parse().unwrap(),
            }],
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
    fn check(tb: &Testbed, snap: &Snapshot, opts: DiffOptions) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::new();
        reg.register(Arc::new(TestDouble::new(dir.path())));
        let plan = diff(
            &PlanHeader::default(),
            tb,
            snap,
            &BTreeMap::new(),
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
