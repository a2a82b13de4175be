//! The links of a session's networks, in its router namespace: bridges
//! with the gateway address, the policy rules that isolate networks, and
//! the veth pairs that plug nodes in (with the node side's address and
//! default route).
//!
//! A Linux bridge takes at most 1,023 ports ("Exchange full" past that).
//! A network holds more nodes by chaining bridges: when bridge 0 (the one
//! with the gateway and the rules) is full, extra bridge 1, 2, ... is made
//! and linked to bridge 0 by a veth pair, all in the router namespace. So
//! one network holds about a million nodes (bridge 0 keeps a port per
//! extra bridge). Frames from nodes on extra bridges reach the router
//! through bridge 0, so its rules hold for them too.
//!
//! Not here: the router namespace itself (`router`), NAT (`nat`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::codec::{Rule, RuleDoes, RT_TABLE_LOCAL, RT_TABLE_MAIN};
use super::router::{ensure_router, is_ns_file, router_netns_path};
use super::socket::Netlink;
use super::{io_err, prefix, NetError, NetResult};
use crate::platform::netns::locks::{SessionHeld, SessionLock};
use crate::platform::netns::names;
use crate::platform::{NetworkSpec, SessionRef};

/// Ports of one Linux bridge (`BR_MAX_PORTS` - 1).
pub const BRIDGE_PORTS: u32 = 1023;

/// Where a network's nodes were last plugged in: the bridge that took the
/// last veth, per session and network. Only a hint (the kernel says when a
/// bridge is full): a new process starts at bridge 0.
#[derive(Debug, Default)]
pub struct BridgeHints {
    hints: Mutex<HashMap<(String, String), u32>>,
}

impl BridgeHints {
    fn get(&self, sid: &str, network: &str) -> u32 {
        let map = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(sid.to_string(), network.to_string()))
            .copied()
            .unwrap_or(0)
    }

    fn set(&self, sid: &str, network: &str, k: u32) {
        let mut map = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        map.insert((sid.to_string(), network.to_string()), k);
    }

    fn forget(&self, sid: &str, network: &str) {
        let mut map = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(sid.to_string(), network.to_string()));
    }
}

/// What a network's `private` value records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkPrivate {
    pub bridge: String,
    pub router: PathBuf,
    /// With `nat = true`: the host-side address of the session's uplink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_via: Option<Ipv4Addr>,
}

/// Make network `spec`'s bridge (with the gateway address) in the
/// session's router namespace, making the router first if needed.
pub fn create_network(
    held: &SessionHeld,
    run_dir: &Path,
    session: &SessionRef,
    spec: &NetworkSpec,
) -> NetResult<NetworkPrivate> {
    let sid = names::sid(&session.lineage);
    let bridge = names::bridge_name(&sid, &spec.name);
    let router = ensure_router(held, run_dir, session, &sid)?;
    let mut nl = Netlink::open_in(&router)?;
    let index = ensure_bridge(&mut nl, &bridge, &spec.name)?;
    nl.add_address(index, spec.gateway, spec.cidr.prefix_len())
        .map_err(|e| {
            prefix(
                format!("cannot give `{}` to bridge `{bridge}`", spec.gateway),
                e,
            )
        })?;
    add_network_rules(&mut nl, &bridge, spec.gateway)?;
    Ok(NetworkPrivate {
        bridge,
        router,
        nat_via: None,
    })
}

/// Make bridge `bridge` (up) unless it exists; its index.
fn ensure_bridge(nl: &mut Netlink, bridge: &str, network: &str) -> NetResult<u32> {
    let op = format!("cannot make bridge `{bridge}` for network `{network}`");
    match nl.create_bridge(bridge) {
        Ok(()) => {}
        Err(e) if e.errno() == Some(libc::EEXIST) => nl.set_up_by_name(bridge)?,
        Err(e) => return Err(prefix(op, e)),
    }
    nl.link_index(bridge)?
        .ok_or_else(|| NetError::Missing(format!("{op}: it vanished right after creation")))
}

const NET_RULE_PREF: u32 = 100;

