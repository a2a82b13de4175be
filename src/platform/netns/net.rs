//! Networks of the netns platform: one router network namespace per
//! session, one Linux bridge per network inside it, and the veth pairs that
//! link nodes to bridges.
//!
//! Layout: the router namespace (file `<run_dir>/<sid>/netns/router`, a
//! persisted namespace with no process) holds every bridge of the session
//! with the network's gateway `.1/prefix`. IPv4 forwarding is off there,
//! so nothing crosses networks, and policy rules keep a network from even
//! reaching the router's addresses on other networks (see
//! `add_network_rules`). The host's root namespace gets no bridge,
//! no veth and no address: two sessions may use the same CIDRs at once.
//! The host reaches nodes through the router namespace (`tg proxy`).
//!
//! Everything is done with raw rtnetlink messages on sockets opened inside
//! the target namespace (a short-lived thread enters the namespace, opens
//! the socket and leaves; the socket stays bound to that namespace), so no
//! process is spawned and the calling thread never changes namespace.
//!
//! NAT (`nat = true`) adds an uplink veth between the router and the host;
//! see the NAT section below. It is the only part that spawns processes
//! (`iptables`).
//!
//! Not here: node namespaces and root filesystems (`node`).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use serde::{Deserialize, Serialize};

use super::names;
use crate::platform::{NetworkSpec, PlatformError, SessionRef};

/// What can go wrong while making networks.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}: {message}")]
    Netlink {
        op: String,
        errno: i32,
        message: String,
    },
    #[error("{0}")]
    Missing(String),
    /// A tool (iptables) failed; `detail` is its output.
    #[error("{message}")]
    Tool { message: String, detail: String },
}

impl From<NetError> for PlatformError {
    fn from(e: NetError) -> PlatformError {
        match e {
            NetError::Tool { message, detail } => PlatformError::new(message).with_detail(detail),
            other => PlatformError::new(other.to_string()),
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let context = context.into();
    move |source| NetError::Io { context, source }
}

fn nix_err(context: impl Into<String>) -> impl FnOnce(nix::Error) -> NetError {
    let context = context.into();
    move |e| NetError::Io {
        context,
        source: io::Error::from_raw_os_error(e as i32),
    }
}

type NetResult<T> = Result<T, NetError>;

/// Serializes router namespace creation and removal with network creates
/// and deletes, within this process. (Two tg processes never work on one
/// session at once: the session lock sees to that.)
static ROUTER_LOCK: Mutex<()> = Mutex::new(());

/// What `session.json` in the session's runtime folder records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    pub name: String,
    pub lineage: String,
    pub testbed_dir: PathBuf,
    pub sid: String,
}

/// The session's router network namespace file.
pub fn router_netns_path(run_dir: &Path, sid: &str) -> PathBuf {
    names::router_netns_path(run_dir, sid)
}

/// The sessions with runtime data under `run_dir` whose name is `name`.
pub fn find_sessions(run_dir: &Path, name: &str) -> Vec<SessionRecord> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(run_dir) else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(text) = fs::read_to_string(e.path().join("session.json")) else {
            continue;
        };
        if let Ok(rec) = serde_json::from_str::<SessionRecord>(&text) {
            if rec.name == name {
                found.push(rec);
            }
        }
    }
    found.sort_by(|a, b| a.sid.cmp(&b.sid));
    found
}

