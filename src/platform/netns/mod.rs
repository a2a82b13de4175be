//! The `netns` platform: local nodes made of Linux namespaces.
//!
//! A session gets a router network namespace holding one bridge per
//! network; a node is a sandbox (its own init as PID 1 of its own PID,
//! mount, network, UTS, IPC and cgroup namespaces, Docker's capabilities
//! and seccomp profile) linked to its networks by veth pairs. Everything a session makes
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
//! - `node`: a node's init, namespaces and overlay root filesystem.
//! - `init`: the node's init program (`tg-init`), which builds its root.
//! - `sandbox`: capabilities, seccomp filters and masked host secrets.
//! - `image`: image resolution and building (`host`, `debian:RELEASE`, `dir:PATH`).
//! - `cgroup`: cpu, memory and pids limits, device rules.
//! - `exec`: running a command inside a node (streamed, pty, signals).
//! - `package`: installing packages inside a node's sandbox.
//! - `sshd`: a node's OpenSSH server (host key, config, readiness).
//! - `impair`: tc qdiscs on the router side of a node's links (`impair`).
//! - `readiness`: `wait_for` checks, run as the last step of a create.
//!
//! `nat = true` gives a network egress through an uplink from the router
//! to the host (see `net::nat`); it needs `iptables` and turns on IPv4
//! forwarding on the host while any session uses it.
//!
//! The platform holds no process-wide state: per-session locks and bridge
//! hints live in the instance, host-wide work takes the host lock (a file
//! lock, so it holds between processes too).

pub mod capture;
pub mod cgroup;
pub mod driver;
pub mod exec;
pub mod image;
pub mod impair;
pub mod init;
pub mod locks;
pub mod names;
pub mod net;
pub mod node;
pub mod package;
pub mod readiness;
pub mod sandbox;
pub mod sshd;

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use nix::mount::{umount2, MntFlags};
use serde::{Deserialize, Serialize};

use crate::addrs::ResourceKind;
use crate::platform::{
    Cancel, Capability, CaptureRequest, CaptureTarget, CreateRequest, CreateResponse,
    DeleteRequest, Dependency, ExecRequest, ExecStatus, NetworkSpec, NodeSpec, PackageSpec,
    Platform, PlatformError, PlatformResult, ReadRequest, ReadResponse, SessionRef, SessionSync,
    Spec, UpdateRequest,
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
    /// The node init program; `None`: `tg-init` next to the running
    /// program (where `cargo build` and `cargo install` put it).
    pub init: Option<PathBuf>,
    /// More host paths no node may see (pool identity files, a state file
    /// kept elsewhere), besides the host's credentials, the run and host
    /// folders and the testbed's `.tg`.
    pub secrets: Vec<PathBuf>,
    /// Confine nodes (capabilities, seccomp, masked `/proc`, device
    /// rules). Only benchmarks turn it off, to measure what it costs.
    pub sandbox: bool,
}

