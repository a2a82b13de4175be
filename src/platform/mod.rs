//! Platforms: the drivers that make networks, nodes and packages real.
//!
//! The engine talks to every platform through the [`Platform`] trait with
//! request/response structs, like Terraform's providers. A platform never
//! sees configuration or state stores: it gets fully resolved specs
//! ([`NetworkSpec`], [`NodeSpec`], [`PackageSpec`]) plus the session it works
//! for, and returns a `private` JSON value that the engine records in state
//! and hands back on every later call for that instance.
//!
//! Host objects are named from the session and the instance, so a platform
//! can find (and [`Platform::sweep`] remove) everything of a session even when
//! the state lost track of it after a crash.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use impairment::{Check, Impairment, WaitFor};
pub use tokio_util::sync::CancellationToken as Cancel;

pub mod factory;
pub mod impairment;
pub mod netns;
pub mod registry;
pub mod ssh;
pub mod testdouble;
pub mod trace;

/// The session a request is made for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRef {
    /// The session's name (`default`, `pr-123`).
    pub name: String,
    /// The session's lineage: a UUID set once when the session was created.
    /// Platforms derive host object names from it (with the name), so two
    /// sessions never share a host object.
    pub lineage: String,
    /// The testbed's directory (for resolving relative paths such as `deb` files).
    pub testbed_dir: PathBuf,
    /// The session's SSH client public key (an OpenSSH `authorized_keys`
    /// line), which nodes running an SSH server accept; `None` when the
    /// caller made none.
    pub ssh_client_key: Option<String>,
}

/// A network (one subnet) as the plan resolved it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkSpec {
    /// The instance's host name (`lab`, `lab-0`).
    pub name: String,
    pub cidr: Ipv4Net,
    /// The host side's address: `.1` of the CIDR.
    pub gateway: Ipv4Addr,
    /// Egress from the network to the host's outside world.
    pub nat: bool,
    /// The pool hosts its nodes are placed on, sorted (set by placement):
    /// on a pool the network is a VXLAN segment among these hosts. Empty on
    /// platforms without hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// One network interface of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Interface {
    /// The network's instance name (matches [`NetworkSpec::name`]).
    pub network: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// What the link suffers (`impair`): the network's, overridden by the
    /// node's. Applied outside the node, so it is part of the link.
    #[serde(default, skip_serializing_if = "Impairment::is_none")]
    pub impair: Impairment,
}

/// A node as the plan resolved it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeSpec {
    /// The hostname (`edge-0`).
    pub hostname: String,
    /// `host`, `debian:bookworm`, `dir:/path`.
    pub image: String,
    pub cpus: Option<f64>,
    pub memory_mib: Option<u64>,
    pub labels: BTreeMap<String, String>,
    /// In the order declared; the first one carries the default route.
    pub interfaces: Vec<Interface>,
    /// The host of a pool the node is placed on (chosen at plan time, see
    /// [`Platform::place`]); `None` on platforms without hosts to choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Everything else a node block can ask for. Flattened: in JSON (plans,
    /// state) these are attributes of the node like the ones above; in Rust
    /// a literal says `settings: Default::default()` and new settings do not
    /// break it.
    #[serde(flatten)]
    pub settings: NodeSettings,
}

/// How the user's own `ssh` (and Ansible) logs in to a node that is a
/// machine reached over SSH (a pool host): what the platform itself uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshLogin {
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_file: PathBuf,
    pub known_hosts: PathBuf,
    /// The pool accepts any host key (`insecure_accept_host_key`).
    pub insecure: bool,
}

/// The optional parts of a node's spec (see [`NodeSpec::settings`]). Each
/// field has a default that is omitted from JSON, so records written before
/// a field existed read back unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeSettings {
    /// `privileged = true`: the node keeps every capability and no seccomp
    /// filter applies (the plan warns).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// `pids = N`: at most N processes and threads in the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// `ssh = true|false`: whether the node runs an OpenSSH server. Unset:
    /// yes when its image has one (the plan warns when it has not);
    /// `true`: the plan refuses an image without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<bool>,
    /// `wait_for { ... }`: checks that must pass before the node counts
    /// as created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wait_for: Vec<WaitFor>,
}