/// The policy rules that keep a network from reaching the router's
/// addresses on other networks: what arrives on `bridge` may be delivered
/// locally only when it is for the network's own gateway; anything else
/// goes through `main` (forwarded, which the router refuses unless NAT
/// allows it) or is refused. Traffic the router itself sends is not
/// affected.
fn network_rules(bridge: &str, gateway: Option<Ipv4Addr>) -> [Rule<'_>; 3] {
    [
        Rule {
            priority: NET_RULE_PREF,
            iif: Some(bridge),
            dst: gateway,
            does: RuleDoes::Lookup(RT_TABLE_LOCAL),
        },
        Rule {
            priority: NET_RULE_PREF + 1,
            iif: Some(bridge),
            dst: None,
            does: RuleDoes::Lookup(RT_TABLE_MAIN),
        },
        Rule {
            priority: NET_RULE_PREF + 2,
            iif: Some(bridge),
            dst: None,
            does: RuleDoes::Prohibit,
        },
    ]
}

fn add_network_rules(nl: &mut Netlink, bridge: &str, gateway: Ipv4Addr) -> NetResult<()> {
    for r in network_rules(bridge, Some(gateway)) {
        nl.rule(true, &r)
            .map_err(|e| prefix(format!("cannot isolate bridge `{bridge}`"), e))?;
    }
    Ok(())
}

fn delete_network_rules(nl: &mut Netlink, bridge: &str) -> NetResult<()> {
    for r in network_rules(bridge, None) {
        nl.rule(false, &r)?;
    }
    Ok(())
}

/// Does network `name`'s bridge exist, and with which IPv4 addresses?
pub fn network_addresses(
    run_dir: &Path,
    sid: &str,
    name: &str,
) -> NetResult<Option<Vec<(Ipv4Addr, u8)>>> {
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return Ok(None);
    }
    let mut nl = Netlink::open_in(&router)?;
    let bridge = names::bridge_name(sid, name);
    let Some(index) = nl.link_index(&bridge)? else {
        return Ok(None);
    };
    Ok(Some(nl.addresses(Some(index))?))
}

/// The most extra bridges a network of `cidr` can need.
fn max_extra_bridges(cidr: &Ipv4Net) -> u32 {
    let hosts = 1u64 << (32 - u32::from(cidr.prefix_len()));
    (hosts / u64::from(BRIDGE_PORTS - 1) + 1).min(u64::from(BRIDGE_PORTS)) as u32
}

/// The names of the links network `name` of `cidr` may have besides its
/// first bridge: extra bridges and the veths that link them.
fn extra_link_names(sid: &str, name: &str, cidr: &Ipv4Net) -> HashSet<String> {
    let mut set = HashSet::new();
    for k in 1..=max_extra_bridges(cidr) {
        set.insert(names::extra_bridge_name(sid, name, k));
        let (a, b) = names::bridge_link_names(sid, name, k);
        set.insert(a);
        set.insert(b);
    }
    set
}

/// Delete network `spec`'s bridges; remove the router namespace when it was
/// the session's last network. Deleting a missing network succeeds.
pub fn delete_network(
    _held: &SessionHeld,
    host: &super::host::Host,
    hints: &BridgeHints,
    run_dir: &Path,
    sid: &str,
    spec: &NetworkSpec,
) -> NetResult<()> {
    hints.forget(sid, &spec.name);
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return Ok(());
    }
    let mut nl = Netlink::open_in(&router)?;
    let bridge = names::bridge_name(sid, &spec.name);
    let extras = extra_link_names(sid, &spec.name, &spec.cidr);
    let mut doomed = vec![bridge];
    let mut bridges_left = false;
    for l in nl.link_names()? {
        if extras.contains(&l) {
            doomed.push(l);
        } else if l.starts_with("tgb") && l != doomed[0] {
            bridges_left = true;
        }
    }
    if !bridges_left {
        // The session's last network: its links and rules go with the
        // router namespace, in the kernel's own time (deleting a bridge
        // here waits ~30 ms for RCU grace periods).
        drop(nl);
        super::router::remove_router(host, run_dir, sid)?;
        return Ok(());
    }
    delete_network_rules(&mut nl, &doomed[0])?;
    nl.delete_links(&doomed)?;
    Ok(())
}

/// Where a node's interface goes: the network, the node's namespace, the
/// names of both ends and the node side's address.
#[derive(Debug, Clone)]
pub struct Plug<'a> {
    pub network: &'a str,
    pub node_netns: &'a Path,
    /// The router-side end.
    pub veth: &'a str,
    /// The node-side end (`eth0`).
    pub ifname_in_node: &'a str,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// The default route, for the node's first interface.
    pub gateway: Option<Ipv4Addr>,
}

