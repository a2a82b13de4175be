//! The `netns` platform: local nodes made of Linux namespaces.
//!
//! A session gets a router network namespace holding one bridge per
//! network; a node is a set of persistent namespaces (no process of its
//! own) linked to its networks by veth pairs. Everything a session makes
//! carries its tag `sid` (from the lineage), so two sessions of the same
//! testbed, with the same CIDRs, run side by side, and `sweep` finds every
//! leftover after a crash. Root is required.
//!
//! This file is the [`Platform`] driver: it checks specs at plan time and
//! turns requests into calls of the modules below, on blocking threads.
//! Layout (each file owns one concern):
//! - `names`: host object names derived from the session and instance.
//! - `net`: per-session router namespace, bridges, veths, isolation, NAT,
//!   and the host-wide lock and record of host settings.
//! - `locks`: per-session locks of one platform instance.
//! - `files`: files and folders made with explicit modes.
//! - `node`: a node's persistent namespaces and overlay root filesystem.
//! - `image`: image resolution and building (`host`, `debian:RELEASE`, `dir:PATH`).
//! - `cgroup`: cpu and memory limits.
//! - `exec`: running a command inside a node.
//! - `package`: installing packages inside a node's root filesystem.
//!
//! `nat = true` gives a network egress through an uplink from the router
//! to the host (see `net::nat`); it needs `iptables` and turns on IPv4
//! forwarding on the host while any session uses it.
//!
//! The platform holds no process-wide state: per-session locks and bridge
//! hints live in the instance, host-wide work takes the host lock (a file
//! lock, so it holds between processes too).

pub mod cgroup;
pub mod driver;
pub mod exec;
pub mod files;
pub mod image;
pub mod locks;
pub mod names;
pub mod net;
pub mod node;
pub mod package;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use nix::mount::{umount2, MntFlags};
use serde::{Deserialize, Serialize};

use crate::addrs::ResourceKind;
use crate::platform::{
    Capability, CreateRequest, CreateResponse, DeleteRequest, ExecRequest, ExecStatus, NetworkSpec,
    NodeSpec, PackageSpec, Platform, PlatformError, PlatformResult, ReadRequest, ReadResponse,
    SessionRef, SessionSync, Spec, UpdateRequest,
};

/// Options of the netns platform.
#[derive(Debug, Clone)]
pub struct NetnsOptions {
    /// Where per-session runtime data lives (default `/run/tg`).
    pub run_dir: PathBuf,
    /// Where built images are cached (default `/var/lib/tg/images`).
    pub image_dir: PathBuf,
    /// Where the state every tg on the host shares lives: the host lock
    /// and the record of host settings tg changed (default `/run/tg`).
    /// Keep it the same for every tg on a host, even when `run_dir` is
    /// elsewhere (as in tests).
    pub host_dir: PathBuf,
}

impl Default for NetnsOptions {
    fn default() -> Self {
        NetnsOptions {
            run_dir: PathBuf::from("/run/tg"),
            image_dir: PathBuf::from("/var/lib/tg/images"),
            host_dir: PathBuf::from("/run/tg"),
        }
    }
}

/// The netns platform driver. Clones share their locks.
#[derive(Debug, Clone)]
pub struct NetnsPlatform {
    pub options: NetnsOptions,
    /// `netns`, or the name of a `platform "netns" "NAME"` block.
    name: String,
    shared: Arc<Shared>,
}

/// What the clones of one platform instance share (and the platforms one
/// driver makes: they work on the same host objects).
#[derive(Debug, Default)]
struct Shared {
    sessions: locks::SessionLocks,
    bridges: net::links::BridgeHints,
}

impl NetnsPlatform {
    pub fn new(options: NetnsOptions) -> NetnsPlatform {
        NetnsPlatform {
            options,
            name: "netns".to_string(),
            shared: Arc::default(),
        }
    }

    /// The same platform under another name (sharing its locks).
    pub fn named(mut self, name: &str) -> NetnsPlatform {
        self.name = name.to_string();
        self
    }

    fn host(&self) -> net::host::Host {
        net::host::Host::new(&self.options.host_dir)
    }

    fn session_lock(&self, sid: &str) -> locks::SessionLock {
        self.shared.sessions.session(sid)
    }
}