/// Where a package comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PackageSource {
    /// From the apt archives the host is configured with.
    Apt,
    /// A local `.deb` file (absolute path, resolved at plan time).
    Deb { path: PathBuf },
}

/// A package on one node as the plan resolved it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackageSpec {
    /// The Debian package name.
    pub name: String,
    /// Exact version; `None` = the newest available.
    pub version: Option<String>,
    pub source: PackageSource,
    /// The node's hostname.
    pub node: String,
    /// `wait_for { ... }`: checks that must pass before the package
    /// counts as installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wait_for: Vec<WaitFor>,
}

/// Any resolved spec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Spec {
    Network(NetworkSpec),
    Node(NodeSpec),
    Package(PackageSpec),
}

/// What a platform answers at plan time to "can you host this node?".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capability {
    /// `Some(reason)` when the platform cannot host the node at all.
    pub refused: Option<String>,
    /// Things that will not be as asked but do not stop the node (for
    /// example limits that cannot be enforced here). Shown in the plan.
    pub warnings: Vec<String>,
}

/// Plan time: the nodes a platform was chosen for, to place on its hosts.
#[derive(Debug, Clone)]
pub struct PlaceRequest {
    pub session: SessionRef,
    /// Every node of the session this platform will host, in plan order.
    pub nodes: Vec<PlaceNode>,
}

/// One node to place.
#[derive(Debug, Clone)]
pub struct PlaceNode {
    /// `node.edge[0]`.
    pub address: String,
    pub spec: NodeSpec,
    /// The host state recorded for it: kept while it still fits.
    pub recorded_host: Option<String>,
}

/// Where one node goes, in the order of [`PlaceRequest::nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Placed; `host` is the pool host (`None` on a platform without hosts).
    Placed { host: Option<String> },
    /// No host fits: one line per host (or a single line) saying why not.
    Refused { reasons: Vec<String> },
}

/// Apply time, before anything of the session changes: every change the
/// plan gives this platform, so it can take what it needs at once (a pool
/// leases all its hosts in one transaction) or refuse the whole apply.
#[derive(Debug, Clone)]
pub struct PrepareRequest {
    pub session: SessionRef,
    /// `(address, action, before, after)` of each change on this platform.
    pub changes: Vec<PreparedChange>,
}

/// One change of a [`PrepareRequest`].
#[derive(Debug, Clone)]
pub struct PreparedChange {
    pub address: String,
    /// `create`, `update`, `replace` or `delete`.
    pub action: String,
    pub before: Option<Spec>,
    pub after: Option<Spec>,
}

/// A create request. `deps` carries the recorded `private` value of every
/// instance this one depends on (its networks for a node, its node for a
/// package), keyed by their address.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub session: SessionRef,
    pub address: String,
    pub spec: Spec,
    pub deps: BTreeMap<String, Dependency>,
    /// Cancelled when the run is abandoned (a second Ctrl-C, an API cancel):
    /// stop as soon as it is safe and return an error; what was half made
    /// stays tainted in state and is replaced next time.
    pub cancel: Cancel,
    /// Where to report the phases of the work (`tg apply -trace`).
    pub trace: trace::OpTrace,
}

/// A dependency's resolved spec and its recorded private value.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub spec: Spec,
    pub private: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct CreateResponse {
    /// Whatever the platform needs to find the object again.
    pub private: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub session: SessionRef,
    pub address: String,
    /// The spec recorded in state.
    pub spec: Spec,
    pub private: serde_json::Value,
}

/// What refresh found.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadResponse {
    /// The object is there. `spec` is what the platform sees now: equal to
    /// the recorded spec unless changed outside tg (drift).
    Present { spec: Spec },
    /// The object is gone (deleted outside tg, or the host rebooted).
    Gone,
}