/// Ports of bridge 0 kept for the links to extra bridges of a network of
/// `cidr` (one per extra bridge it may need, at most 256, and room for the
/// nodes plugged in at once before they are moved on).
fn first_bridge_node_ports(cidr: &Ipv4Net) -> u16 {
    let reserve = max_extra_bridges(cidr).min(256) + 32;
    (BRIDGE_PORTS - reserve) as u16
}

/// Link a node's namespace to a network: a veth pair whose router end is a
/// port of one of the network's bridges and whose other end is
/// `ifname_in_node` in the node, with its address, up, and the default
/// route when asked. Also brings the node's `lo` up. A leftover veth of
/// the same name is replaced.
///
/// The veth goes to the bridge that took the last one (see
/// [`BridgeHints`]). Bridge 0 keeps some ports for links to extra bridges:
/// a veth that got a port number past [`first_bridge_node_ports`] there is
/// moved to an extra bridge; a full extra bridge (`EXFULL`) sends it to
/// the next one, made when missing.
pub fn attach(
    lock: &SessionLock,
    hints: &BridgeHints,
    run_dir: &Path,
    sid: &str,
    plug: &Plug,
) -> NetResult<()> {
    let network = plug.network;
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return Err(NetError::Missing(format!(
            "network `{network}` does not exist (no router namespace for the session): run `tg apply` to make it"
        )));
    }
    let bridge = names::bridge_name(sid, network);
    let mut rnl = Netlink::open_in(&router)?;
    let node_ns = File::open(plug.node_netns).map_err(io_err(format!(
        "cannot open node namespace `{}`",
        plug.node_netns.display()
    )))?;
    let op = || {
        format!(
            "cannot link `{}` to network `{network}`",
            plug.ifname_in_node
        )
    };
    rnl.delete_link(plug.veth)?;
    let hint = hints.get(sid, network);
    let first = rnl.link_index(&bridge)?.ok_or_else(|| {
        NetError::Missing(format!(
            "network `{network}` does not exist (no bridge `{bridge}`): run `tg apply` to make it"
        ))
    })?;
    let start = match hint {
        0 => first,
        k => match rnl.link_index(&names::extra_bridge_name(sid, network, k))? {
            Some(i) => i,
            // The hint names a bridge that is gone: start again.
            None => {
                hints.set(sid, network, 0);
                first
            }
        },
    };
    let mut k = if start == first { 0 } else { hint };
    let veth = match rnl.create_veth(plug.veth, Some(start), plug.ifname_in_node, Some(&node_ns)) {
        Ok(()) if k > 0 => None,
        Ok(()) => {
            let cidr = Ipv4Net::new(plug.address, plug.prefix_len)
                .map_err(|_| NetError::Missing(format!("{}: bad prefix", op())))?
                .trunc();
            // Up to a /23 a network never fills a bridge.
            if cidr.prefix_len() >= 23 {
                None
            } else {
                let seen = rnl.link(plug.veth)?.ok_or_else(|| {
                    NetError::Missing(format!("{}: `{}` vanished", op(), plug.veth))
                })?;
                seen.port_no
                    .is_some_and(|n| n > first_bridge_node_ports(&cidr))
                    .then_some(seen.index)
            }
        }
        // The hinted bridge is full (bridge 0 only when more nodes came at
        // once than it keeps ports for): plug in nowhere, then move.
        Err(e) if e.errno() == Some(libc::EXFULL) => {
            rnl.create_veth(plug.veth, None, plug.ifname_in_node, Some(&node_ns))
                .map_err(|e| prefix(op(), e))?;
            rnl.link_index(plug.veth)?
        }
        Err(e) => return Err(prefix(op(), e)),
    };
    if let Some(index) = veth {
        // Onto the first extra bridge with room, made when needed.
        loop {
            k += 1;
            if k > BRIDGE_PORTS {
                return Err(NetError::Missing(format!(
                    "{}: all its bridges are full",
                    op()
                )));
            }
            let extra = {
                let _held = lock.lock();
                ensure_extra_bridge(&mut rnl, sid, network, k)?
            };
            match rnl.enslave(index, extra) {
                Ok(()) => break,
                Err(e) if e.errno() == Some(libc::EXFULL) => continue,
                Err(e) => return Err(prefix(op(), e)),
            }
        }
        hints.set(sid, network, k);
    }
    configure_node_side(&mut rnl, plug)
}

