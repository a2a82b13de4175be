//! The HTTP shapes of the API: request bodies and response documents, with
//! their OpenAPI schemas (`utoipa::ToSchema`, gathered in [`super::openapi`]).
//!
//! Handlers take and return these types, so the published document cannot
//! drift from what the server does. Not here: checking values (`model`),
//! the session's own model (`model::SessionModel`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::jobs::Job;
use super::model::PackageModel;

/// The body of every error: `{ "error": { "code", "message" } }`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `busy`, ...
    pub code: String,
    pub message: String,
}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `POST /v1/sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// `NAME` (the caller's own session) or `OWNER/NAME`.
    pub name: String,
}

/// One line of `GET /v1/sessions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionSummary {
    /// `OWNER/NAME`.
    pub name: String,
    pub owner: String,
    pub platform: String,
    pub created: String,
    /// How many nodes it has.
    pub nodes: usize,
    /// The id of its running job, if any.
    pub job: Option<String>,
}

/// `GET /v1/sessions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionSummary>,
}

/// A session with its nodes and packages.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// `OWNER/NAME`.
    pub name: String,
    pub owner: String,
    pub platform: String,
    pub created: String,
    pub nodes: Vec<NodeView>,
    /// Package name → its version and nodes.
    pub packages: BTreeMap<String, PackageModel>,
    /// The session network's impairment: every node's link.
    pub impair: Impairment,
    /// The id of its running job, if any.
    pub job: Option<String>,
}

/// Impairments of links (`PUT .../impair`; a testbed's `impair` block):
/// each key optional, each value text as in a testbed. A key left out is
/// not impaired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Impairment {
    /// A delay added to each packet: `"50ms"` (at most `"1m"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// Varies the delay by up to this: `"5ms"` (needs `delay`, at most it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// Packets dropped: `"1%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<String>,
    /// A rate limit: `"10mbit"`, `"1gbit"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// Packets with a flipped bit: `"0.1%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<String>,
    /// Packets sent twice: `"1%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<String>,
    /// Packets sent at once, ahead of the delayed ones: `"25%"` (needs `delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<String>,
}

impl From<&crate::platform::Impairment> for Impairment {
    fn from(i: &crate::platform::Impairment) -> Impairment {
        serde_json::to_value(i)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }
}

/// A package on a node.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodePackage {
    pub name: String,
    pub version: String,
}

/// A node of a session and what the state records of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    pub name: String,
    pub hostname: String,
    /// `pending` (not made yet), `ready`, `tainted`.
    pub state: String,
    /// Its address in the session's network, once made.
    pub address: Option<String>,
    pub image: Option<String>,
    pub profile: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub packages: Vec<NodePackage>,
    /// The node's own impairment (its `impair` block; the session's
    /// applies under it, key by key).
    pub impair: Impairment,
}

/// `GET /v1/sessions/{s}/nodes`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeList {
    pub nodes: Vec<NodeView>,
}

/// `POST /v1/sessions/{s}/nodes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateRequest {
    /// The node's name (default: `n1`, `n2`, ...).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// The original TestGrid's spelling of `image`.
    #[serde(default)]
    pub is_image: Option<String>,
    /// A profile of the server's catalog (`cdn:basic`).
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub cpus: Option<u32>,
    /// `512MiB`, `2GiB`.
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A command: a string runs through `sh -c`, a list as argv.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}

/// `POST /v1/sessions/{s}/nodes/{n}/exec`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub command: Command,
    /// Seconds; the command is ended after it (returncode 124).
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// A command's status and output.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecResponse {
    pub returncode: i32,
    pub timed_out: bool,
    pub stdout: String,
    /// `utf-8`, or `base64` when the output is not UTF-8.
    pub stdout_encoding: String,
    pub stderr: String,
    pub stderr_encoding: String,
}

/// `GET /v1/sessions/{s}/testbed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Testbed {
    /// `OWNER/NAME`.
    pub session: String,
    /// File name → text: `main.tg.hcl` and the catalog's files (`catalog-*.tg.hcl`).
    pub files: BTreeMap<String, String>,
}

/// `GET /v1/packages/{name}/{version}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackageCheck {
    pub name: String,
    pub version: String,
    pub installable: bool,
    /// Every installable version.
    pub versions: Vec<String>,
}

/// `POST /v1/sessions/{s}/packages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub name: String,
    pub version: String,
    /// The node to install it on; none: a new node is allocated for it.
    #[serde(default)]
    pub node: Option<String>,
    /// Install this uploaded `.deb` (a file name of the session's uploads,
    /// `PUT /v1/sessions/{s}/files/{name}`) instead of `version` from the
    /// apt archives; `version` is then the file's version.
    #[serde(default)]
    pub deb: Option<String>,
    /// The shape of the node allocated for it when no `node` is given (as
    /// a testbed's `package { requires { ... } }`).
    #[serde(default)]
    pub requires: Option<Requires>,
}

/// What the node a node-less deploy allocates must be.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    #[serde(default)]
    pub image: Option<String>,
    /// A profile of the server's catalog (`cdn:basic`).
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub cpus: Option<u32>,
    /// `512MiB`, `2GiB`.
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The body of `PUT /v1/sessions/{s}/files/{name}`: the file's bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// `PUT /v1/sessions/{s}/files/{name}`: the file as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedFile {
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

/// `DELETE /v1/sessions/{s}/packages/{p}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UndeployQuery {
    /// Remove it from this node only (default: from every node).
    #[serde(default)]
    pub node: Option<String>,
}

/// A change accepted: the job that makes it (202).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    pub job: Job,
}

/// `GET /v1/sessions/{s}/inventory`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InventoryQuery {
    /// `json` (default): the static inventory (`tg output inventory -format
    /// json`); `script`: the dynamic-inventory `--list` answer.
    #[serde(default)]
    pub format: Option<String>,
}

/// An Ansible inventory document (see `schemas/inventory.schema.json`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct Inventory(pub Value);

/// One host of the server's `ssh` pools (`tg pool list -json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolHost {
    /// The `platform` block.
    pub pool: String,
    pub name: String,
    /// `address:port`, the lease key.
    pub host: String,
    /// `free`, `leased`, `quarantined`.
    pub state: String,
    pub session: Option<String>,
    pub since: Option<String>,
    /// Why it is quarantined.
    pub quarantined: Option<String>,
    pub profile: Option<String>,
    pub image: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub cpus: Option<f64>,
    pub memory_mib: Option<u64>,
}

/// `GET /v1/pool`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolList {
    pub hosts: Vec<PoolHost>,
}

/// `POST /v1/pool/{host}/quarantine`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineRequest {
    /// Why the host is out of placement.
    pub reason: String,
}

/// What a pool call did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolChanged {
    /// `address:port`.
    pub host: String,
    /// `quarantined` or `free`.
    pub state: String,
}

/// A session in a path.
#[derive(IntoParams)]
#[into_params(names("s"), parameter_in = Path)]
pub struct SessionParam(
    /// `NAME` (the caller's own session) or `OWNER%2FNAME`.
    pub String,
);

/// A node in a path.
#[derive(IntoParams)]
#[into_params(names("n"), parameter_in = Path)]
pub struct NodeParam(
    /// The node's name (`n1`).
    pub String,
);

/// A job in a path.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
pub struct JobParam(
    /// The job's id.
    pub String,
);

/// A pool host in a path.
#[derive(IntoParams)]
#[into_params(names("host"), parameter_in = Path)]
pub struct HostParam(
    /// The host's name in its pool, its address, or `address:port`.
    pub String,
);
