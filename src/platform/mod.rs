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

use async_trait::async_trait;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub mod netns;
pub mod registry;
pub mod testdouble;

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
}

/// One network interface of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Interface {
    /// The network's instance name (matches [`NetworkSpec::name`]).
    pub network: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
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

/// A create request. `deps` carries the recorded `private` value of every
/// instance this one depends on (its networks for a node, its node for a
/// package), keyed by their address.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub session: SessionRef,
    pub address: String,
    pub spec: Spec,
    pub deps: BTreeMap<String, Dependency>,
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
}

#[derive(Debug, Clone)]
pub struct DeleteRequest {
    pub session: SessionRef,
    pub address: String,
    pub spec: Spec,
    pub private: serde_json::Value,
    pub deps: BTreeMap<String, Dependency>,
}

#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub session: SessionRef,
    pub address: String,
    pub spec: NodeSpec,
    pub private: serde_json::Value,
    pub argv: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ExecResponse {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The whole session as it stands after an apply: every node with its
/// addresses, for what is shared between nodes (`/etc/hosts`).
#[derive(Debug, Clone, Default)]
pub struct SessionSync {
    pub session: Option<SessionRef>,
    /// hostname → (network name → address)
    pub nodes: BTreeMap<String, BTreeMap<String, Ipv4Addr>>,
}

/// A platform error: one line of what failed, and the tool output that says why.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct PlatformError {
    pub message: String,
    /// Output of the failing tool (apt's message, for example), if any.
    pub detail: Option<String>,
}

impl PlatformError {
    pub fn new(message: impl Into<String>) -> PlatformError {
        PlatformError {
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> PlatformError {
        self.detail = Some(detail.into());
        self
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
    /// The name users write in `platform = "..."`.
    fn name(&self) -> &str;

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

    async fn create(&self, req: CreateRequest) -> PlatformResult<CreateResponse>;
    async fn read(&self, req: ReadRequest) -> PlatformResult<ReadResponse>;
    /// Change an object in place. Only called for changes the platform
    /// declared updatable with [`Platform::updatable`]; others are replaced.
    async fn update(&self, req: UpdateRequest) -> PlatformResult<CreateResponse>;
    /// Delete an object; deleting one that is already gone succeeds.
    async fn delete(&self, req: DeleteRequest) -> PlatformResult<()>;
    async fn exec(&self, req: ExecRequest) -> PlatformResult<ExecResponse>;

    /// Which top-level attributes of a spec of this kind can change in place
    /// (names as in the spec's JSON form). Anything else forces a replace.
    fn updatable(&self, _kind: crate::addrs::ResourceKind) -> &'static [&'static str] {
        &[]
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
