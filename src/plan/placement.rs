//! Placement: which platform makes each instance, and on which pool host
//! each node goes.
//!
//! Nodes first: the platform a node names (a platform name, or a kind such
//! as `ssh` meaning any platform of that kind), else the one state recorded
//! while it still accepts the node, else the first platform in preference
//! order that accepts it. Then every platform places its nodes on its hosts
//! ([`Platform::place`](crate::platform::Platform::place); a pool proposes
//! hosts and leases nothing). A node refused by a pool for want of a free
//! host moves to the next platform of its kind, if any. Networks follow the
//! nodes on them (all of which must be able to share it), packages follow
//! their node.
//!
//! Read only, like the rest of planning. Not here: the diff (`diff`).

use std::collections::{BTreeMap, HashMap};

use crate::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use crate::config::model::{DesiredInstance, Testbed};
use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics};
use crate::platform::registry::Registry;
use crate::platform::{PlaceNode, PlaceRequest, Placement, SessionRef, Spec};
use crate::state::Snapshot;

/// Where every desired instance goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placements {
    /// Instance → the name of the platform that makes it.
    pub platform: HashMap<InstanceAddr, String>,
    /// Node → the pool host it is placed on (nodes of platforms without
    /// hosts are absent).
    pub host: HashMap<InstanceAddr, String>,
    /// Capability warnings, one line each, prefixed with the instance.
    pub warnings: Vec<String>,
}

impl Placements {
    pub fn platform_of(&self, addr: &InstanceAddr) -> Option<&str> {
        self.platform.get(addr).map(String::as_str)
    }

    pub fn host_of(&self, addr: &InstanceAddr) -> Option<&str> {
        self.host.get(addr).map(String::as_str)
    }

    /// `d`'s spec as placed: a node's spec carries its host.
    pub fn placed_spec(&self, d: &DesiredInstance) -> Spec {
        let mut spec = d.spec.clone();
        if let Spec::Node(n) = &mut spec {
            n.host = self.host_of(&d.address).map(str::to_string);
        }
        spec
    }
}