/// Is `path` a persisted namespace (an nsfs bind mount)?
// The width of `f_type` differs between architectures.
#[allow(clippy::unnecessary_cast)]
pub fn is_ns_file(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 as i64 == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Does the session's router namespace exist?
pub fn router_exists(run_dir: &Path, sid: &str) -> bool {
    is_ns_file(&router_netns_path(run_dir, sid))
}

/// Make the session's router namespace unless it exists: forwarding off,
/// `lo` up, `session.json` written. Returns its path.
fn ensure_router(run_dir: &Path, session: &SessionRef, sid: &str) -> NetResult<PathBuf> {
    let path = router_netns_path(run_dir, sid);
    if is_ns_file(&path) {
        if !names::session_file(run_dir, sid).exists() {
            write_session_record(run_dir, session, sid)?;
        }
        return Ok(path);
    }
    let dir = names::router_dir(run_dir, sid);
    fs::create_dir_all(&dir).map_err(io_err(format!("cannot create `{}`", dir.display())))?;
    make_shared_mount_point(&dir)?;
    // A leftover plain file (crash between create and mount) is reused.
    File::create(&path).map_err(io_err(format!("cannot create `{}`", path.display())))?;
    let p = path.clone();
    std::thread::scope(|s| {
        s.spawn(move || -> NetResult<()> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(nix_err("cannot make a network namespace"))?;
            let own = PathBuf::from("/proc/thread-self/ns/net");
            mount(Some(&own), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(
                nix_err(format!(
                    "cannot bind the router namespace to `{}`",
                    p.display()
                )),
            )?;
            // A new namespace may inherit the host's IPv4 settings (see
            // `net.core.devconf_inherit_init_net`): force forwarding off.
            fs::write("/proc/sys/net/ipv4/ip_forward", "0")
                .map_err(io_err("cannot turn forwarding off in the router namespace"))?;
            // With `br_netfilter` loaded, bridged frames would cross the
            // router's iptables FORWARD chain (DROP once NAT is on).
            let bnf = Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables");
            if bnf.exists() {
                let _ = fs::write(bnf, "0");
            }
            let mut nl = Netlink::open()?;
            nl.set_up_by_name("lo")?;
            // Local delivery is looked up after the per-network rules (see
            // `add_network_rules`), not before them.
            nl.rule(
                true,
                LOCAL_RULE_PREF,
                None,
                None,
                FR_ACT_TO_TBL,
                RT_TABLE_LOCAL,
            )?;
            nl.rule(false, 0, None, None, FR_ACT_TO_TBL, RT_TABLE_LOCAL)?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(NetError::Missing("router setup thread panicked".into())))
    })
    .inspect_err(|_| {
        let _ = umount2(&path, MntFlags::MNT_DETACH);
        let _ = fs::remove_file(&path);
    })?;
    write_session_record(run_dir, session, sid)?;
    Ok(path)
}

/// Write `session.json` (what `tg proxy` looks sessions up by).
fn write_session_record(run_dir: &Path, session: &SessionRef, sid: &str) -> NetResult<()> {
    let record = SessionRecord {
        name: session.name.clone(),
        lineage: session.lineage.clone(),
        testbed_dir: session.testbed_dir.clone(),
        sid: sid.to_string(),
    };
    let file = names::session_file(run_dir, sid);
    let text = serde_json::to_string_pretty(&record).unwrap_or_default();
    fs::write(&file, text).map_err(io_err(format!("cannot write `{}`", file.display())))
}

/// Make `dir` a shared mount point (a bind mount of itself), as iproute2
/// does for `/run/netns`, so that unmounting a namespace file there also
/// unmounts its copies in mount namespaces made later.
fn make_shared_mount_point(dir: &Path) -> NetResult<()> {
    let shared = |d: &Path| {
        mount(
            None::<&str>,
            d,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if is_mount_point(dir) {
        return shared(dir).map_err(nix_err(format!("cannot share `{}`", dir.display())));
    }
    mount(
        Some(dir),
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(nix_err(format!(
        "cannot bind `{}` on itself",
        dir.display()
    )))?;
    shared(dir).map_err(nix_err(format!("cannot share `{}`", dir.display())))
}

/// Is `path` a mount point (listed in `/proc/self/mountinfo`)?
pub fn is_mount_point(path: &Path) -> bool {
    mount_points_under(path).iter().any(|p| p == path)
}

/// Every mount point at or under `root`, deepest first.
pub fn mount_points_under(root: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(root))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Remove the session's router namespace (and everything in it: bridges
/// and router-side veths) and its `session.json`. Idempotent.
pub fn remove_router(run_dir: &Path, sid: &str) -> NetResult<bool> {
    let path = router_netns_path(run_dir, sid);
    let dir = names::router_dir(run_dir, sid);
    let existed = path.exists();
    remove_uplink_host_side(sid)?;
    if is_ns_file(&path) {
        umount2(&path, MntFlags::MNT_DETACH)
            .map_err(nix_err(format!("cannot unmount `{}`", path.display())))?;
    }
    let _ = fs::remove_file(&path);
    while is_mount_point(&dir) {
        if umount2(&dir, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
    let _ = fs::remove_dir(&dir);
    let _ = fs::remove_file(names::session_file(run_dir, sid));
    Ok(existed)
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
    run_dir: &Path,
    session: &SessionRef,
    spec: &NetworkSpec,
) -> NetResult<NetworkPrivate> {
    let sid = names::sid(&session.lineage);
    let bridge = names::bridge_name(&sid, &spec.name);
    let _guard = ROUTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let router = ensure_router(run_dir, session, &sid)?;
    let mut nl = Netlink::open_in(&router)?;
    let op = format!("cannot make bridge `{bridge}` for network `{}`", spec.name);
    match nl.create_bridge(&bridge) {
        Ok(()) => {}
        Err(NetError::Netlink { errno, .. }) if errno == libc::EEXIST => {
            nl.set_up_by_name(&bridge)?;
        }
        Err(e) => return Err(prefix(op, e)),
    }
    let index = nl
        .link_index(&bridge)?
        .ok_or_else(|| NetError::Missing(format!("{op}: it vanished right after creation")))?;
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

/// Where the router's `local` table is looked up (moved from 0).
const LOCAL_RULE_PREF: u32 = 32000;
const NET_RULE_PREF: u32 = 100;

/// Policy rules that keep a network from reaching the router's addresses
/// on other networks: what arrives on `bridge` may be delivered locally only
/// when it is for the network's own gateway; anything else goes through
/// `main` (forwarded, which the router refuses unless NAT allows it) or is
/// refused. Traffic the router itself sends is not affected.
fn add_network_rules(nl: &mut Netlink, bridge: &str, gateway: Ipv4Addr) -> NetResult<()> {
    let op = |e| prefix(format!("cannot isolate bridge `{bridge}`"), e);
    nl.rule(
        true,
        NET_RULE_PREF,
        Some(bridge),
        Some(gateway),
        FR_ACT_TO_TBL,
        RT_TABLE_LOCAL,
    )
    .map_err(op)?;
    nl.rule(
        true,
        NET_RULE_PREF + 1,
        Some(bridge),
        None,
        FR_ACT_TO_TBL,
        RT_TABLE_MAIN,
    )
    .map_err(op)?;
    nl.rule(
        true,
        NET_RULE_PREF + 2,
        Some(bridge),
        None,
        FR_ACT_PROHIBIT,
        0,
    )
    .map_err(op)
}

fn delete_network_rules(nl: &mut Netlink, bridge: &str) -> NetResult<()> {
    for (pref, action, table) in [
        (NET_RULE_PREF, FR_ACT_TO_TBL, RT_TABLE_LOCAL),
        (NET_RULE_PREF + 1, FR_ACT_TO_TBL, RT_TABLE_MAIN),
        (NET_RULE_PREF + 2, FR_ACT_PROHIBIT, 0),
    ] {
        nl.rule(false, pref, Some(bridge), None, action, table)?;
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

/// Delete network `name`'s bridge; remove the router namespace when it was
/// the session's last network. Deleting a missing network succeeds.
pub fn delete_network(run_dir: &Path, sid: &str, name: &str) -> NetResult<()> {
    let _guard = ROUTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return Ok(());
    }
    let mut nl = Netlink::open_in(&router)?;
    let bridge = names::bridge_name(sid, name);
    delete_network_rules(&mut nl, &bridge)?;
    nl.delete_link(&bridge)?;
    let bridges_left = nl.link_names()?.iter().any(|n| n.starts_with("tgb"));
    drop(nl);
    if !bridges_left {
        remove_router(run_dir, sid)?;
    }
    Ok(())
}

/// Link a node's namespace to a network: a veth pair whose router end
/// (`veth`) is a port of the network's bridge and whose other end is
/// `ifname_in_node` in the node, with `address/prefix_len`, up, and the
/// default route via `gateway` when `default_route`. Also brings the
/// node's `lo` up. A leftover veth of the same name is replaced.
#[allow(clippy::too_many_arguments)]
pub fn attach(
    run_dir: &Path,
    sid: &str,
    network: &str,
    node_netns: &Path,
    veth: &str,
    ifname_in_node: &str,
    address: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
) -> NetResult<()> {
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return Err(NetError::Missing(format!(
            "network `{network}` does not exist (no router namespace for the session): run `tg apply` to make it"
        )));
    }
    let bridge = names::bridge_name(sid, network);
    let mut rnl = Netlink::open_in(&router)?;
    let Some(bridge_index) = rnl.link_index(&bridge)? else {
        return Err(NetError::Missing(format!(
            "network `{network}` does not exist (no bridge `{bridge}`): run `tg apply` to make it"
        )));
    };
    let node_ns = File::open(node_netns).map_err(io_err(format!(
        "cannot open node namespace `{}`",
        node_netns.display()
    )))?;
    rnl.delete_link(veth)?;
    rnl.create_veth(
        veth,
        Some(bridge_index),
        ifname_in_node,
        node_ns.as_fd().as_raw_fd(),
    )
    .map_err(|e| {
        prefix(
            format!("cannot link `{ifname_in_node}` to network `{network}`"),
            e,
        )
    })?;
    let mut nnl = Netlink::open_in(node_netns)?;
    nnl.set_up_by_name("lo")?;
    let index = nnl.link_index(ifname_in_node)?.ok_or_else(|| {
        NetError::Missing(format!(
            "`{ifname_in_node}` did not appear in the node's namespace"
        ))
    })?;
    // The kernel refuses to bring a veth peer up while making it in
    // another namespace (ENOTCONN), so it is brought up here.
    nnl.set_up(index, ifname_in_node)?;
    nnl.add_address(index, address, prefix_len).map_err(|e| {
        prefix(
            format!("cannot give `{address}/{prefix_len}` to `{ifname_in_node}`"),
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
                .link_index(veth)?
                .is_some_and(|i| rnl.is_oper_up(i).unwrap_or(true)))
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if let Some(gw) = gateway {
        nnl.add_default_route(index, gw)
            .map_err(|e| prefix(format!("cannot route via `{gw}`"), e))?;
    }
    Ok(())
}

/// Remove a node's veth (both ends go). Missing ones are fine.
pub fn detach(run_dir: &Path, sid: &str, veths: &[String]) -> NetResult<()> {
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) || veths.is_empty() {
        return Ok(());
    }
    let mut nl = Netlink::open_in(&router)?;
    for v in veths {
        nl.delete_link(v)?;
    }
    Ok(())
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

/// The names of the links in the namespace at `ns` (the calling thread's
/// namespace when `None`).
pub fn links_in(ns: Option<&Path>) -> NetResult<Vec<String>> {
    let mut nl = match ns {
        Some(p) => Netlink::open_in(p)?,
        None => Netlink::open()?,
    };
    nl.link_names()
}

fn prefix(op: String, e: NetError) -> NetError {
    match e {
        NetError::Netlink { errno, message, .. } => NetError::Netlink { op, errno, message },
        other => other,
    }
}

// ---------------------------------------------------------------------------
// NAT: egress from chosen networks to the host's outside world.
//
// The router gets an uplink veth to the host (`uplink` there, `tgu<hex>` on
// the host) with a transfer /30 from `NAT_POOL` (host `.1`, router `.2`)
// and a default route via the host. Forwarding goes on in the router, with
// an iptables FORWARD policy DROP there that only lets NAT networks out the
// uplink (and their replies back), so networks stay isolated from each
// other. The router masquerades behind `.2` (two sessions may use the same
// CIDRs), and the host masquerades the transfer /30 out of its own
// interfaces. The host's rules carry the comment `tg-<sid>`; IPv4
// forwarding is turned on on the host (and left on).

/// Where transfer /30s come from (the top of the shared address space).
pub const NAT_POOL: &str = "100.127.0.0/16";

/// The router-side name of the uplink.
const UPLINK: &str = "uplink";

fn run_tool(mut cmd: std::process::Command, what: &str) -> NetResult<String> {
    let out = cmd.output().map_err(|e| NetError::Tool {
        message: format!("{what}: cannot run it: {e} (nat needs the `iptables` package)"),
        detail: String::new(),
    })?;
    if !out.status.success() {
        return Err(NetError::Tool {
            message: format!("{what} failed"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run `iptables ARGS` in the namespace at `ns` (the host's when `None`).
fn iptables(ns: Option<&Path>, args: &[&str]) -> NetResult<String> {
    let mut cmd = match ns {
        Some(p) => {
            let mut c = std::process::Command::new("nsenter");
            c.arg(format!("--net={}", p.display()))
                .arg("--")
                .arg("iptables");
            c
        }
        None => std::process::Command::new("iptables"),
    };
    cmd.arg("-w").args(args);
    run_tool(cmd, &format!("`iptables {}`", args.join(" ")))
}

/// Add rule `args` (`-A`/`-I` form) unless it exists (`-C`).
fn iptables_ensure(
    ns: Option<&Path>,
    table: &str,
    add: &str,
    chain: &str,
    rule: &[&str],
) -> NetResult<()> {
    let mut check = vec!["-t", table, "-C", chain];
    check.extend_from_slice(rule);
    if iptables(ns, &check).is_ok() {
        return Ok(());
    }
    let mut args = vec!["-t", table, add, chain];
    args.extend_from_slice(rule);
    iptables(ns, &args).map(|_| ())
}

fn iptables_delete(ns: Option<&Path>, table: &str, chain: &str, rule: &[&str]) {
    let mut args = vec!["-t", table, "-D", chain];
    args.extend_from_slice(rule);
    while iptables(ns, &args).is_ok() {}
}

/// Write `value` to sysctl file `path` from inside the namespace at `ns`.
fn sysctl_in(ns: &Path, path: &str, value: &str) -> NetResult<()> {
    in_netns(ns, || {
        fs::write(path, value).map_err(io_err(format!("cannot write `{path}`")))
    })
}

/// Run `f` on a short-lived thread that entered the network namespace
/// persisted at `ns`; the calling thread never changes namespace.
fn in_netns<T: Send>(ns: &Path, f: impl FnOnce() -> NetResult<T> + Send) -> NetResult<T> {
    let file =
        File::open(ns).map_err(io_err(format!("cannot open namespace `{}`", ns.display())))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(nix_err(format!(
                "cannot enter namespace `{}`",
                ns.display()
            )))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(NetError::Missing("namespace thread panicked".into())))
    })
}

/// A transfer /30 from `NAT_POOL` that no host address overlaps, starting
/// from a place derived from the session tag.
fn pick_transfer(sid: &str, used: &[(Ipv4Addr, u8)]) -> NetResult<ipnet::Ipv4Net> {
    let pool: ipnet::Ipv4Net = NAT_POOL
        .parse()
        .map_err(|_| NetError::Missing("bad NAT pool".into()))?;
    let slots = 1u32 << (30 - pool.prefix_len());
    let start = u32::from_str_radix(sid.get(..8).unwrap_or("0"), 16).unwrap_or(0) % slots;
    for k in 0..slots {
        let base = u32::from(pool.network()) + ((start + k) % slots) * 4;
        let Ok(net) = ipnet::Ipv4Net::new(Ipv4Addr::from(base), 30) else {
            continue;
        };
        let clash = used.iter().any(|(a, p)| {
            net.contains(a)
                || ipnet::Ipv4Net::new(*a, *p)
                    .is_ok_and(|other| other.trunc().contains(&net.network()))
        });
        if !clash {
            return Ok(net);
        }
    }
    Err(NetError::Missing(format!(
        "no free transfer /30 left in `{NAT_POOL}` for nat"
    )))
}

/// Let network `name` out to the host's outside world, making the
/// session's uplink first if needed. Returns the host-side uplink address.
/// The calling thread must be in the host's network namespace.
pub fn enable_nat(run_dir: &Path, sid: &str, name: &str) -> NetResult<Ipv4Addr> {
    let _guard = ROUTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return Err(NetError::Missing(format!(
            "network `{name}` does not exist (no router namespace for the session)"
        )));
    }
    let bridge = names::bridge_name(sid, name);
    let host_if = names::uplink_name(sid);
    let tag = names::rule_tag(sid);
    let mut rnl = Netlink::open_in(&router)?;
    let mut hnl = Netlink::open()?;
    let host_addr = match hnl.link_index(&host_if)? {
        Some(i) => hnl
            .addresses(Some(i))?
            .first()
            .map(|(a, _)| *a)
            .ok_or_else(|| {
                NetError::Missing(format!(
                    "uplink `{host_if}` has no address: run `tg apply` again after `tg destroy`"
                ))
            })?,
        None => {
            let used = hnl.addresses(None)?;
            let transfer = pick_transfer(sid, &used)?;
            let host_addr = Ipv4Addr::from(u32::from(transfer.network()) + 1);
            let router_addr = Ipv4Addr::from(u32::from(transfer.network()) + 2);
            let rfile = File::open(&router).map_err(io_err("cannot open the router namespace"))?;
            rnl.delete_link(UPLINK)?;
            hnl.create_veth(&host_if, None, UPLINK, rfile.as_raw_fd())?;
            let hidx = hnl
                .link_index(&host_if)?
                .ok_or_else(|| NetError::Missing(format!("uplink `{host_if}` vanished")))?;
            hnl.add_address(hidx, host_addr, 30)?;
            let uidx = rnl
                .link_index(UPLINK)?
                .ok_or_else(|| NetError::Missing("the router's uplink vanished".into()))?;
            rnl.set_up(uidx, UPLINK)?;
            rnl.add_address(uidx, router_addr, 30)?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while std::time::Instant::now() < deadline && !rnl.is_oper_up(uidx)? {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            rnl.add_default_route(uidx, host_addr)?;
            // Router: drop every forward but what the rules below allow,
            // then turn forwarding on.
            iptables(Some(&router), &["-P", "FORWARD", "DROP"])?;
            iptables_ensure(
                Some(&router),
                "nat",
                "-A",
                "POSTROUTING",
                &["-o", UPLINK, "-j", "MASQUERADE"],
            )?;
            sysctl_in(&router, "/proc/sys/net/ipv4/ip_forward", "1")?;
            // Host: masquerade the transfer net, accept its forwards.
            fs::write("/proc/sys/net/ipv4/ip_forward", "1")
                .map_err(io_err("cannot turn IPv4 forwarding on on the host"))?;
            let src = transfer.to_string();
            iptables_ensure(
                None,
                "nat",
                "-A",
                "POSTROUTING",
                &[
                    "-s",
                    &src,
                    "!",
                    "-o",
                    &host_if,
                    "-m",
                    "comment",
                    "--comment",
                    &tag,
                    "-j",
                    "MASQUERADE",
                ],
            )?;
            iptables_ensure(
                None,
                "filter",
                "-I",
                "FORWARD",
                &[
                    "-i",
                    &host_if,
                    "-m",
                    "comment",
                    "--comment",
                    &tag,
                    "-j",
                    "ACCEPT",
                ],
            )?;
            iptables_ensure(
                None,
                "filter",
                "-I",
                "FORWARD",
                &[
                    "-o",
                    &host_if,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "RELATED,ESTABLISHED",
                    "-m",
                    "comment",
                    "--comment",
                    &tag,
                    "-j",
                    "ACCEPT",
                ],
            )?;
            host_addr
        }
    };
    for rule in forward_rules(&bridge) {
        iptables_ensure(Some(&router), "filter", "-A", "FORWARD", &rule)?;
    }
    Ok(host_addr)
}

/// The router's FORWARD rules that let one NAT network out of the uplink
/// (and its replies back in): added by `enable_nat`, removed by
/// `disable_nat`, from this one list so the two never drift apart.
fn forward_rules(bridge: &str) -> [Vec<&str>; 2] {
    [
        vec!["-i", bridge, "-o", UPLINK, "-j", "ACCEPT"],
        vec![
            "-i",
            UPLINK,
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED",
            "-j",
            "ACCEPT",
        ],
    ]
}

/// Stop letting network `name` out; remove the uplink when no NAT network
/// is left. Idempotent.
pub fn disable_nat(run_dir: &Path, sid: &str, name: &str) -> NetResult<()> {
    let _guard = ROUTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let router = router_netns_path(run_dir, sid);
    if !is_ns_file(&router) {
        return remove_uplink_host_side(sid);
    }
    let bridge = names::bridge_name(sid, name);
    for rule in forward_rules(&bridge) {
        iptables_delete(Some(&router), "filter", "FORWARD", &rule);
    }
    let rules = iptables(Some(&router), &["-S", "FORWARD"]).unwrap_or_default();
    if rules.lines().any(|l| l.contains(UPLINK)) {
        return Ok(());
    }
    sysctl_in(&router, "/proc/sys/net/ipv4/ip_forward", "0")?;
    iptables_delete(
        Some(&router),
        "nat",
        "POSTROUTING",
        &["-o", UPLINK, "-j", "MASQUERADE"],
    );
    remove_uplink_host_side(sid)?;
    remove_host_rules(sid);
    Netlink::open_in(&router)?.delete_link(UPLINK)
}

/// Remove the host side of the session's uplink: the `tgu` veth and the
/// host's iptables rules tagged `tg-<sid>`.
fn remove_uplink_host_side(sid: &str) -> NetResult<()> {
    let host_if = names::uplink_name(sid);
    let mut hnl = Netlink::open()?;
    if hnl.link_index(&host_if)?.is_some() {
        hnl.delete_link(&host_if)?;
        remove_host_rules(sid);
    }
    Ok(())
}

/// Remove the host's iptables rules tagged `tg-<sid>`; describe them.
pub fn remove_host_rules(sid: &str) -> Vec<String> {
    let tag = format!("--comment {}", names::rule_tag(sid));
    let mut removed = Vec::new();
    for table in ["nat", "filter"] {
        let Ok(rules) = iptables(None, &["-t", table, "-S"]) else {
            continue;
        };
        for rule in rules
            .lines()
            .filter(|l| l.starts_with("-A ") && l.contains(&tag))
        {
            let mut args: Vec<&str> = vec!["-t", table, "-D"];
            args.extend(rule.split_whitespace().skip(1));
            if iptables(None, &args).is_ok() {
                removed.push(format!("iptables rule `{rule}` ({table})"));
            }
        }
    }
    removed
}

/// Does the host have the session's uplink?
pub fn uplink_exists(sid: &str) -> bool {
    Netlink::open()
        .and_then(|mut nl| nl.link_index(&names::uplink_name(sid)))
        .is_ok_and(|i| i.is_some())
}

// ---------------------------------------------------------------------------
// A minimal rtnetlink client.

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
/// In an error message: the original request is not echoed / TLVs follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;

const IFF_UP: u32 = 0x1;
const RT_TABLE_MAIN: u8 = 254;
const RT_TABLE_LOCAL: u8 = 255;
const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const FRA_DST: u16 = 1;
const FRA_IIFNAME: u16 = 3;
const FRA_PRIORITY: u16 = 6;
const FR_ACT_TO_TBL: u8 = 1;
const FR_ACT_PROHIBIT: u8 = 8;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// One netlink message being built.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set at send
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    /// `struct ifinfomsg`.
    fn ifinfo(mut self, index: i32, flags: u32, change: u32) -> Msg {
        self.ifinfo_raw(index, flags, change);
        self
    }

    fn ifinfo_raw(&mut self, index: i32, flags: u32, change: u32) {
        self.buf.push(libc::AF_UNSPEC as u8);
        self.buf.push(0);
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn attr_str(&mut self, kind: u16, s: &str) {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(kind, &d);
    }

    fn begin(&mut self, kind: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
    }

    fn end(&mut self) {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }
}

/// A NETLINK_ROUTE socket, bound to the namespace it was opened in.
struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// One received message: type, flags, payload.
struct Reply {
    kind: u16,
    payload: Vec<u8>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    fn open() -> NetResult<Netlink> {
        // SAFETY: plain syscalls on a descriptor we own.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(NetError::Io {
                context: "cannot open a netlink socket".into(),
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        for opt in [libc::NETLINK_EXT_ACK, libc::NETLINK_CAP_ACK] {
            // SAFETY: valid pointer and length of a c_int. Failure only
            // means less detailed errors.
            unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_NETLINK,
                    opt,
                    &one as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as u32,
                );
            }
        }
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// A socket in the network namespace persisted at `ns`.
    fn open_in(ns: &Path) -> NetResult<Netlink> {
        in_netns(ns, Netlink::open)
    }

    fn send(&mut self, mut msg: Msg) -> NetResult<u32> {
        self.seq = self.seq.wrapping_add(1);
        let len = msg.buf.len() as u32;
        msg.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        msg.buf[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // SAFETY: `sockaddr_nl` zeroed is the kernel address (pid 0).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: buffer and address are valid for the given lengths.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.buf.as_ptr() as *const libc::c_void,
                msg.buf.len(),
                0,
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(NetError::Io {
                context: "cannot send a netlink request".into(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(self.seq)
    }

    /// Receive the replies to request `seq` until its ACK/error or the end
    /// of a dump. Errors carry the kernel's extended message when given.
    fn receive(&mut self, seq: u32, op: &str) -> NetResult<Vec<Reply>> {
        let mut replies = Vec::new();
        loop {
            // SAFETY: the buffer is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NetError::Io {
                    context: format!("{op}: cannot read the netlink reply"),
                    source: e,
                });
            }
            let data = &self.buf[..n as usize];
            let mut off = 0;
            while off + 16 <= data.len() {
                let len =
                    u32::from_ne_bytes(data[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
                if len < 16 || off + len > data.len() {
                    break;
                }
                let kind = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
                let flags = u16::from_ne_bytes([data[off + 6], data[off + 7]]);
                let mseq = u32::from_ne_bytes(data[off + 8..off + 12].try_into().unwrap_or([0; 4]));
                let payload = &data[off + 16..off + len];
                off += align4(len);
                if mseq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        let errno = if payload.len() >= 4 {
                            -i32::from_ne_bytes(payload[0..4].try_into().unwrap_or([0; 4]))
                        } else {
                            0
                        };
                        if errno == 0 {
                            return Ok(replies);
                        }
                        let mut message = io::Error::from_raw_os_error(errno).to_string();
                        if flags & NLM_F_ACK_TLVS != 0 && payload.len() >= 20 {
                            // With NETLINK_CAP_ACK the echoed request is
                            // just its 16-byte header.
                            let orig_len =
                                u32::from_ne_bytes(payload[4..8].try_into().unwrap_or([0; 4]))
                                    as usize;
                            let skip = if flags & 0x100 != 0 {
                                20
                            } else {
                                4 + align4(orig_len)
                            };
                            if let Some(ext) =
                                find_attr(payload.get(skip..).unwrap_or(&[]), NLMSGERR_ATTR_MSG)
                            {
                                let text = String::from_utf8_lossy(ext)
                                    .trim_end_matches('\0')
                                    .to_string();
                                if !text.is_empty() {
                                    message = format!("{message} ({text})");
                                }
                            }
                        }
                        return Err(NetError::Netlink {
                            op: op.to_string(),
                            errno,
                            message,
                        });
                    }
                    _ => {
                        replies.push(Reply {
                            kind,
                            payload: payload.to_vec(),
                        });
                        if flags & NLM_F_MULTI == 0 {
                            return Ok(replies);
                        }
                    }
                }
            }
        }
    }

    fn request(&mut self, msg: Msg, op: &str) -> NetResult<Vec<Reply>> {
        let seq = self.send(msg)?;
        self.receive(seq, op)
    }

    /// The index of link `name`, or `None` when there is none.
    fn link_index(&mut self, name: &str) -> NetResult<Option<i32>> {
        let mut m = Msg::new(RTM_GETLINK, 0).ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.request(m, &format!("cannot look up link `{name}`")) {
            Ok(replies) => Ok(replies
                .iter()
                .find(|r| r.kind == RTM_NEWLINK && r.payload.len() >= 16)
                .map(|r| i32::from_ne_bytes(r.payload[4..8].try_into().unwrap_or([0; 4])))),
            Err(NetError::Netlink { errno, .. }) if errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Is link `index`'s operational state `up` (carrier seen by linkwatch)?
    fn is_oper_up(&mut self, index: i32) -> NetResult<bool> {
        const IFLA_OPERSTATE: u16 = 16;
        const IF_OPER_UP: u8 = 6;
        let m = Msg::new(RTM_GETLINK, 0).ifinfo(index, 0, 0);
        let replies = self.request(m, "cannot read a link's state")?;
        Ok(replies
            .iter()
            .filter(|r| r.kind == RTM_NEWLINK && r.payload.len() >= 16)
            .filter_map(|r| find_attr(&r.payload[16..], IFLA_OPERSTATE))
            .any(|v| v.first() == Some(&IF_OPER_UP)))
    }

    /// The names of all links.
    fn link_names(&mut self) -> NetResult<Vec<String>> {
        let m = Msg::new(RTM_GETLINK, NLM_F_DUMP).ifinfo(0, 0, 0);
        let replies = self.request(m, "cannot list links")?;
        Ok(replies
            .iter()
            .filter(|r| r.kind == RTM_NEWLINK && r.payload.len() >= 16)
            .filter_map(|r| find_attr(&r.payload[16..], IFLA_IFNAME))
            .map(|b| {
                String::from_utf8_lossy(b)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .collect())
    }

    /// The IPv4 addresses of link `index` (of every link when `None`).
    fn addresses(&mut self, index: Option<i32>) -> NetResult<Vec<(Ipv4Addr, u8)>> {
        let mut m = Msg::new(RTM_GETADDR, NLM_F_DUMP);
        m.buf.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        let replies = self.request(m, "cannot list addresses")?;
        let mut out = Vec::new();
        for r in replies.iter().filter(|r| r.payload.len() >= 8) {
            let idx = i32::from_ne_bytes(r.payload[4..8].try_into().unwrap_or([0; 4]));
            if index.is_some_and(|i| i != idx) || r.payload[0] != libc::AF_INET as u8 {
                continue;
            }
            if let Some(a) = find_attr(&r.payload[8..], IFA_LOCAL) {
                if let Ok(oct) = <[u8; 4]>::try_from(a) {
                    out.push((Ipv4Addr::from(oct), r.payload[1]));
                }
            }
        }
        Ok(out)
    }

    fn set_up(&mut self, index: i32, name: &str) -> NetResult<()> {
        let m = Msg::new(RTM_NEWLINK, NLM_F_ACK).ifinfo(index, IFF_UP, IFF_UP);
        self.request(m, &format!("cannot bring `{name}` up"))?;
        Ok(())
    }

    fn set_up_by_name(&mut self, name: &str) -> NetResult<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK).ifinfo(0, IFF_UP, IFF_UP);
        m.attr_str(IFLA_IFNAME, name);
        self.request(m, &format!("cannot bring `{name}` up"))?;
        Ok(())
    }

    fn create_bridge(&mut self, name: &str) -> NetResult<()> {
        let mut m =
            Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).ifinfo(0, IFF_UP, IFF_UP);
        m.attr_str(IFLA_IFNAME, name);
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end();
        self.request(m, &format!("cannot make bridge `{name}`"))?;
        Ok(())
    }

    /// A veth pair: `name` here, port of bridge `master`, up; its peer
    /// `peer_name` made directly in the namespace `peer_ns_fd`, down.
    fn create_veth(
        &mut self,
        name: &str,
        master: Option<i32>,
        peer_name: &str,
        peer_ns_fd: i32,
    ) -> NetResult<()> {
        let mut m =
            Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).ifinfo(0, IFF_UP, IFF_UP);
        m.attr_str(IFLA_IFNAME, name);
        if let Some(master) = master {
            m.attr(IFLA_MASTER, &(master as u32).to_ne_bytes());
        }
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA);
        m.begin(VETH_INFO_PEER);
        m.ifinfo_raw(0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer_name);
        m.attr(IFLA_NET_NS_FD, &(peer_ns_fd as u32).to_ne_bytes());
        m.end();
        m.end();
        m.end();
        self.request(m, &format!("cannot make veth `{name}`"))?;
        Ok(())
    }

    /// Delete link `name`; a missing link is fine.
    fn delete_link(&mut self, name: &str) -> NetResult<()> {
        let mut m = Msg::new(RTM_DELLINK, NLM_F_ACK).ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.request(m, &format!("cannot delete link `{name}`")) {
            Ok(_) => Ok(()),
            Err(NetError::Netlink { errno, .. }) if errno == libc::ENODEV => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn add_address(&mut self, index: i32, addr: Ipv4Addr, prefix_len: u8) -> NetResult<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
        m.buf
            .extend_from_slice(&[libc::AF_INET as u8, prefix_len, 0, RT_SCOPE_UNIVERSE]);
        m.buf.extend_from_slice(&(index as u32).to_ne_bytes());
        m.attr(IFA_LOCAL, &addr.octets());
        m.attr(IFA_ADDRESS, &addr.octets());
        if prefix_len < 31 {
            let mask = if prefix_len == 0 {
                0
            } else {
                u32::MAX << (32 - prefix_len)
            };
            let bcast = Ipv4Addr::from(u32::from(addr) | !mask);
            m.attr(IFA_BROADCAST, &bcast.octets());
        }
        self.request(m, &format!("cannot add address `{addr}/{prefix_len}`"))?;
        Ok(())
    }

    /// Add (`add`) or delete an IPv4 policy rule. Adding an existing rule
    /// and deleting a missing one succeed.
    fn rule(
        &mut self,
        add: bool,
        priority: u32,
        iif: Option<&str>,
        dst: Option<Ipv4Addr>,
        action: u8,
        table: u8,
    ) -> NetResult<()> {
        let (kind, flags) = if add {
            (RTM_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
        } else {
            (RTM_DELRULE, NLM_F_ACK)
        };
        let mut m = Msg::new(kind, flags);
        let dst_len = if dst.is_some() { 32 } else { 0 };
        m.buf
            .extend_from_slice(&[libc::AF_INET as u8, dst_len, 0, 0, table, 0, 0, action]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        m.attr(FRA_PRIORITY, &priority.to_ne_bytes());
        if let Some(i) = iif {
            m.attr_str(FRA_IIFNAME, i);
        }
        if let Some(d) = dst {
            m.attr(FRA_DST, &d.octets());
        }
        match self.request(m, &format!("cannot change policy rule {priority}")) {
            Ok(_) => Ok(()),
            Err(NetError::Netlink { errno, .. })
                if (add && errno == libc::EEXIST) || (!add && errno == libc::ENOENT) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn add_default_route(&mut self, index: i32, gateway: Ipv4Addr) -> NetResult<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
        m.buf.extend_from_slice(&[
            libc::AF_INET as u8,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets());
        m.attr(RTA_OIF, &(index as u32).to_ne_bytes());
        self.request(m, &format!("cannot add the default route via `{gateway}`"))?;
        Ok(())
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The payload of the first attribute of type `kind` in `attrs`.
fn find_attr(attrs: &[u8], kind: u16) -> Option<&[u8]> {
    let mut off = 0;
    while off + 4 <= attrs.len() {
        let len = u16::from_ne_bytes([attrs[off], attrs[off + 1]]) as usize;
        let k = u16::from_ne_bytes([attrs[off + 2], attrs[off + 3]]) & 0x3fff;
        if len < 4 || off + len > attrs.len() {
            return None;
        }
        if k == kind {
            return Some(&attrs[off + 4..off + len]);
        }
        off += align4(len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_aligned_and_nested() {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK).ifinfo(0, IFF_UP, IFF_UP);
        m.attr_str(IFLA_IFNAME, "tgb0");
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end();
        assert_eq!(m.buf.len() % 4, 0);
        let attrs = &m.buf[32..];
        assert_eq!(find_attr(attrs, IFLA_IFNAME), Some(&b"tgb0\0"[..]));
        let info = find_attr(attrs, IFLA_LINKINFO).unwrap();
        assert_eq!(find_attr(info, IFLA_INFO_KIND), Some(&b"bridge\0"[..]));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
    }

    /// Real netlink in a throwaway namespace: bridge, address, listing.
    #[test]
    fn netlink_round_trip_in_a_private_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).unwrap();
            let mut nl = Netlink::open().unwrap();
            nl.set_up_by_name("lo").unwrap();
            nl.create_bridge("tgbtest").unwrap();
            assert!(matches!(
                nl.create_bridge("tgbtest"),
                Err(NetError::Netlink { errno, .. }) if errno == libc::EEXIST
            ));
            let idx = nl.link_index("tgbtest").unwrap().unwrap();
            nl.add_address(idx, Ipv4Addr::new(10, 9, 0, 1), 24).unwrap();
            assert_eq!(
                nl.addresses(Some(idx)).unwrap(),
                [(Ipv4Addr::new(10, 9, 0, 1), 24)]
            );
            assert!(nl.link_names().unwrap().contains(&"tgbtest".to_string()));
            // A veth whose peer is made directly in another namespace.
            let other = std::thread::spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET).unwrap();
                File::open("/proc/thread-self/ns/net").unwrap()
            })
            .join()
            .unwrap();
            nl.create_veth("tgvtest", Some(idx), "eth0", other.as_raw_fd())
                .unwrap();
            assert!(nl.link_index("tgvtest").unwrap().is_some());
            nl.delete_link("tgbtest").unwrap();
            nl.delete_link("tgbtest").unwrap();
            assert_eq!(nl.link_index("tgbtest").unwrap(), None);
        })
        .join()
        .unwrap();
    }
}