#[derive(Debug, Clone)]
pub struct UpdateRequest {
    pub session: SessionRef,
    pub address: String,
    pub before: Spec,
    pub after: Spec,
    pub private: serde_json::Value,
    pub deps: BTreeMap<String, Dependency>,
    /// See [`CreateRequest::cancel`].
    pub cancel: Cancel,
    /// See [`CreateRequest::trace`].
    pub trace: trace::OpTrace,
}

#[derive(Debug, Clone)]
pub struct DeleteRequest {
    pub session: SessionRef,
    pub address: String,
    pub spec: Spec,
    pub private: serde_json::Value,
    pub deps: BTreeMap<String, Dependency>,
    /// See [`CreateRequest::cancel`].
    pub cancel: Cancel,
    /// See [`CreateRequest::trace`].
    pub trace: trace::OpTrace,
}

/// Run a command on a node. Output is streamed, byte for byte, as it comes.
#[derive(Debug)]
pub struct ExecRequest {
    pub session: SessionRef,
    pub address: String,
    pub spec: NodeSpec,
    pub private: serde_json::Value,
    /// The program and its arguments (no shell unless the caller asks for one).
    pub argv: Vec<String>,
    /// End the command after this long ([`ExecStatus::timed_out`]).
    pub timeout: Option<Duration>,
    /// Run the command on a pseudo-terminal (interactive shells).
    pub tty: bool,
    pub io: ExecIo,
    /// Cancelled: end the command (like a timeout) and return.
    pub cancel: Cancel,
}

/// Where [`Platform::capture`] listens.
#[derive(Debug, Clone)]
pub enum CaptureTarget {
    /// Every frame on the network (its bridge).
    Network { name: String },
    /// The node's link to `network` (the outer end of its interface there).
    Node {
        spec: Box<NodeSpec>,
        private: serde_json::Value,
        network: String,
    },
}

/// `tg capture`: where, what and how much.
#[derive(Debug)]
pub struct CaptureRequest {
    pub session: SessionRef,
    pub target: CaptureTarget,
    /// A BPF filter expression (`icmp`, `tcp port 80`); empty = everything.
    pub filter: Vec<String>,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// pcap on `stdout`, the capture tool's messages on `stderr`; signals
    /// end the capture cleanly (the pcap stays whole). No stdin.
    pub io: ExecIo,
    pub cancel: Cancel,
}

/// The streams of one command. Chunks are sent as the command writes them;
/// the platform drops its senders when the command's output ends.
#[derive(Debug)]
pub struct ExecIo {
    /// What the command reads; `None` = nothing (`/dev/null`). The end of
    /// the channel (all senders dropped) closes the command's stdin.
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    pub stdout: mpsc::Sender<Vec<u8>>,
    /// Unused with a pty (both streams arrive on `stdout`).
    pub stderr: mpsc::Sender<Vec<u8>>,
    /// Signal numbers to deliver to the command (SIGINT, SIGTERM...).
    pub signals: Option<mpsc::Receiver<i32>>,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExecStatus {
    /// The command's exit code; 128 + N when killed by signal N; 127 when
    /// the program does not exist, 126 when it cannot be executed (as a
    /// shell says); 124 when it was ended by the timeout.
    pub exit_code: i32,
    pub timed_out: bool,
}

/// A command's collected output (for callers and platforms that need it
/// whole: package managers, readiness checks).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExecResponse {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A command to run with [`exec_collected`].
#[derive(Debug, Clone)]
pub struct CollectRequest {
    pub session: SessionRef,
    pub address: String,
    pub spec: NodeSpec,
    pub private: serde_json::Value,
    pub argv: Vec<String>,
    pub timeout: Option<Duration>,
}

/// Run a command through `platform` with no stdin and collect its output
/// (for callers that need it whole: tests, readiness checks).
pub async fn exec_collected(
    platform: &dyn Platform,
    req: CollectRequest,
) -> PlatformResult<ExecResponse> {
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    let (err_tx, mut err_rx) = mpsc::channel::<Vec<u8>>(64);
    let req = ExecRequest {
        session: req.session,
        address: req.address,
        spec: req.spec,
        private: req.private,
        argv: req.argv,
        timeout: req.timeout,
        tty: false,
        io: ExecIo {
            stdin: None,
            stdout: out_tx,
            stderr: err_tx,
            signals: None,
        },
        cancel: Cancel::new(),
    };
    let (status, stdout, stderr) = tokio::join!(
        platform.exec(req),
        async {
            let mut all = Vec::new();
            while let Some(c) = out_rx.recv().await {
                all.extend_from_slice(&c);
            }
            all
        },
        async {
            let mut all = Vec::new();
            while let Some(c) = err_rx.recv().await {
                all.extend_from_slice(&c);
            }
            all
        }
    );
    let status = status?;
    Ok(ExecResponse {
        exit_code: status.exit_code,
        stdout,
        stderr,
    })
}

/// The whole session as it stands after an apply: every node with its
/// addresses, for what is shared between nodes (`/etc/hosts`).
#[derive(Debug, Clone, Default)]
pub struct SessionSync {
    pub session: Option<SessionRef>,
    /// hostname → (network name → address)
    pub nodes: BTreeMap<String, BTreeMap<String, Ipv4Addr>>,
}

/// What kind of failure a [`PlatformError`] is: what a caller may do next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Trying again will not help without a change (a bad spec, a refusal).
    #[default]
    Fatal,
    /// A passing problem (a connection dropped, a host busy): the same call
    /// may succeed later.
    Retryable,
    /// The object the call is about does not exist (any more).
    NotFound,
    /// The call was cancelled ([`Cancel`]).
    Cancelled,
}