/// Make extra bridge `k` of `network` and link it to bridge 0, unless
/// done; its index. The caller holds the session's lock.
fn ensure_extra_bridge(nl: &mut Netlink, sid: &str, network: &str, k: u32) -> NetResult<u32> {
    let name = names::extra_bridge_name(sid, network, k);
    let (first_end, extra_end) = names::bridge_link_names(sid, network, k);
    if let (Some(index), Some(l)) = (nl.link_index(&name)?, nl.link(&extra_end)?) {
        if l.master == Some(index) {
            return Ok(index);
        }
    }
    let first = nl
        .link_index(&names::bridge_name(sid, network))?
        .ok_or_else(|| NetError::Missing(format!("network `{network}` lost its bridge")))?;
    let index = ensure_bridge(nl, &name, network)?;
    let op = format!("cannot link extra bridge `{name}` of network `{network}`");
    nl.delete_link(&first_end)?;
    nl.create_veth(&first_end, Some(first), &extra_end, None)
        .map_err(|e| prefix(op.clone(), e))?;
    let peer = nl
        .link_index(&extra_end)?
        .ok_or_else(|| NetError::Missing(format!("{op}: `{extra_end}` vanished")))?;
    nl.enslave(peer, index).map_err(|e| prefix(op, e))?;
    Ok(index)
}

/// The node's side of a new veth: `lo` and the interface up, the address,
/// the default route; waits (briefly) for the carrier.
fn configure_node_side(rnl: &mut Netlink, plug: &Plug) -> NetResult<()> {
    let ifname = plug.ifname_in_node;
    let mut nnl = Netlink::open_in(plug.node_netns)?;
    nnl.set_up_by_name("lo")?;
    let index = nnl.link_index(ifname)?.ok_or_else(|| {
        NetError::Missing(format!("`{ifname}` did not appear in the node's namespace"))
    })?;
    // The kernel refuses to bring a veth peer up while making it in
    // another namespace (ENOTCONN), so it is brought up here.
    nnl.set_up(index, ifname)?;
    nnl.add_address(index, plug.address, plug.prefix_len)
        .map_err(|e| {
            prefix(
                format!(
                    "cannot give `{}/{}` to `{ifname}`",
                    plug.address, plug.prefix_len
                ),
                e,
            )
        })?;
    // Carrier changes reach the qdisc and the bridge port through the
    // kernel's linkwatch work, a moment later; until then packets are
    // dropped. Wait (briefly) so the node is usable when create returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline
        && !(nnl.is_oper_up(index)?
            && rnl
                .link(plug.veth)?
                .is_some_and(|l| l.oper_up || rnl.is_oper_up(l.index).unwrap_or(true)))
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if let Some(gw) = plug.gateway {
        nnl.add_default_route(index, gw)
            .map_err(|e| prefix(format!("cannot route via `{gw}`"), e))?;
    }
    Ok(())
}

/// Remove a node's veths (both ends go). Missing ones are fine.
pub fn detach(run_dir: &Path, sid: &str, veths: &[String]) -> NetResult<()> {
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) || veths.is_empty() {
        return Ok(());
    }
    Netlink::open_in(&router)?.delete_links(veths)
}

/// The names of the links in the session's router namespace (none when
/// there is no router).
pub fn existing_links(run_dir: &Path, sid: &str) -> NetResult<BTreeSet<String>> {
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return Ok(BTreeSet::new());
    }
    Ok(Netlink::open_in(&router)?
        .link_names()?
        .into_iter()
        .collect())
}

/// Which of `names` exist in the session's router namespace (one lookup
/// per name, not a dump of every link).
pub fn links_present(run_dir: &Path, sid: &str, names: &[String]) -> NetResult<BTreeSet<String>> {
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) || names.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut nl = Netlink::open_in(&router)?;
    let mut found = BTreeSet::new();
    for n in names {
        if nl.link_index(n)?.is_some() {
            found.insert(n.clone());
        }
    }
    Ok(found)
}

/// Which of `plugs` (router-side veth, network) exist and are ports of one
/// of their network's bridges: a veth whose bridge was deleted is left
/// without a master, and its node cannot reach the network any more.
pub fn plugged(
    run_dir: &Path,
    sid: &str,
    plugs: &[(String, String)],
) -> NetResult<BTreeSet<String>> {
    Ok(inspect(run_dir, sid, plugs, false)?.plugged)
}

/// What [`inspect`] saw of a node's veths.
#[derive(Debug, Default)]
pub struct Seen {
    /// The veths that exist and are ports of their network's bridge.
    pub plugged: BTreeSet<String>,
    /// The kind of each existing veth's root qdisc when it has one someone
    /// made (`tbf`, `netem`, ...; none for a veth's default queue), when
    /// asked for.
    pub root_qdiscs: HashMap<String, String>,
}