/// Place every instance of `testbed` (nothing for a destroy plan).
pub async fn place(
    testbed: &Testbed,
    snapshot: &Snapshot,
    registry: &Registry,
    session: &SessionRef,
) -> Result<Placements, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut out = Placements::default();
    let names: Vec<&str> = registry.names().collect();

    // 1. A platform for every node, as its spec allows. `tried` keeps, per
    // node, the candidates left if a pool turns it away for want of hosts.
    let mut left: HashMap<InstanceAddr, Vec<String>> = HashMap::new();
    for d in testbed.instances.values() {
        let Spec::Node(spec) = &d.spec else { continue };
        let wanted = d.platform.as_deref();
        let candidates = registry.candidates(wanted);
        if candidates.is_empty() {
            diags.push(unknown_platform(d, wanted.unwrap_or(""), &names));
            continue;
        }
        let mut accepted: Vec<String> = Vec::new();
        let mut refusals: Vec<String> = Vec::new();
        for p in &candidates {
            let cap = p.check_node(spec);
            match cap.refused {
                None => {
                    if accepted.is_empty() {
                        out.warnings
                            .extend(cap.warnings.iter().map(|w| format!("{}: {w}", d.address)));
                    }
                    accepted.push(p.name().to_string());
                }
                Some(r) => refusals.push(format!("{}: {r}", p.name())),
            }
        }
        if accepted.is_empty() {
            diags.push(refused(d, wanted, &refusals));
            continue;
        }
        // Stick with the recorded platform while it still accepts the node.
        if let Some(rec) = snapshot.instances.get(&d.address) {
            if let Some(pos) = accepted.iter().position(|n| *n == rec.platform) {
                let p = accepted.remove(pos);
                accepted.insert(0, p);
            }
        }
        let first = accepted.remove(0);
        out.platform.insert(d.address.clone(), first);
        left.insert(d.address.clone(), accepted);
    }

    // 2. Hosts: each platform places its nodes; a node a platform refuses
    // moves on to its next candidate until none is left.
    let mut refusals: BTreeMap<InstanceAddr, Vec<String>> = BTreeMap::new();
    let mut pending: Vec<InstanceAddr> = testbed
        .instances
        .keys()
        .filter(|a| out.platform.contains_key(*a))
        .cloned()
        .collect();
    while !pending.is_empty() {
        let mut by_platform: BTreeMap<String, Vec<InstanceAddr>> = BTreeMap::new();
        for a in pending.drain(..) {
            by_platform
                .entry(out.platform[&a].clone())
                .or_default()
                .push(a);
        }
        for (pname, addrs) in by_platform {
            let Some(p) = registry.get(&pname) else {
                continue;
            };
            let nodes: Vec<PlaceNode> = addrs
                .iter()
                .filter_map(|a| {
                    let Spec::Node(spec) = &testbed.instances[a].spec else {
                        return None;
                    };
                    let recorded_host = snapshot.instances.get(a).and_then(|r| {
                        match (&r.spec, r.platform == pname) {
                            (Spec::Node(n), true) => n.host.clone(),
                            _ => None,
                        }
                    });
                    Some(PlaceNode {
                        address: a.to_string(),
                        spec: spec.clone(),
                        recorded_host,
                    })
                })
                .collect();
            let answer = p
                .place(PlaceRequest {
                    session: session.clone(),
                    nodes,
                })
                .await;
            let answer = match answer {
                Ok(a) if a.len() == addrs.len() => a,
                Ok(_) => {
                    diags.push(Diagnostic::error(format!(
                        "platform `{pname}` answered the placement of {} nodes with another number of placements",
                        addrs.len()
                    )));
                    continue;
                }
                Err(e) => {
                    let mut d = Diagnostic::error(format!(
                        "platform `{pname}` could not place its nodes: {}",
                        e.message
                    ))
                    .help("fix the platform problem and plan again");
                    if let Some(detail) = e.detail {
                        d = d.detail(detail);
                    }
                    diags.push(d);
                    continue;
                }
            };
            for (a, placement) in addrs.into_iter().zip(answer) {
                match placement {
                    Placement::Placed { host } => {
                        if let Some(h) = host {
                            out.host.insert(a, h);
                        }
                    }
                    Placement::Refused { reasons } => {
                        refusals
                            .entry(a.clone())
                            .or_default()
                            .extend(reasons.into_iter().map(|r| format!("{pname}: {r}")));
                        let next = left
                            .get_mut(&a)
                            .filter(|l| !l.is_empty())
                            .map(|l| l.remove(0));
                        match next {
                            Some(n) => {
                                out.platform.insert(a.clone(), n);
                                pending.push(a);
                            }
                            None => {
                                out.platform.remove(&a);
                                let d = &testbed.instances[&a];
                                diags.push(
                                    Diagnostic::error(format!(
                                        "no host can take `{}`",
                                        d.address
                                    ))
                                    .at_opt(d.span.clone())
                                    .detail(refusals.remove(&a).unwrap_or_default().join("\n"))
                                    .help("free or add a host that fits (`tg pool list`), or change the node's spec"),
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    // 3. Networks follow their nodes, which must all be able to share them.
    let mut net_nodes: HashMap<&InstanceAddr, Vec<(&InstanceAddr, &str)>> = HashMap::new();
    for d in testbed.instances.values() {
        if d.address.kind() != ResourceKind::Node {
            continue;
        }
        let Some(p) = out.platform.get(&d.address) else {
            continue;
        };
        for dep in &d.depends_on {
            if dep.kind() == ResourceKind::Network {
                net_nodes.entry(dep).or_default().push((&d.address, p));
            }
        }
    }
    let first = names.first().map(|s| s.to_string());
    let mut rest: Vec<(InstanceAddr, String)> = Vec::new();
    for d in testbed.instances.values() {
        let pick = match d.address.kind() {
            ResourceKind::Node => continue,
            ResourceKind::Network => {
                let on = net_nodes.get(&d.address).map(Vec::as_slice).unwrap_or(&[]);
                if let Some(problem) = mixed_platforms(on, registry) {
                    diags.push(
                        Diagnostic::error(format!(
                            "network `{}` has nodes on platforms that cannot share it: {problem}",
                            d.address
                        ))
                        .at_opt(d.span.clone())
                        .help("put the nodes of one network on one platform (`platform = \"...\"` on the nodes), or give each platform its own network"),
                    );
                    continue;
                }
                d.platform
                    .clone()
                    .or_else(|| on.first().map(|(_, p)| p.to_string()))
                    .or_else(|| {
                        snapshot
                            .instances
                            .get(&d.address)
                            .map(|r| r.platform.clone())
                    })
                    .or_else(|| first.clone())
            }
            ResourceKind::Package => {
                let node = match &d.address.key {
                    InstanceKey::Node(n) => Some((**n).clone()),
                    _ => d
                        .depends_on
                        .iter()
                        .find(|a| a.kind() == ResourceKind::Node)
                        .cloned(),
                };
                match node {
                    // The node could not be placed: that error is enough.
                    Some(n) if !out.platform.contains_key(&n) => continue,
                    Some(n) => Some(out.platform[&n].clone()),
                    None => d.platform.clone().or_else(|| first.clone()),
                }
            }
        };
        let Some(name) = pick else {
            diags.push(
                Diagnostic::error(format!("no platform is available for `{}`", d.address))
                    .at_opt(d.span.clone()),
            );
            continue;
        };
        rest.push((d.address.clone(), name));
    }
    for (addr, name) in rest {
        let d = &testbed.instances[&addr];
        let Some(p) = registry.get(&name) else {
            diags.push(unknown_platform(d, &name, &names));
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
        out.platform.insert(addr, name);
    }
    if diags.has_errors() {
        diags.sort();
        Err(diags)
    } else {
        Ok(out)
    }
}

/// Why the nodes `on` one network cannot share it, if they cannot.
fn mixed_platforms(on: &[(&InstanceAddr, &str)], registry: &Registry) -> Option<String> {
    let (first_addr, first) = on.first()?;
    let p = registry.get(first)?;
    on.iter()
        .find(|(_, other)| !p.can_share_network_with(other))
        .map(|(addr, other)| format!("`{first_addr}` is on `{first}` and `{addr}` on `{other}`"))
}

fn unknown_platform(d: &DesiredInstance, name: &str, names: &[&str]) -> Diagnostic {
    let diag = Diagnostic::error(format!(
        "`{}` asks for platform `{name}`, which is not available",
        d.address
    ))
    .at_opt(d.span.clone());
    match did_you_mean(name, names.iter().copied()) {
        Some(s) => diag.help(format!("did you mean `{s}`?")),
        None => diag.help(format!(
            "available platforms: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )),
    }
}

fn refused(d: &DesiredInstance, wanted: Option<&str>, refusals: &[String]) -> Diagnostic {
    // One platform asked for by name: its reason fits on the line.
    if let (Some(w), [only]) = (wanted, refusals) {
        if let Some(reason) = only.strip_prefix(&format!("{w}: ")) {
            return Diagnostic::error(format!(
                "platform `{w}` cannot host `{}`: {reason}",
                d.address
            ))
            .at_opt(d.span.clone())
            .help("change the node's spec, or remove `platform` so tg picks one that fits");
        }
    }
    let summary = match wanted {
        Some(w) => format!("platform `{w}` cannot host `{}`", d.address),
        None => format!("no platform can host `{}`", d.address),
    };
    Diagnostic::error(summary)
        .at_opt(d.span.clone())
        .detail(if refusals.is_empty() {
            "no platform is available".to_string()
        } else {
            refusals.join("\n")
        })
        .help(match wanted {
            Some(_) => "fix what the platform says above, or remove `platform` so tg picks one that fits",
            None => "fix what the platforms say above, or change the node's spec so a platform accepts it",
        })
}