/// Why this host cannot run the netns platform at all, given the effective
/// user id and the operating system (`std::env::consts::OS`).
pub fn host_refusal(euid: u32, os: &str) -> Option<String> {
    if os != "linux" {
        return Some(format!(
            "the netns platform needs Linux, this is `{os}`: choose another platform"
        ));
    }
    if euid != 0 {
        return Some(
            "the netns platform needs root to make or change nodes: run tg as root (for example with sudo)".into(),
        );
    }
    None
}

/// What a node's `private` value records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodePrivate {
    pub sid: String,
    /// The node's persisted network namespace.
    pub netns: PathBuf,
    /// The node's runtime folder.
    pub dir: PathBuf,
    /// Router-side veth names, in interface order (`eth0` first).
    pub veths: Vec<String>,
}

/// The router-side veth names of a node's interfaces, in order.
fn node_veths(sid: &str, spec: &NodeSpec) -> Vec<String> {
    spec.interfaces
        .iter()
        .enumerate()
        .map(|(i, iface)| {
            names::veth_name(sid, &iface.network, &spec.hostname, &names::node_ifname(i))
        })
        .collect()
}

async fn blocking<T, F>(f: F) -> PlatformResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> PlatformResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PlatformError::new(format!("internal error in the netns platform: {e}")))?
}

fn to_private<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

impl NetnsPlatform {
    fn sid(session: &SessionRef) -> String {
        names::sid(&session.lineage)
    }

    fn create_network(
        &self,
        session: &SessionRef,
        spec: &NetworkSpec,
    ) -> PlatformResult<CreateResponse> {
        let sid = Self::sid(session);
        let lock = self.session_lock(&sid);
        let held = lock.lock();
        let run_dir = &self.options.run_dir;
        let mut private = net::create_network(&held, run_dir, session, spec)?;
        if spec.nat {
            private.nat_via = Some(net::enable_nat(
                &held,
                &self.host(),
                run_dir,
                &sid,
                &spec.name,
            )?);
        }
        Ok(CreateResponse {
            private: to_private(&private),
        })
    }

    /// Turn NAT on or off for an existing network, as `spec.nat` says.
    fn set_nat(&self, session: &SessionRef, spec: &NetworkSpec) -> PlatformResult<CreateResponse> {
        let run_dir = &self.options.run_dir;
        let sid = Self::sid(session);
        let lock = self.session_lock(&sid);
        let held = lock.lock();
        if net::network_addresses(run_dir, &sid, &spec.name)?.is_none() {
            return Err(PlatformError::new(format!(
                "network `{}` does not exist on this host: run `tg apply` to make it",
                spec.name
            )));
        }
        let nat_via = if spec.nat {
            Some(net::enable_nat(
                &held,
                &self.host(),
                run_dir,
                &sid,
                &spec.name,
            )?)
        } else {
            net::disable_nat(&held, &self.host(), run_dir, &sid, &spec.name)?;
            None
        };
        Ok(CreateResponse {
            private: to_private(&net::NetworkPrivate {
                bridge: names::bridge_name(&sid, &spec.name),
                router: net::router_netns_path(run_dir, &sid),
                nat_via,
            }),
        })
    }