/// [`plugged`], and with `qdiscs` the kind of each veth's root qdisc (a
/// `GET` per veth: a dump would cost every qdisc of the session, making a
/// refresh of N nodes O(N²)), on the same netlink socket: a refresh learns
/// whether a link that should have no impairment has one without running
/// `tc`.
pub fn inspect(
    run_dir: &Path,
    sid: &str,
    plugs: &[(String, String)],
    qdiscs: bool,
) -> NetResult<Seen> {
    let router = router_netns_path(run_dir, sid);
    let mut seen = Seen::default();
    if !is_ns_file(&router) || plugs.is_empty() {
        return Ok(seen);
    }
    let mut nl = Netlink::open_in(&router)?;
    let mut bridges: HashMap<u32, String> = HashMap::new();
    for (veth, network) in plugs {
        let Some(link) = nl.link(veth)? else {
            continue;
        };
        if qdiscs {
            match nl.root_qdisc_kind(link.index) {
                Ok(Some(kind)) => {
                    seen.root_qdiscs.insert(veth.clone(), kind);
                }
                Ok(None) => {}
                // Gone since it was looked up (deleted meanwhile): as if
                // it had not been there.
                Err(e) if e.errno() == Some(libc::ENODEV) => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(master) = link.master else {
            continue;
        };
        let name = match bridges.get(&master) {
            Some(n) => n.clone(),
            None => {
                let n = nl
                    .link_by_index(master)?
                    .map(|l| l.name)
                    .unwrap_or_default();
                bridges.insert(master, n.clone());
                n
            }
        };
        let first = names::bridge_name(sid, network);
        let ok = name == first
            || (name.starts_with("tgb")
                && (1..=BRIDGE_PORTS).any(|k| names::extra_bridge_name(sid, network, k) == name));
        if ok {
            seen.plugged.insert(veth.clone());
        }
    }
    Ok(seen)
}

/// The names of the links in the namespace at `ns` (the calling thread's
/// namespace when `None`).
pub fn links_in(ns: Option<&Path>) -> NetResult<Vec<String>> {
    let mut nl = match ns {
        Some(p) => Netlink::open_in(p)?,
        None => Netlink::open()?,
    };
    nl.link_names()
}

/// The bridges of network `name` and how many ports each has, in order
/// (bridge 0 first); for tests and `tg` diagnostics.
pub fn bridge_ports(run_dir: &Path, sid: &str, name: &str) -> NetResult<Vec<(String, usize)>> {
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return Ok(Vec::new());
    }
    let links = Netlink::open_in(&router)?.links()?;
    let mut out = Vec::new();
    for k in 0..=BRIDGE_PORTS {
        let bridge = names::extra_bridge_name(sid, name, k);
        let Some(b) = links.iter().find(|l| l.name == bridge) else {
            break;
        };
        let ports = links.iter().filter(|l| l.master == Some(b.index)).count();
        out.push((bridge, ports));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_bridges_are_bounded_by_the_cidr() {
        let n = |s: &str| s.parse::<Ipv4Net>().unwrap();
        assert_eq!(max_extra_bridges(&n("10.0.0.0/24")), 1);
        assert_eq!(max_extra_bridges(&n("10.0.0.0/22")), 2);
        assert_eq!(max_extra_bridges(&n("10.0.0.0/16")), 65);
        assert_eq!(max_extra_bridges(&n("10.0.0.0/8")), BRIDGE_PORTS);
        let names = extra_link_names("abcd0123", "lab", &n("10.0.0.0/20"));
        assert_eq!(names.len(), 15);
        assert!(names.contains(&names::extra_bridge_name("abcd0123", "lab", 5)));
        assert!(!names.contains(&names::bridge_name("abcd0123", "lab")));
    }

    #[test]
    fn rules_match_the_bridge_and_only_the_first_names_the_gateway() {
        let gw = Ipv4Addr::new(10, 0, 0, 1);
        let r = network_rules("tgb1", Some(gw));
        assert_eq!(r[0].dst, Some(gw));
        assert!(r.iter().all(|x| x.iif == Some("tgb1")));
        assert_eq!(r[2].does, RuleDoes::Prohibit);
        let d = network_rules("tgb1", None);
        assert!(d.iter().all(|x| x.dst.is_none()));
    }
}