/// A platform error: one line of what failed, and the tool output that says why.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct PlatformError {
    pub kind: ErrorKind,
    pub message: String,
    /// Output of the failing tool (apt's message, for example), if any.
    pub detail: Option<String>,
}

impl PlatformError {
    /// A [`ErrorKind::Fatal`] error.
    pub fn new(message: impl Into<String>) -> PlatformError {
        PlatformError {
            kind: ErrorKind::Fatal,
            message: message.into(),
            detail: None,
        }
    }

    pub fn retryable(message: impl Into<String>) -> PlatformError {
        PlatformError::new(message).kind(ErrorKind::Retryable)
    }

    pub fn not_found(message: impl Into<String>) -> PlatformError {
        PlatformError::new(message).kind(ErrorKind::NotFound)
    }

    pub fn cancelled(message: impl Into<String>) -> PlatformError {
        PlatformError::new(message).kind(ErrorKind::Cancelled)
    }

    pub fn kind(mut self, kind: ErrorKind) -> PlatformError {
        self.kind = kind;
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> PlatformError {
        self.detail = Some(detail.into());
        self
    }

    /// The message and, when there is one, the detail on the lines below.
    pub fn full(&self) -> String {
        match &self.detail {
            Some(d) if !d.trim().is_empty() => format!("{}: {}", self.message, d.trim_end()),
            _ => self.message.clone(),
        }
    }
}

pub type PlatformResult<T> = Result<T, PlatformError>;

/// A platform driver.
///
/// Calls for different instances may run concurrently (up to
/// [`Platform::max_parallelism`]); the engine never issues two calls for the
/// same instance at once, and it only calls `create` for an instance after
/// all its dependencies were created.
#[async_trait]
pub trait Platform: Send + Sync {
    /// The name users write in `platform = "..."`: the block name of a
    /// `platform "KIND" "NAME"` block, or the kind for a platform that needs
    /// no block (`netns`).
    fn name(&self) -> &str;

    /// The driver kind (`netns`, `ssh`): `platform = "KIND"` on a node
    /// accepts any platform of that kind.
    fn kind(&self) -> &str {
        self.name()
    }

    /// What this platform can host, in a line (for `tg platforms`).
    fn describe(&self) -> String {
        String::new()
    }

    /// Why this platform cannot change anything on this machine now (not
    /// root, a missing kernel feature, an unreachable pool), if it cannot.
    /// Planning still works, without refreshing its instances; apply,
    /// destroy and exec refuse with this reason.
    fn host_problem(&self) -> Option<String> {
        None
    }

