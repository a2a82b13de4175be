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
    /// Network → the pool hosts of its nodes, sorted (absent when none of
    /// its nodes is on a host).
    pub segment_hosts: HashMap<InstanceAddr, Vec<String>>,
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

    /// `d`'s spec as placed: a node's spec carries its host, a network's
    /// the hosts of its nodes.
    pub fn placed_spec(&self, d: &DesiredInstance) -> Spec {
        let mut spec = d.spec.clone();
        match &mut spec {
            Spec::Node(n) => n.host = self.host_of(&d.address).map(str::to_string),
            Spec::Network(n) => {
                n.hosts = self
                    .segment_hosts
                    .get(&d.address)
                    .cloned()
                    .unwrap_or_default()
            }
            Spec::Package(_) => {}
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
        if spec.settings.privileged {
            out.warnings.push(format!(
                "{}: privileged = true: the node keeps every capability and no seccomp filter \
                 applies, so what runs in it can reach the host",
                d.address
            ));
        }
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
    for (net, on) in &net_nodes {
        let mut hosts: Vec<String> = on
            .iter()
            .filter_map(|(n, _)| out.host.get(*n).cloned())
            .collect();
        hosts.sort();
        hosts.dedup();
        if !hosts.is_empty() {
            out.segment_hosts.insert((*net).clone(), hosts);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::platform::{
        Capability, CreateRequest, CreateResponse, DeleteRequest, ExecRequest, ExecStatus,
        Interface, NetworkSpec, NodeSpec, Platform, PlatformResult, ReadRequest, ReadResponse,
        UpdateRequest,
    };
    use crate::state::{InstanceRecord, InstanceStatus};

    /// A platform of `kind` with `hosts` (none: no hosts to choose).
    struct Fake {
        name: &'static str,
        kind: &'static str,
        hosts: Option<Vec<&'static str>>,
    }

    #[async_trait]
    impl Platform for Fake {
        fn name(&self) -> &str {
            self.name
        }
        fn kind(&self) -> &str {
            self.kind
        }
        fn check_node(&self, _: &NodeSpec) -> Capability {
            Capability::default()
        }
        fn can_share_network_with(&self, other: &str) -> bool {
            // Pools share segments with each other (VXLAN), not with `local`.
            other == self.name || (self.kind == "ssh" && other.starts_with("pool-"))
        }
        async fn place(&self, req: PlaceRequest) -> PlatformResult<Vec<Placement>> {
            let Some(hosts) = &self.hosts else {
                return Ok(req
                    .nodes
                    .iter()
                    .map(|_| Placement::Placed { host: None })
                    .collect());
            };
            let mut free: Vec<&str> = hosts.clone();
            let mut out = Vec::new();
            // Recorded hosts first, then the rest in order.
            for n in &req.nodes {
                if let Some(h) = &n.recorded_host {
                    free.retain(|f| f != h);
                }
            }
            for n in &req.nodes {
                out.push(match &n.recorded_host {
                    Some(h) => Placement::Placed {
                        host: Some(h.clone()),
                    },
                    None if !free.is_empty() => Placement::Placed {
                        host: Some(free.remove(0).to_string()),
                    },
                    None => Placement::Refused {
                        reasons: hosts.iter().map(|h| format!("{h}: leased")).collect(),
                    },
                });
            }
            Ok(out)
        }
        async fn create(&self, _: CreateRequest) -> PlatformResult<CreateResponse> {
            unreachable!()
        }
        async fn read(&self, _: ReadRequest) -> PlatformResult<ReadResponse> {
            unreachable!()
        }
        async fn update(&self, _: UpdateRequest) -> PlatformResult<CreateResponse> {
            unreachable!()
        }
        async fn delete(&self, _: DeleteRequest) -> PlatformResult<()> {
            unreachable!()
        }
        async fn exec(&self, _: ExecRequest) -> PlatformResult<ExecStatus> {
            unreachable!()
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.register(Arc::new(Fake {
            name: "local",
            kind: "local",
            hosts: None,
        }));
        r.register(Arc::new(Fake {
            name: "pool-a",
            kind: "ssh",
            hosts: Some(vec!["a1"]),
        }));
        r.register(Arc::new(Fake {
            name: "pool-b",
            kind: "ssh",
            hosts: Some(vec!["b1", "b2"]),
        }));
        r
    }

    fn node(name: &str, platform: Option<&str>) -> DesiredInstance {
        DesiredInstance {
            address: format!("node.{name}").parse().unwrap(),
            platform: platform.map(str::to_string),
            spec: Spec::Node(NodeSpec {
                settings: Default::default(),
                hostname: name.into(),
                image: "host".into(),
                cpus: None,
                memory_mib: None,
                labels: Default::default(),
                interfaces: vec![Interface {
                    impair: Default::default(),
                    network: "lab".into(),
                    address: "10.0.0.2".parse().unwrap(),
                    prefix_len: 24,
                    gateway: "10.0.0.1".parse().unwrap(),
                }],
                host: None,
            }),
            depends_on: vec!["network.lab".parse().unwrap()],
            attributes: serde_json::json!({}),
            prevent_destroy: false,
            span: None,
            sensitive: vec![],
        }
    }

    fn network() -> DesiredInstance {
        DesiredInstance {
            address: "network.lab".parse().unwrap(),
            platform: None,
            spec: Spec::Network(NetworkSpec {
                name: "lab".into(),
                cidr: "10.0.0.0/24".parse().unwrap(),
                gateway: "10.0.0.1".parse().unwrap(),
                nat: false,
                hosts: Vec::new(),
            }),
            depends_on: vec![],
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

    fn session() -> SessionRef {
        SessionRef {
            name: "s".into(),
            lineage: "L".into(),
            testbed_dir: "/".into(),
            ssh_client_key: None,
        }
    }

    fn run(tb: &Testbed, snap: &Snapshot) -> Result<Placements, Vec<String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(place(tb, snap, &registry(), &session()))
            .map_err(|d| {
                d.0.iter()
                    .map(|d| format!("{} | {}", d.summary, d.detail.clone().unwrap_or_default()))
                    .collect()
            })
    }

    #[test]
    fn a_kind_means_any_pool_of_it_and_a_full_pool_passes_nodes_on() {
        let tb = testbed(vec![
            network(),
            node("a", Some("ssh")),
            node("b", Some("ssh")),
            node("c", Some("ssh")),
        ]);
        let p = run(&tb, &Snapshot::default()).unwrap();
        let at = |n: &str| {
            let a: InstanceAddr = format!("node.{n}").parse().unwrap();
            (
                p.platform_of(&a).unwrap().to_string(),
                p.host_of(&a).unwrap().to_string(),
            )
        };
        assert_eq!(at("a"), ("pool-a".into(), "a1".into()));
        assert_eq!(at("b"), ("pool-b".into(), "b1".into()));
        assert_eq!(at("c"), ("pool-b".into(), "b2".into()));
        // The network follows its nodes.
        assert_eq!(
            p.platform_of(&"network.lab".parse().unwrap()),
            Some("pool-a")
        );
    }

    #[test]
    fn no_free_host_names_the_node_and_every_host() {
        let tb = testbed(vec![
            network(),
            node("a", Some("pool-a")),
            node("b", Some("pool-a")),
        ]);
        let e = run(&tb, &Snapshot::default()).unwrap_err();
        assert_eq!(e, ["no host can take `node.b` | pool-a: a1: leased"]);
    }

    #[test]
    fn a_recorded_host_is_kept() {
        let tb = testbed(vec![
            network(),
            node("a", Some("pool-b")),
            node("b", Some("pool-b")),
        ]);
        let Spec::Node(mut spec) = node("b", None).spec else {
            unreachable!()
        };
        spec.host = Some("b1".into());
        let mut snap = Snapshot::default();
        snap.instances.insert(
            "node.b".parse().unwrap(),
            InstanceRecord {
                address: "node.b".parse().unwrap(),
                platform: "pool-b".into(),
                status: InstanceStatus::Ready,
                spec: Spec::Node(spec),
                private: serde_json::Value::Null,
                dependencies: vec![],
                attributes: serde_json::Value::Null,
                sensitive: vec![],
            },
        );
        let p = run(&tb, &snap).unwrap();
        assert_eq!(p.host_of(&"node.b".parse().unwrap()), Some("b1"));
        assert_eq!(p.host_of(&"node.a".parse().unwrap()), Some("b2"));
        let d = &tb.instances[&"node.b".parse::<InstanceAddr>().unwrap()];
        let Spec::Node(placed) = p.placed_spec(d) else {
            unreachable!()
        };
        assert_eq!(placed.host.as_deref(), Some("b1"));
    }

    #[test]
    fn one_network_cannot_span_platforms_that_cannot_share_it() {
        let tb = testbed(vec![
            network(),
            node("a", Some("local")),
            node("b", Some("pool-b")),
        ]);
        let e = run(&tb, &Snapshot::default()).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("network `network.lab` has nodes on platforms that cannot share it: `node.a` is on `local` and `node.b` on `pool-b`"),
            "{e:?}"
        );
    }

    #[test]
    fn a_network_on_a_pool_carries_the_hosts_of_its_nodes() {
        let tb = testbed(vec![
            network(),
            node("a", Some("pool-b")),
            node("b", Some("pool-b")),
        ]);
        let p = run(&tb, &Snapshot::default()).unwrap();
        let d = &tb.instances[&"network.lab".parse::<InstanceAddr>().unwrap()];
        let Spec::Network(placed) = p.placed_spec(d) else {
            unreachable!()
        };
        assert_eq!(placed.hosts, vec!["b1".to_string(), "b2".to_string()]);
        // A network on a platform without hosts carries none.
        let tb = testbed(vec![network(), node("a", Some("local"))]);
        let p = run(&tb, &Snapshot::default()).unwrap();
        let d = &tb.instances[&"network.lab".parse::<InstanceAddr>().unwrap()];
        let Spec::Network(placed) = p.placed_spec(d) else {
            unreachable!()
        };
        assert!(placed.hosts.is_empty());
    }
}
