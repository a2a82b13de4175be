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
//! - `checks`: plan-time checks (a node's SSH server, network warnings,
//!   what may change in place).
//! - `network_ops`, `node_ops`, `package_ops`: the driver's create, read,
//!   update and delete of each kind of resource.
//! - `sweep`: removing every leftover of a session.
//! - `names`: host object names derived from the session and instance.
//! - `net`: per-session router namespace, bridges, veths, isolation, NAT,
//!   and the host-wide lock and record of host settings.
//! - `locks`: per-session locks of one platform instance.
//! - `node`: a node's init, namespaces and overlay root filesystem.
//! - `init`: the node's init program (`tg-init`), which builds its root.
//! - `sandbox`: capabilities, entering the seccomp filters, masked host secrets.
//! - `seccomp`: the seccomp programs of unprivileged nodes (Docker's profile).
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
mod checks;
pub mod driver;
pub mod exec;
pub mod image;
pub mod impair;
pub mod init;
mod launch;
pub mod locks;
pub mod names;
pub mod net;
mod network_ops;
pub mod node;
mod node_ops;
pub mod package;
mod package_ops;
pub mod readiness;
pub mod sandbox;
pub mod seccomp;
pub mod sshd;
mod sweep;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::addrs::ResourceKind;
use crate::platform::{
    Capability, CaptureRequest, CaptureTarget, CreateRequest, CreateResponse, DeleteRequest,
    ExecRequest, ExecStatus, NetworkSpec, NodeSpec, Platform, PlatformError, PlatformResult,
    ReadRequest, ReadResponse, SessionRef, SessionSync, Spec, UpdateRequest,
};
use checks::{network_warnings, tool_exists, updatable_only};

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
    /// This machine's name in the records of the nodes it runs (default:
    /// its host name). A node recorded with another name runs elsewhere:
    /// refresh, update and destroy refuse it rather than take it for gone
    /// (two machines sharing one PostgreSQL state).
    pub host: String,
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
            host: crate::state::hostname(),
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
    filters: OnceLock<Result<seccomp::Filters, String>>,
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
        Ok(Arc::new(sandbox::Sandbox::new(
            Some(sandbox::node_caps(node.record.devices)),
            self.filters()?,
        )))
    }

    /// The seccomp filters of unprivileged nodes (compiled once); `None`
    /// when the platform runs without the sandbox.
    fn filters(&self) -> PlatformResult<Option<&seccomp::Filters>> {
        if !self.options.sandbox {
            return Ok(None);
        }
        self.shared
            .filters
            .get_or_init(seccomp::Filters::compile)
            .as_ref()
            .map(Some)
            .map_err(|e| PlatformError::new(format!("cannot make the seccomp filter: {e}")))
    }

    /// tg's own files no node may see for this session.
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
    /// The machine that runs the node ([`NetnsOptions::host`]). Records
    /// made before it was kept have none (taken as this machine's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl NodePrivate {
    /// The recorded private value of a node, if it is one.
    fn of(v: &serde_json::Value) -> Option<NodePrivate> {
        serde_json::from_value(v.clone()).ok()
    }
}

/// The machine named in a node's recorded private value, when it names
/// one (a `tg serve` tells by it which host holds a session).
pub fn node_host(private: &serde_json::Value) -> Option<String> {
    NodePrivate::of(private).and_then(|p| p.host)
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
                // A new version is checked as a new package is.
                this.install_checked(
                    &sid,
                    &req.session,
                    after,
                    node,
                    &req.deps,
                    &req.cancel,
                    &req.trace,
                )
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
                    {
                        let _p = req.trace.phase("links");
                        if n.nat {
                            net::disable_nat(&held, &host, run_dir, &sid, &n.name)?;
                        }
                        net::delete_network(&held, &host, &this.shared.bridges, run_dir, &sid, n)?;
                    }
                    // The session's folder, once its last network is gone.
                    let _p = req.trace.phase("session folder");
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