    /// The state store of the run, for what a platform shares with other
    /// sessions through it (a pool's host leases). Called once, when the
    /// run's store and platforms are opened; the default keeps nothing.
    fn use_store(&self, _store: std::sync::Arc<dyn crate::state::StateStore>) {}

    /// How a user's `ssh` logs in to `spec`, a node of this platform, when
    /// it is a machine reached directly over SSH (a pool host); `None`
    /// for nodes reached some other way (netns nodes, through `tg proxy`).
    fn ssh_login(&self, _spec: &NodeSpec) -> Option<SshLogin> {
        None
    }

    /// Most calls this platform takes at once.
    fn max_parallelism(&self) -> usize {
        10
    }

    /// Plan time, no side effects: can this platform host this node?
    fn check_node(&self, spec: &NodeSpec) -> Capability;

    /// Plan time, no side effects: problems with a network or package spec
    /// that only this platform knows (empty when fine).
    fn check_spec(&self, _spec: &Spec) -> Vec<String> {
        Vec::new()
    }

    /// Plan time, no side effects (a pool reads its leases, takes none):
    /// place the nodes this platform was chosen for on its hosts. The
    /// default places every node with no host.
    async fn place(&self, req: PlaceRequest) -> PlatformResult<Vec<Placement>> {
        Ok(req
            .nodes
            .iter()
            .map(|_| Placement::Placed { host: None })
            .collect())
    }

    /// Whether one network can join nodes of this platform and of `other`
    /// (a bridge on one host cannot reach a pool host). Default: only
    /// itself.
    fn can_share_network_with(&self, other: &str) -> bool {
        other == self.name()
    }

    /// Apply time, before the walk starts: take what the session's changes
    /// need, all at once, or refuse (a planned pool host was taken since
    /// the plan: nothing changes and the user plans again). The default
    /// needs nothing.
    async fn prepare(&self, _req: PrepareRequest) -> PlatformResult<()> {
        Ok(())
    }

    async fn create(&self, req: CreateRequest) -> PlatformResult<CreateResponse>;
    async fn read(&self, req: ReadRequest) -> PlatformResult<ReadResponse>;
    /// Change an object in place. Only called for changes the platform
    /// declared updatable with [`Platform::updatable`]; others are replaced.
    async fn update(&self, req: UpdateRequest) -> PlatformResult<CreateResponse>;
    /// Delete an object; deleting one that is already gone succeeds.
    async fn delete(&self, req: DeleteRequest) -> PlatformResult<()>;
    /// Run a command on a node, streaming its output through `req.io`.
    async fn exec(&self, req: ExecRequest) -> PlatformResult<ExecStatus>;

    /// Which top-level attributes of a spec of this kind can change in place
    /// (names as in the spec's JSON form). Anything else forces a replace.
    fn updatable(&self, _kind: crate::addrs::ResourceKind) -> &'static [&'static str] {
        &[]
    }

    /// Capture packets where `req.target` meets its network, from outside
    /// the nodes, writing pcap to `req.io.stdout` until the count is reached,
    /// a signal arrives or `req.cancel` fires.
    async fn capture(&self, _req: CaptureRequest) -> PlatformResult<ExecStatus> {
        Err(PlatformError::new(format!(
            "the `{}` platform cannot capture packets",
            self.name()
        )))
    }

    /// The SSH host public key (an OpenSSH line, `ssh-ed25519 AAAA…`) of
    /// the node whose private data is `private`, when the platform runs an
    /// SSH server in it with a key it made; tg writes the session's
    /// `known_hosts` from these, so host keys are checked from the first
    /// connection on.
    fn ssh_host_key(&self, _private: &serde_json::Value) -> Option<String> {
        None
    }

    /// Called after every apply with the whole session's nodes.
    async fn sync_session(&self, _req: SessionSync) -> PlatformResult<()> {
        Ok(())
    }

    /// Remove every host object of a session, whether state knows of it or
    /// not; returns a description of what it removed.
    async fn sweep(&self, _session: &SessionRef) -> PlatformResult<Vec<String>> {
        Ok(Vec::new())
    }
}