    fn create_node(&self, sid: &str, spec: &NodeSpec) -> PlatformResult<CreateResponse> {
        let run_dir = &self.options.run_dir;
        let lock = self.session_lock(sid);
        let paths = node::create_node(&lock, &self.options, sid, spec)?;
        let veths = node_veths(sid, spec);
        let result = (|| -> PlatformResult<()> {
            for (i, (iface, veth)) in spec.interfaces.iter().zip(&veths).enumerate() {
                let ifname = names::node_ifname(i);
                let plug = net::links::Plug {
                    network: &iface.network,
                    node_netns: &paths.netns,
                    veth,
                    ifname_in_node: &ifname,
                    address: iface.address,
                    prefix_len: iface.prefix_len,
                    gateway: (i == 0).then_some(iface.gateway),
                };
                net::attach(&lock, &self.shared.bridges, run_dir, sid, &plug)?;
            }
            // `create_node` applied the limits already; this only matters
            // if it ever stops doing so.
            if spec.cpus.is_some() || spec.memory_mib.is_some() {
                cgroup::apply(sid, spec)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Leave nothing half made behind.
            let _ = net::detach(run_dir, sid, &veths);
            cgroup::remove(sid, &spec.hostname);
            let _ = node::delete_node(&paths);
            return Err(e);
        }
        let private = NodePrivate {
            sid: sid.to_string(),
            netns: paths.netns.clone(),
            dir: paths.dir.clone(),
            veths,
        };
        Ok(CreateResponse {
            private: to_private(&private),
        })
    }

    fn delete_node(&self, sid: &str, spec: &NodeSpec) -> PlatformResult<()> {
        let run_dir = &self.options.run_dir;
        let paths = node::node_paths(run_dir, sid, &spec.hostname);
        let deleted = node::delete_node(&paths);
        cgroup::remove(sid, &spec.hostname);
        // Once the node's namespace is released the kernel destroys its veth
        // pairs itself, in batches (deleting them one by one here costs
        // a third of a 100-node destroy). Only when the node could not be
        // fully deleted are its veths taken off the bridges explicitly.
        if deleted.is_err() || paths.netns.exists() {
            net::detach(run_dir, sid, &node_veths(sid, spec))?;
        }
        deleted
    }

    fn read_node(&self, sid: &str, spec: &NodeSpec) -> PlatformResult<ReadResponse> {
        let run_dir = &self.options.run_dir;
        let paths = node::node_paths(run_dir, sid, &spec.hostname);
        if !node::node_exists(&paths) {
            return Ok(ReadResponse::Gone);
        }
        let veths = node_veths(sid, spec);
        let links = net::links::links_present(run_dir, sid, &veths)?;
        let mut seen = spec.clone();
        seen.interfaces = spec
            .interfaces
            .iter()
            .zip(veths)
            .filter(|(_, veth)| links.contains(veth))
            .map(|(iface, _)| iface.clone())
            .collect();
        Ok(ReadResponse::Present {
            spec: Spec::Node(seen),
        })
    }

    fn read_network(&self, sid: &str, spec: &NetworkSpec) -> PlatformResult<ReadResponse> {
        // A bridge without its gateway address is as good as gone: create
        // makes it whole again.
        match net::network_addresses(&self.options.run_dir, sid, &spec.name)? {
            Some(addrs) if addrs.contains(&(spec.gateway, spec.cidr.prefix_len())) => {
                let mut seen = spec.clone();
                seen.nat = spec.nat && net::uplink_exists(sid);
                Ok(ReadResponse::Present {
                    spec: Spec::Network(seen),
                })
            }
            _ => Ok(ReadResponse::Gone),
        }
    }

    fn node_paths_checked(&self, sid: &str, hostname: &str) -> PlatformResult<node::NodePaths> {
        let paths = node::node_paths(&self.options.run_dir, sid, hostname);
        if !node::node_exists(&paths) {
            return Err(PlatformError::new(format!(
                "node `{hostname}` does not exist on this host: run `tg apply` to make it"
            )));
        }
        Ok(paths)
    }

    fn install_package(
        &self,
        session: &SessionRef,
        spec: &PackageSpec,
    ) -> PlatformResult<CreateResponse> {
        let sid = Self::sid(session);
        let paths = self.node_paths_checked(&sid, &spec.node)?;
        package::install(&paths, spec, &session.testbed_dir)?;
        Ok(CreateResponse {
            private: serde_json::json!({ "node": spec.node }),
        })
    }

    fn read_package(&self, sid: &str, spec: &PackageSpec) -> PlatformResult<ReadResponse> {
        let paths = node::node_paths(&self.options.run_dir, sid, &spec.node);
        if !node::node_exists(&paths) {
            return Ok(ReadResponse::Gone);
        }
        let Some(installed) = package::installed_version(&paths, &spec.name)? else {
            return Ok(ReadResponse::Gone);
        };
        let mut seen = spec.clone();
        if spec
            .version
            .as_deref()
            .is_some_and(|want| want != installed)
        {
            seen.version = Some(installed);
        }
        Ok(ReadResponse::Present {
            spec: Spec::Package(seen),
        })
    }

    fn delete_package(&self, sid: &str, spec: &PackageSpec) -> PlatformResult<()> {
        let paths = node::node_paths(&self.options.run_dir, sid, &spec.node);
        if !node::node_exists(&paths) {
            return Ok(());
        }
        package::remove(&paths, &spec.name)
    }

    /// Once the session has no router and no node left, remove its
    /// runtime folder (never when anything is mounted under it).
    fn tidy_session_dir(&self, _held: &locks::SessionHeld, sid: &str) {
        let run_dir = &self.options.run_dir;
        let sdir = names::session_dir(run_dir, sid);
        if net::router_exists(run_dir, sid) || !dir_names(&sdir.join("nodes")).is_empty() {
            return;
        }
        // No node is left: this only unmounts the session's namespace folder.
        let _ = node::sweep_session_nodes(run_dir, sid);
        if net::mount_points_under(&sdir).is_empty() {
            let _ = remove_tree_same_fs(&sdir);
        }
    }

    /// Remove every host object of session `sid`; describe what went.
    /// Best effort: a failure does not stop the rest; the error lists
    /// every failure and what was removed.
    pub fn sweep_sid(&self, sid: &str) -> PlatformResult<Vec<String>> {
        let run_dir = &self.options.run_dir;
        let sdir = names::session_dir(run_dir, sid);
        let prefix = names::session_prefix(sid);
        let mut removed = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        let mut note = |e: PlatformError| {
            problems.push(match &e.detail {
                Some(d) if !d.is_empty() => format!("{e}: {d}"),
                _ => e.to_string(),
            })
        };

        // Nodes: known by their runtime folders, namespace files, netns
        // names and cgroups.
        let mut hostnames = BTreeSet::new();
        for (dir, strip_ext) in [(sdir.join("nodes"), false), (sdir.join("ns"), true)] {
            for name in dir_names(&dir) {
                let host = if strip_ext {
                    name.rsplit_once('.')
                        .map(|(h, _)| h.to_string())
                        .unwrap_or(name)
                } else {
                    name
                };
                hostnames.insert(host);
            }
        }
        let netns_files: Vec<String> = dir_names(Path::new("/run/netns"))
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        for n in &netns_files {
            hostnames.insert(n[prefix.len()..].to_string());
        }
        for cg in cgroup_dirs(&prefix) {
            if let Some(name) = cg.file_name().and_then(|n| n.to_str()) {
                hostnames.insert(name[prefix.len()..].to_string());
            }
        }
        hostnames.retain(|h| names::check_hostname(h).is_ok());
        let host = self.host();

        // Router-side veths first, so no link outlives its node.
        let links = net::existing_links(run_dir, sid).unwrap_or_default();
        let veths: Vec<String> = links
            .iter()
            .filter(|l| l.starts_with("tgv"))
            .cloned()
            .collect();
        if let Err(e) = net::detach(run_dir, sid, &veths) {
            note(e.into());
        }
        for host in &hostnames {
            let paths = node::node_paths(run_dir, sid, host);
            let existed = node::node_exists(&paths) || paths.dir.exists();
            if let Err(e) = node::delete_node(&paths) {
                note(e);
                continue;
            }
            cgroup::remove(sid, host);
            if existed {
                removed.push(format!(
                    "node `{host}` ({})",
                    names::node_netns_name(sid, host)
                ));
            }
        }
        // Whatever the loop above did not know of, and the session's
        // namespace folder.
        match node::sweep_session_nodes(run_dir, sid) {
            Ok(hosts) => removed.extend(
                hosts
                    .iter()
                    .map(|h| format!("node `{h}` ({})", names::node_netns_name(sid, h))),
            ),
            Err(e) => note(e),
        }
        for l in links.iter().filter(|l| l.starts_with("tgb")) {
            removed.push(format!("bridge `{l}`"));
        }
        let had_uplink = net::uplink_exists(sid);
        match net::remove_router(&host, run_dir, sid) {
            Ok(true) => removed.push(format!(
                "router namespace `{}`",
                names::router_netns_name(sid)
            )),
            Ok(false) => {}
            Err(e) => note(e.into()),
        }
        if had_uplink {
            removed.push(format!("uplink `{}`", names::uplink_name(sid)));
        }
        // Rules left without an uplink, and the session's use of host
        // forwarding (a crash may have left either).
        match net::remove_host_rules(&host, sid) {
            Ok(rules) => removed.extend(rules),
            Err(e) => note(e.into()),
        }
        if let Err(e) = net::nat::remove_uplink_host_side(&host, sid) {
            note(e.into());
        }
        for n in &netns_files {
            let p = Path::new("/run/netns").join(n);
            if p.exists() {
                let _ = umount2(&p, MntFlags::MNT_DETACH);
                let _ = fs::remove_file(&p);
                removed.push(format!("namespace `{n}`"));
            }
        }
        for m in net::mount_points_under(&sdir) {
            if umount2(&m, MntFlags::MNT_DETACH).is_ok() {
                removed.push(format!("mount `{}`", m.display()));
            }
        }
        if sdir.exists() {
            match remove_tree_same_fs(&sdir) {
                Ok(()) => removed.push(format!("runtime folder `{}`", sdir.display())),
                Err(e) => note(PlatformError::new(format!(
                    "cannot remove `{}`: {e}",
                    sdir.display()
                ))),
            }
        }
        if problems.is_empty() {
            return Ok(removed);
        }
        let mut detail = problems.join("\n");
        if !removed.is_empty() {
            detail.push_str("\nremoved: ");
            detail.push_str(&removed.join(", "));
        }
        Err(PlatformError::new(format!(
            "could not remove everything of session `{sid}`: {}{}",
            problems[0],
            match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more problems)", n - 1),
            }
        ))
        .with_detail(detail))
    }
}