impl Default for NetnsOptions {
    fn default() -> Self {
        NetnsOptions {
            run_dir: PathBuf::from("/run/tg"),
            image_dir: PathBuf::from("/var/lib/tg/images"),
            host_dir: PathBuf::from("/run/tg"),
            init: None,
            secrets: Vec::new(),
            sandbox: true,
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
    /// The seccomp filters, compiled on first use.
    filters: OnceLock<Result<sandbox::Filters, String>>,
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

    /// The node init program to run.
    fn init_program(&self) -> PlatformResult<PathBuf> {
        if let Some(p) = &self.options.init {
            return Ok(p.clone());
        }
        let exe = std::env::current_exe().map_err(|e| {
            PlatformError::new(format!(
                "cannot find the running program (for `tg-init`): {e}"
            ))
        })?;
        let init = exe.with_file_name("tg-init");
        if init.is_file() {
            Ok(init)
        } else {
            Err(PlatformError::new(format!(
                "the node init `tg-init` is missing: expected it at `{}`, next to `{}`; \
                 `cargo build` and `cargo install` make both",
                init.display(),
                exe.display()
            )))
        }
    }

    /// What processes entering node `node` get.
    fn sandbox_of(&self, node: &node::Node) -> PlatformResult<Arc<sandbox::Sandbox>> {
        if node.record.privileged || !self.options.sandbox {
            return Ok(Arc::new(sandbox::Sandbox::new(None, None)));
        }
        let filters = self
            .shared
            .filters
            .get_or_init(sandbox::Filters::compile)
            .as_ref()
            .map_err(|e| PlatformError::new(format!("cannot make the seccomp filter: {e}")))?;
        Ok(Arc::new(sandbox::Sandbox::new(
            Some(sandbox::node_caps(node.record.devices)),
            Some(filters),
        )))
    }

    /// tg's own files no node may see for this session.
    /// Whether a node's image can run the SSH server it asks for: `ssh =
    /// true` on an image without one is refused, unset gets a warning (the
    /// node runs without one). A `debian:` image not built yet gets one.
    fn check_ssh(
        &self,
        spec: &NodeSpec,
        mut warnings: Vec<String>,
    ) -> (Option<String>, Vec<String>) {
        if spec.settings.ssh == Some(false) {
            return (None, warnings);
        }
        let Some(lower) = image::cached_root(&spec.image, &self.options.image_dir) else {
            return (None, warnings);
        };
        if sshd::image_has_sshd(&lower) {
            return (None, warnings);
        }
        let how = if spec.image == "host" {
            "install it on the host (`apt-get install openssh-server`)".to_string()
        } else {
            format!("add `openssh-server` to the image (`{}`)", lower.display())
        };
        let missing = format!(
            "image `{}` has no OpenSSH server (`{}`)",
            spec.image,
            sshd::SSHD
        );
        if spec.settings.ssh == Some(true) {
            (
                Some(format!("{missing}: {how}, or set `ssh = false`")),
                warnings,
            )
        } else {
            warnings.push(format!(
                "{missing}: the node runs without one, so `tg ssh` and Ansible cannot reach it; \
                 {how}, or set `ssh = false` to say it needs none"
            ));
            (None, warnings)
        }
    }

    fn secrets(&self, session: &SessionRef) -> Vec<PathBuf> {
        let mut v = vec![
            self.options.run_dir.clone(),
            self.options.host_dir.clone(),
            session.testbed_dir.join(".tg"),
        ];
        v.extend(self.options.secrets.iter().cloned());
        v
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
    /// The node's identity: its folder, cgroups and veths are named from
    /// it, never from the hostname (which can change in place). Records
    /// made before identities existed have none: their hostname was it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The node's runtime folder.
    pub dir: PathBuf,
    /// Router-side veth names, in interface order (`eth0` first).
    pub veths: Vec<String>,
    /// The host public key of the node's SSH server, when it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_host_key: Option<String>,
}

impl NodePrivate {
    /// The recorded private value of a node, if it is one.
    fn of(v: &serde_json::Value) -> Option<NodePrivate> {
        serde_json::from_value(v.clone()).ok()
    }
}

/// The node identity recorded in `private`, else (older records, tests
/// that record nothing) the hostname.
fn node_id(private: &serde_json::Value, spec: &NodeSpec) -> String {
    NodePrivate::of(private)
        .and_then(|p| p.id)
        .unwrap_or_else(|| spec.hostname.clone())
}

/// The router-side veth names of node `id`'s interfaces, in order.
fn node_veths(sid: &str, id: &str, spec: &NodeSpec) -> Vec<String> {
    spec.interfaces
        .iter()
        .enumerate()
        .map(|(i, iface)| names::veth_name(sid, &iface.network, id, &names::node_ifname(i)))
        .collect()
}

/// What a package's `private` value records: the node it is on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackagePrivate {
    /// The node's hostname when the package was installed.
    pub node: String,
    /// The node's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
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

    fn create_node(
        &self,
        session: &SessionRef,
        spec: &NodeSpec,
        cancel: &Cancel,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<CreateResponse> {
        let sid = Self::sid(session);
        let run_dir = &self.options.run_dir;
        let lock = self.session_lock(&sid);
        let id = node::new_id();
        let init = self.init_program()?;
        let secrets = self.secrets(session);
        let created = {
            let _p = trace.phase("namespaces");
            node::create_node(
                &lock,
                &self.options,
                &sid,
                spec,
                &node::NodeOptions {
                    id: &id,
                    secrets: &secrets,
                    init: &init,
                    ssh: (spec.settings.ssh != Some(false))
                        .then_some(session.ssh_client_key.as_deref()),
                },
            )?
        };
        let veths = node_veths(&sid, &id, spec);
        let ssh = created.record.ssh_host_key.is_some();
        let result = (|| {
            if ssh {
                // Started first: it comes up while the links are made.
                let _p = trace.phase("sshd start");
                sshd::spawn(&created, &self.sandbox_of(&created)?)?;
            }
            {
                let _p = trace.phase("links");
                self.plug(&lock, &sid, &created, spec, &veths, &[])?;
                self.impair_links(&sid, spec, &veths, None)?;
            }
            if ssh {
                // Before the checks: a `wait_for { tcp = 22 }` may count on it.
                let _p = trace.phase("sshd ready");
                sshd::wait_ready(&created)?;
            }
            if spec.settings.wait_for.is_empty() {
                return Ok(());
            }
            let _p = trace.phase("wait_for");
            self.wait_for(
                &sid,
                format!("node `{}`", spec.hostname),
                &created,
                spec.interfaces.first().map(|i| i.address),
                &spec.settings.wait_for,
                cancel,
            )
        })();
        if let Err(e) = result {
            // Leave nothing half made behind.
            let _ = net::detach(run_dir, &sid, &veths);
            let _ = node::delete_node(&created.paths);
            return Err(e);
        }
        let private = NodePrivate {
            sid,
            id: Some(id),
            dir: created.paths.dir.clone(),
            veths,
            ssh_host_key: created.record.ssh_host_key.clone(),
        };
        Ok(CreateResponse {
            private: to_private(&private),
        })
    }

    /// Link the node's interfaces to their networks, but those in `keep`
    /// (indexes whose veth is in place already).
    fn plug(
        &self,
        lock: &locks::SessionLock,
        sid: &str,
        node: &node::Node,
        spec: &NodeSpec,
        veths: &[String],
        keep: &[usize],
    ) -> PlatformResult<()> {
        let netns = PathBuf::from(format!("/proc/{}/ns/net", node.pid()));
        for (i, (iface, veth)) in spec.interfaces.iter().zip(veths).enumerate() {
            if keep.contains(&i) {
                continue;
            }
            let ifname = names::node_ifname(i);
            let plug = net::links::Plug {
                network: &iface.network,
                node_netns: &netns,
                veth,
                ifname_in_node: &ifname,
                address: iface.address,
                prefix_len: iface.prefix_len,
                gateway: (i == 0).then_some(iface.gateway),
            };
            net::attach(
                lock,
                &self.shared.bridges,
                &self.options.run_dir,
                sid,
                &plug,
            )?;
        }
        if !node.alive() {
            return Err(PlatformError::new(format!(
                "node `{}` ended while it was being linked to its networks",
                spec.hostname
            )));
        }
        Ok(())
    }

    fn delete_node(
        &self,
        sid: &str,
        spec: &NodeSpec,
        private: &serde_json::Value,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<()> {
        let run_dir = &self.options.run_dir;
        let id = node_id(private, spec);
        let paths = node::node_paths(run_dir, sid, &id);
        let veths = NodePrivate::of(private)
            .map(|p| p.veths)
            .unwrap_or_else(|| node_veths(sid, &id, spec));
        let alive = node::node_exists(&paths);
        let deleted = {
            let _p = trace.phase("namespaces");
            node::delete_node(&paths)
        };
        // Once the node's init is gone the kernel destroys its network
        // namespace and its veth pairs itself, in batches (deleting them
        // one by one here costs a third of a 100-node destroy). Only when
        // the node was not running are its veths taken off the bridges
        // explicitly.
        if deleted.is_err() || !alive {
            let _p = trace.phase("links");
            net::detach(run_dir, sid, &veths)?;
        }
        deleted
    }

    /// The running node of a node spec and its private value.
    fn open_node(
        &self,
        sid: &str,
        spec: &NodeSpec,
        private: &serde_json::Value,
    ) -> Option<node::Node> {
        let id = node_id(private, spec);
        node::Node::open(&node::node_paths(&self.options.run_dir, sid, &id))
    }

    fn read_node(
        &self,
        sid: &str,
        spec: &NodeSpec,
        private: &serde_json::Value,
    ) -> PlatformResult<ReadResponse> {
        let Some(node) = self.open_node(sid, spec, private) else {
            return Ok(ReadResponse::Gone);
        };
        let veths = NodePrivate::of(private)
            .map(|p| p.veths)
            .filter(|v| v.len() == spec.interfaces.len())
            .unwrap_or_else(|| node_veths(sid, &node.paths.id, spec));
        let plugs: Vec<(String, String)> = veths
            .iter()
            .cloned()
            .zip(spec.interfaces.iter().map(|i| i.network.clone()))
            .collect();
        let plugged = net::links::plugged(&self.options.run_dir, sid, &plugs)?;
        let mut seen = spec.clone();
        seen.hostname = node.record.hostname.clone();
        // A veth gone, or left without its bridge (deleted behind tg's
        // back), no longer links the node to that network.
        // Its impairment is what tc shows on the router side now.
        // Only links that should be impaired are read (one `tc` run): a
        // refresh of nodes without impairments starts no process.
        let seen_impairs = if spec.interfaces.iter().any(|i| !i.impair.is_none()) {
            impair::read(&self.options.run_dir, sid, &veths)?
        } else {
            vec![Some(Default::default()); veths.len()]
        };
        let mut interfaces = Vec::new();
        for ((iface, veth), now) in spec.interfaces.iter().zip(&veths).zip(seen_impairs) {
            if !plugged.contains(veth) {
                continue;
            }
            let mut iface = iface.clone();
            let now = now.unwrap_or_default();
            if !impair::same(&now, &iface.impair) {
                iface.impair = now;
            }
            interfaces.push(iface);
        }
        seen.interfaces = interfaces;
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

    /// Change a node in place: hostname, limits, interfaces.
    fn update_node(
        &self,
        session: &SessionRef,
        before: &NodeSpec,
        after: &NodeSpec,
        private: &serde_json::Value,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<CreateResponse> {
        let sid = Self::sid(session);
        let node = self.open_node(&sid, before, private).ok_or_else(|| {
            PlatformError::not_found(format!(
                "node `{}` does not exist on this host: run `tg apply` to make it",
                before.hostname
            ))
        })?;
        let id = node.paths.id.clone();
        if node.record.hostname != after.hostname {
            names::check_hostname(&after.hostname).map_err(PlatformError::new)?;
            node.set_hostname(&after.hostname)?;
        }
        {
            let _p = trace.phase("cgroups");
            cgroup::apply(&sid, &id, after)?;
        }
        let old_veths = NodePrivate::of(private)
            .map(|p| p.veths)
            .unwrap_or_else(|| node_veths(&sid, &id, before));
        let veths = node_veths(&sid, &id, after);
        let plugs: Vec<(String, String)> = veths
            .iter()
            .cloned()
            .zip(after.interfaces.iter().map(|i| i.network.clone()))
            .collect();
        let plugged = net::links::plugged(&self.options.run_dir, &sid, &plugs)?;
        // An interface stays when it is the same as before, in place, and
        // still on its bridge; anything else is linked anew.
        let keep: Vec<usize> = (0..after.interfaces.len())
            .filter(|&i| {
                impair::without_impair(before.interfaces.get(i))
                    == impair::without_impair(after.interfaces.get(i))
                    && old_veths.get(i) == veths.get(i)
                    && plugged.contains(&veths[i])
            })
            .collect();
        let doomed: Vec<String> = old_veths
            .iter()
            .enumerate()
            .filter(|(i, _)| !keep.contains(i))
            .map(|(_, v)| v.clone())
            .chain(
                veths
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !keep.contains(i))
                    .map(|(_, v)| v.clone()),
            )
            .collect();
        {
            let _p = trace.phase("links");
            net::detach(&self.options.run_dir, &sid, &doomed)?;
            let lock = self.session_lock(&sid);
            self.plug(&lock, &sid, &node, after, &veths, &keep)?;
            self.impair_links(&sid, after, &veths, Some((before, &keep)))?;
        }
        Ok(CreateResponse {
            private: to_private(&NodePrivate {
                sid,
                id: Some(id),
                dir: node.paths.dir.clone(),
                veths,
                ssh_host_key: node.record.ssh_host_key.clone(),
            }),
        })
    }

    /// The running node a package goes on: from its node's recorded
    /// private value (`deps`), else from the package's own record, else
    /// by hostname (older records).
    fn package_node(
        &self,
        sid: &str,
        spec: &PackageSpec,
        private: Option<&serde_json::Value>,
        deps: &BTreeMap<String, Dependency>,
    ) -> Option<node::Node> {
        let from_deps = deps.values().find_map(|d| match &d.spec {
            Spec::Node(n) if n.hostname == spec.node => Some(node_id(&d.private, n)),
            _ => None,
        });
        let from_private = private
            .and_then(|p| serde_json::from_value::<PackagePrivate>(p.clone()).ok())
            .and_then(|p| p.node_id);
        match from_deps.or(from_private) {
            Some(id) => node::Node::open(&node::node_paths(&self.options.run_dir, sid, &id)),
            None => node::find_by_hostname(&self.options.run_dir, sid, &spec.node),
        }
    }

    fn install_package(
        &self,
        session: &SessionRef,
        spec: &PackageSpec,
        node: Option<node::Node>,
        cancel: &Cancel,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<CreateResponse> {
        let node = node.ok_or_else(|| {
            PlatformError::new(format!(
                "node `{}` does not exist on this host: run `tg apply` to make it",
                spec.node
            ))
        })?;
        let sandbox = self.sandbox_of(&node)?;
        {
            let _p = trace.phase("packages");
            package::install(
                &package::Target {
                    node: &node,
                    sandbox: &sandbox,
                    cancel: Some(cancel),
                },
                spec,
                &session.testbed_dir,
            )?;
        }
        Ok(CreateResponse {
            private: to_private(&PackagePrivate {
                node: spec.node.clone(),
                node_id: Some(node.paths.id.clone()),
            }),
        })
    }

    fn read_package(
        &self,
        sid: &str,
        spec: &PackageSpec,
        private: &serde_json::Value,
    ) -> PlatformResult<ReadResponse> {
        let Some(node) = self.package_node(sid, spec, Some(private), &BTreeMap::new()) else {
            return Ok(ReadResponse::Gone);
        };
        let sandbox = self.sandbox_of(&node)?;
        let t = package::Target {
            node: &node,
            sandbox: &sandbox,
            cancel: None,
        };
        let Some(installed) = package::installed_version(&t, &spec.name)? else {
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

    fn delete_package(
        &self,
        node: Option<node::Node>,
        spec: &PackageSpec,
        cancel: &Cancel,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<()> {
        let Some(node) = node else {
            return Ok(());
        };
        let sandbox = self.sandbox_of(&node)?;
        let _p = trace.phase("packages");
        package::remove(
            &package::Target {
                node: &node,
                sandbox: &sandbox,
                cancel: Some(cancel),
            },
            &spec.name,
        )
    }

    /// Once the session has no router and no node left, remove its
    /// runtime folder (never when anything is mounted under it).
    fn tidy_session_dir(&self, _held: &locks::SessionHeld, sid: &str) {
        let run_dir = &self.options.run_dir;
        let sdir = names::session_dir(run_dir, sid);
        if net::router_exists(run_dir, sid) || !dir_names(&sdir.join("nodes")).is_empty() {
            return;
        }
        // No node is left: this only removes what an older tg left.
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
        // Nodes: known by their runtime folders (and what an older tg
        // left: pinned namespaces, cgroups).
        match node::sweep_session_nodes(run_dir, sid) {
            Ok(nodes) => removed.extend(nodes.iter().map(|n| format!("node `{n}`"))),
            Err(e) => note(e),
        }
        for cg in cgroup_dirs(&prefix) {
            let _ = fs::remove_dir(&cg);
        }
        let netns_files: Vec<String> = dir_names(Path::new("/run/netns"))
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
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

/// A node spec with what can change in place blanked (what must be equal
/// for an in-place update): limits, hostname, interfaces.
fn updatable_only(spec: &NodeSpec) -> NodeSpec {
    let mut s = NodeSpec {
        cpus: None,
        memory_mib: None,
        hostname: String::new(),
        interfaces: Vec::new(),
        ..spec.clone()
    };
    s.settings.pids = None;
    // Checks run when an instance is made: changing them changes nothing.
    s.settings.wait_for = Vec::new();
    s
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
        let mut warnings = if refused.is_none() {
            cgroup::check(spec)
        } else {
            Vec::new()
        };
        if refused.is_none() && spec.settings.privileged {
            warnings.push(format!(
                "node `{}` is privileged: it keeps every capability and runs without a seccomp \
                 filter, so root in it can reach the host (mount its disks, load kernel modules); \
                 remove `privileged = true` unless the test needs it",
                spec.hostname
            ));
        }
        let (refused, warnings) = match refused {
            None => self.check_ssh(spec, warnings),
            r => (r, warnings),
        };
        Capability { refused, warnings }
    }

    fn ssh_host_key(&self, private: &serde_json::Value) -> Option<String> {
        NodePrivate::of(private).and_then(|p| p.ssh_host_key)
    }

    fn check_spec(&self, spec: &Spec) -> Vec<String> {
        let Spec::Network(n) = spec else {
            return Vec::new();
        };
        network_warnings(n, tool_exists("iptables"), &net::host::host_routes())
    }

    fn updatable(&self, kind: ResourceKind) -> &'static [&'static str] {
        match kind {
            ResourceKind::Package => &["version", "node", "wait_for"],
            ResourceKind::Node => &[
                "cpus",
                "memory_mib",
                "pids",
                "hostname",
                "interfaces",
                "wait_for",
            ],
            ResourceKind::Network => &["nat"],
        }
    }

    async fn create(&self, req: CreateRequest) -> PlatformResult<CreateResponse> {
        let this = self.clone();
        blocking(move || {
            let sid = Self::sid(&req.session);
            match &req.spec {
                Spec::Network(n) => this.create_network(&req.session, n),
                Spec::Node(n) => this.create_node(&req.session, n, &req.cancel, &req.trace),
                Spec::Package(p) => this.create_package(&sid, &req, p),
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
                Spec::Node(n) => this.read_node(&sid, n, &req.private),
                Spec::Package(p) => this.read_package(&sid, p, &req.private),
            }
        })
        .await
    }

    async fn update(&self, req: UpdateRequest) -> PlatformResult<CreateResponse> {
        let this = self.clone();
        blocking(move || match (&req.before, &req.after) {
            (Spec::Package(before), Spec::Package(after)) => {
                let sid = Self::sid(&req.session);
                let was = this.package_node(&sid, before, Some(&req.private), &BTreeMap::new());
                let node = this.package_node(&sid, after, Some(&req.private), &req.deps);
                let same_node =
                    matches!((&was, &node), (Some(a), Some(b)) if a.paths.id == b.paths.id);
                if !same_node {
                    // Moved to another node: off the old one first.
                    this.delete_package(was, before, &req.cancel, &req.trace)?;
                } else if before.version == after.version && before.source == after.source {
                    // Only the node's hostname changed.
                    return Ok(CreateResponse {
                        private: to_private(&PackagePrivate {
                            node: after.node.clone(),
                            node_id: node.map(|n| n.paths.id.clone()),
                        }),
                    });
                }
                this.install_package(&req.session, after, node, &req.cancel, &req.trace)
            }
            (Spec::Network(before), Spec::Network(after))
                if NetworkSpec {
                    nat: after.nat,
                    ..before.clone()
                } == *after =>
            {
                this.set_nat(&req.session, after)
            }
            (Spec::Node(before), Spec::Node(after))
                if updatable_only(before) == updatable_only(after) =>
            {
                this.update_node(&req.session, before, after, &req.private, &req.trace)
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
                    let _p = req.trace.phase("links");
                    if n.nat {
                        net::disable_nat(&held, &host, run_dir, &sid, &n.name)?;
                    }
                    net::delete_network(&held, &host, &this.shared.bridges, run_dir, &sid, n)?;
                    this.tidy_session_dir(&held, &sid);
                    Ok(())
                }
                Spec::Node(n) => this.delete_node(&sid, n, &req.private, &req.trace),
                Spec::Package(p) => {
                    let node = this.package_node(&sid, p, Some(&req.private), &req.deps);
                    this.delete_package(node, p, &req.cancel, &req.trace)
                }
            }
        })
        .await
    }

    async fn exec(&self, req: ExecRequest) -> PlatformResult<ExecStatus> {
        let sid = Self::sid(&req.session);
        let node = self
            .open_node(&sid, &req.spec, &req.private)
            .ok_or_else(|| {
                PlatformError::not_found(format!(
                    "node `{}` does not exist on this host: run `tg apply` to make it",
                    req.spec.hostname
                ))
            })?;
        let sandbox = self.sandbox_of(&node)?;
        exec::stream(
            node,
            sandbox,
            req.argv,
            exec::Streams {
                stdin: req.io.stdin,
                stdout: req.io.stdout,
                stderr: req.io.stderr,
                signals: req.io.signals,
                timeout: req.timeout,
                tty: req.tty,
                cancel: req.cancel,
            },
        )
        .await
    }

    async fn capture(&self, req: CaptureRequest) -> PlatformResult<ExecStatus> {
        let sid = Self::sid(&req.session);
        let ifname = match &req.target {
            CaptureTarget::Network { name } => names::bridge_name(&sid, name),
            CaptureTarget::Node {
                spec,
                private,
                network,
            } => {
                let Some(i) = spec.interfaces.iter().position(|f| &f.network == network) else {
                    return Err(PlatformError::new(format!(
                        "node `{}` is not on network `{network}`",
                        spec.hostname
                    )));
                };
                node_veths(&sid, &node_id(private, spec), spec).swap_remove(i)
            }
        };
        let router = net::router_netns_path(&self.options.run_dir, &sid);
        capture::run(
            &router,
            &ifname,
            req.count,
            &req.filter,
            capture::Sinks {
                stdout: req.io.stdout,
                stderr: req.io.stderr,
                signals: req.io.signals,
                cancel: req.cancel,
            },
        )
        .await
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
mod tests;