/// Plan-time warnings about network `n` on this host, given whether
/// `iptables` is installed and the host's routes.
fn network_warnings(
    n: &NetworkSpec,
    have_iptables: bool,
    routes: &[net::host::HostRoute],
) -> Vec<String> {
    let mut out = Vec::new();
    if n.nat && !have_iptables {
        out.push(format!(
            "network `{}`: `nat = true` needs `iptables` on this host: install the `iptables` package, or set `nat = false`",
            n.name
        ));
    }
    for r in net::host::overlapping(&n.cidr, routes) {
        out.push(format!(
            "network `{}`: cidr `{}` overlaps the host's route to `{}` (dev `{}`): {}; choose a cidr the host does not use",
            n.name,
            n.cidr,
            r.dest,
            r.dev,
            if n.nat {
                "nodes cannot reach those host-side addresses through nat"
            } else {
                "nodes are apart from the host, but would not reach those addresses if the network got `nat = true`"
            }
        ));
    }
    out
}

/// A node spec with its cgroup limits blanked (what must not change for
/// an in-place update).
fn without_limits(spec: &NodeSpec) -> NodeSpec {
    NodeSpec {
        cpus: None,
        memory_mib: None,
        ..spec.clone()
    }
}

/// Is `tool` an executable in `PATH`?
fn tool_exists(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            fs::metadata(d.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Names of the entries of `dir` (none when it cannot be read).
fn dir_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Cgroup folders named `prefix*` under `/sys/fs/cgroup` (v2) and its v1
/// controller hierarchies.
fn cgroup_dirs(prefix: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut roots = vec![root.to_path_buf()];
    roots.extend(dir_names(root).into_iter().map(|n| root.join(n)));
    let mut found = Vec::new();
    for r in roots {
        for n in dir_names(&r) {
            if n.starts_with(prefix) {
                found.push(r.join(n));
            }
        }
    }
    found
}

/// Remove `root` recursively without ever crossing into another file
/// system (a mount left behind must not lose its files).
fn remove_tree_same_fs(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::symlink_metadata(root)?.dev();
    fn walk(p: &Path, dev: u64) -> std::io::Result<()> {
        let meta = fs::symlink_metadata(p)?;
        if meta.is_dir() {
            if meta.dev() != dev {
                return Err(std::io::Error::other(format!(
                    "`{}` is still a mount point",
                    p.display()
                )));
            }
            for e in fs::read_dir(p)? {
                walk(&e?.path(), dev)?;
            }
            fs::remove_dir(p)
        } else {
            fs::remove_file(p)
        }
    }
    walk(root, dev)
}

#[async_trait]
impl Platform for NetnsPlatform {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "netns"
    }

    fn can_share_network_with(&self, other: &str) -> bool {
        // Every netns platform of this process makes its objects on this
        // host, in the session's router namespace.
        other == self.name || other == "netns"
    }

    fn max_parallelism(&self) -> usize {
        16
    }

    fn describe(&self) -> String {
        "local nodes from Linux namespaces, of the images `host`, `debian:RELEASE` and `dir:PATH`"
            .into()
    }

    fn host_problem(&self) -> Option<String> {
        host_refusal(nix::unistd::geteuid().as_raw(), std::env::consts::OS)
    }

    fn check_node(&self, spec: &NodeSpec) -> Capability {
        // Root is needed to apply, not to plan: see `host_problem`.
        let refused = names::check_hostname(&spec.hostname)
            .err()
            .or_else(|| image::check(&spec.image, &self.options.image_dir).err());
        let warnings = if refused.is_none() {
            cgroup::check(spec)
        } else {
            Vec::new()
        };
        Capability { refused, warnings }
    }

    fn check_spec(&self, spec: &Spec) -> Vec<String> {
        let Spec::Network(n) = spec else {
            return Vec::new();
        };
        network_warnings(n, tool_exists("iptables"), &net::host::host_routes())
    }

    fn updatable(&self, kind: ResourceKind) -> &'static [&'static str] {
        match kind {
            ResourceKind::Package => &["version"],
            ResourceKind::Node => &["cpus", "memory_mib"],
            ResourceKind::Network => &["nat"],
        }
    }

    async fn create(&self, req: CreateRequest) -> PlatformResult<CreateResponse> {
        let this = self.clone();
        blocking(move || {
            let sid = Self::sid(&req.session);
            match &req.spec {
                Spec::Network(n) => this.create_network(&req.session, n),
                Spec::Node(n) => this.create_node(&sid, n),
                Spec::Package(p) => this.install_package(&req.session, p),
            }
        })
        .await
    }

    async fn read(&self, req: ReadRequest) -> PlatformResult<ReadResponse> {
        let this = self.clone();
        blocking(move || {
            let sid = Self::sid(&req.session);
            match &req.spec {
                Spec::Network(n) => this.read_network(&sid, n),
                Spec::Node(n) => this.read_node(&sid, n),
                Spec::Package(p) => this.read_package(&sid, p),
            }
        })
        .await
    }

    async fn update(&self, req: UpdateRequest) -> PlatformResult<CreateResponse> {
        let this = self.clone();
        blocking(move || match (&req.before, &req.after) {
            (Spec::Package(_), Spec::Package(after)) => this.install_package(&req.session, after),
            (Spec::Network(before), Spec::Network(after))
                if NetworkSpec {
                    nat: after.nat,
                    ..before.clone()
                } == *after =>
            {
                this.set_nat(&req.session, after)
            }
            (Spec::Node(before), Spec::Node(after))
                if without_limits(before) == without_limits(after) =>
            {
                let sid = Self::sid(&req.session);
                this.node_paths_checked(&sid, &after.hostname)?;
                cgroup::apply(&sid, after)?;
                Ok(CreateResponse {
                    private: req.private.clone(),
                })
            }
            _ => Err(PlatformError::new(format!(
                "`{}` cannot be changed in place on the netns platform: it must be replaced",
                req.address
            ))),
        })
        .await
    }

    async fn delete(&self, req: DeleteRequest) -> PlatformResult<()> {
        let this = self.clone();
        blocking(move || {
            let sid = Self::sid(&req.session);
            match &req.spec {
                Spec::Network(n) => {
                    let host = this.host();
                    let lock = this.session_lock(&sid);
                    let held = lock.lock();
                    let run_dir = &this.options.run_dir;
                    if n.nat {
                        net::disable_nat(&held, &host, run_dir, &sid, &n.name)?;
                    }
                    net::delete_network(&held, &host, &this.shared.bridges, run_dir, &sid, n)?;
                    this.tidy_session_dir(&held, &sid);
                    Ok(())
                }
                Spec::Node(n) => this.delete_node(&sid, n),
                Spec::Package(p) => this.delete_package(&sid, p),
            }
        })
        .await
    }

    async fn exec(&self, req: ExecRequest) -> PlatformResult<ExecStatus> {
        // Collected, then sent whole: streaming, stdin, signals and
        // timeouts come with the node sandbox.
        let this = self.clone();
        let (session, hostname, argv) = (
            req.session.clone(),
            req.spec.hostname.clone(),
            req.argv.clone(),
        );
        let out = blocking(move || {
            let sid = Self::sid(&session);
            let paths = this.node_paths_checked(&sid, &hostname)?;
            exec::exec(&paths, &sid, &hostname, &argv)
        })
        .await?;
        if !out.stdout.is_empty() {
            let _ = req.io.stdout.send(out.stdout).await;
        }
        if !out.stderr.is_empty() {
            let _ = req.io.stderr.send(out.stderr).await;
        }
        Ok(ExecStatus {
            exit_code: out.exit_code,
            timed_out: false,
        })
    }

    async fn sync_session(&self, req: SessionSync) -> PlatformResult<()> {
        let Some(session) = req.session else {
            return Ok(());
        };
        let this = self.clone();
        blocking(move || {
            let sid = Self::sid(&session);
            if req.nodes.is_empty() {
                // No node is left to read the file.
                return Ok(());
            }
            let hosts: BTreeMap<String, Vec<Ipv4Addr>> = req
                .nodes
                .into_iter()
                .map(|(host, addrs)| (host, addrs.into_values().collect()))
                .collect();
            node::write_session_hosts(&this.options.run_dir, &sid, &hosts)
        })
        .await
    }

    async fn sweep(&self, session: &SessionRef) -> PlatformResult<Vec<String>> {
        let this = self.clone();
        let sid = Self::sid(session);
        blocking(move || this.sweep_sid(&sid)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_root_and_non_linux() {
        assert_eq!(host_refusal(0, "linux"), None);
        let r = host_refusal(1000, "linux").unwrap();
        assert!(r.contains("needs root") && r.contains("as root"), "{r}");
        let r = host_refusal(0, "macos").unwrap();
        assert!(r.contains("needs Linux") && r.contains("`macos`"), "{r}");
    }

    #[test]
    fn networks_get_plan_time_warnings() {
        let mut n = NetworkSpec {
            name: "lab".into(),
            cidr: "10.0.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            nat: true,
        };
        let msgs = network_warnings(&n, false, &[]);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].contains("`nat = true`") && msgs[0].contains("`lab`"));
        assert!(network_warnings(&n, true, &[]).is_empty());
        let routes = net::host::parse_proc_route(
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
             eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\n\
             eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\n",
        );
        let msgs = network_warnings(&n, true, &routes);
        assert_eq!(
            msgs.len(),
            1,
            "only the 10.0.0.0/16 route, not the default: {msgs:?}"
        );
        assert!(
            msgs[0]
                .contains("`10.0.0.0/24` overlaps the host's route to `10.0.0.0/16` (dev `eth0`)")
                && msgs[0].contains("through nat"),
            "{}",
            msgs[0]
        );
        n.nat = false;
        n.cidr = "10.1.0.0/24".parse().unwrap();
        assert!(network_warnings(&n, false, &routes).is_empty());
        // The platform reads this host's routes itself.
        let p = NetnsPlatform::new(NetnsOptions::default());
        let _ = p.check_spec(&Spec::Network(n));
    }

    #[test]
    fn veth_names_follow_interface_order() {
        let spec = NodeSpec {
            settings: Default::default(),
            host: None,
            hostname: "edge-0".into(),
            image: "host".into(),
            cpus: None,
            memory_mib: None,
            labels: BTreeMap::new(),
            interfaces: vec![
                crate::platform::Interface {
                    network: "a".into(),
                    address: Ipv4Addr::new(10, 0, 0, 2),
                    prefix_len: 24,
                    gateway: Ipv4Addr::new(10, 0, 0, 1),
                },
                crate::platform::Interface {
                    network: "b".into(),
                    address: Ipv4Addr::new(10, 1, 0, 2),
                    prefix_len: 24,
                    gateway: Ipv4Addr::new(10, 1, 0, 1),
                },
            ],
        };
        let v = node_veths("abcd0123", &spec);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], names::veth_name("abcd0123", "a", "edge-0", "eth0"));
        assert_eq!(v[1], names::veth_name("abcd0123", "b", "edge-0", "eth1"));
    }
}
