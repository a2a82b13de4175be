//! The library API: one function per user operation.
//!
//! The CLI and Rust users call these with option structs and get values back
//! (a [`Plan`], an [`ApplyReport`], exec results, an inventory). Nothing here
//! prints: progress goes out through the [`ApplyHook`] in the [`Context`].
//! Loading configuration is the caller's business (`config::load`); these
//! functions take an evaluated [`Testbed`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::addrs::{InstanceAddr, ResourceKind};
use crate::apply::hooks::RefreshVia;
use crate::apply::{self, on_store, ApplyHook, ApplyReport, WalkOptions};
use crate::config::model::{StateBackendConfig, Testbed};
use crate::config::Prior;
use crate::diagnostics::Diagnostics;
use crate::plan::diff::{self, DiffOptions, PlanHeader};
use crate::plan::planfile::PlanFileError;
use crate::plan::Plan;
use crate::platform::registry::Registry;
use crate::platform::{ExecRequest, SessionRef, SessionSync, Spec};
use crate::state::{InstanceRecord, LockInfo, SessionLock, Snapshot, StateError, StateStore};

/// This tg's version, recorded in plans.
pub const TG_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Errors of the operations.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    State(Box<StateError>),
    /// Problems with the testbed found while planning (render them with the
    /// testbed's source map).
    #[error("the plan has {} error(s)", .0.error_count())]
    Diagnostics(Diagnostics),
    #[error(transparent)]
    PlanFile(Box<PlanFileError>),
    #[error("invalid address `{input}` in `{flag}`: {reason}")]
    BadAddress {
        flag: String,
        input: String,
        reason: String,
    },
    #[error("{0}")]
    Usage(String),
}

pub type OpsResult<T> = Result<T, OpsError>;

impl From<StateError> for OpsError {
    fn from(e: StateError) -> Self {
        OpsError::State(Box::new(e))
    }
}

impl From<PlanFileError> for OpsError {
    fn from(e: PlanFileError) -> Self {
        OpsError::PlanFile(Box::new(e))
    }
}

/// What every operation works with.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn StateStore>,
    pub registry: Registry,
    /// The session's name.
    pub session: String,
    /// The testbed directory (absolute).
    pub testbed_dir: PathBuf,
    pub hook: Arc<dyn ApplyHook>,
}

impl Context {
    /// Take the session's lock for `operation`, waiting up to `timeout`.
    /// Blocking: call it outside async code.
    pub fn lock(&self, operation: &str, timeout: Duration) -> OpsResult<Box<dyn SessionLock>> {
        self.store.ensure_session(&self.session)?;
        Ok(self.store.lock(
            LockInfo::for_this_process(&self.session, operation),
            timeout,
        )?)
    }

    /// The session (created when missing) as platforms see it, and its
    /// state now. Runs the store on the blocking pool.
    pub async fn session_and_state(&self) -> OpsResult<(SessionRef, Snapshot)> {
        self.session_and_state_of(true).await
    }

    /// Like [`Context::session_and_state`], for read-only work: a session
    /// that does not exist is an error, not created.
    pub async fn existing_session_and_state(&self) -> OpsResult<(SessionRef, Snapshot)> {
        self.session_and_state_of(false).await
    }

    async fn session_and_state_of(&self, create: bool) -> OpsResult<(SessionRef, Snapshot)> {
        let name = self.session.clone();
        let (info, snap) = on_store(&self.store, move |s| {
            let info = if create {
                s.ensure_session(&name)?
            } else {
                s.get_session(&name)?
                    .ok_or_else(|| StateError::NoSuchSession(name.clone()))?
            };
            let snap = s.load(&name)?;
            Ok((info, snap))
        })
        .await?;
        Ok((
            SessionRef {
                name: self.session.clone(),
                lineage: info.lineage,
                testbed_dir: self.testbed_dir.clone(),
            },
            snap,
        ))
    }
}

/// Plan options (stage two of the flags: parsed and checked).
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub destroy: bool,
    pub targets: Vec<InstanceAddr>,
    pub replace: Vec<InstanceAddr>,
    /// Read recorded objects through their platforms first.
    pub refresh: bool,
    /// Most refresh reads at once.
    pub parallelism: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            destroy: false,
            targets: Vec::new(),
            replace: Vec::new(),
            refresh: true,
            parallelism: 10,
        }
    }
}

/// Parse `-target`/`-replace` values; `node.edge[*]` means the resource.
pub fn parse_addresses(flag: &str, values: &[String]) -> OpsResult<Vec<InstanceAddr>> {
    values
        .iter()
        .map(|v| {
            let s = v.trim().strip_suffix("[*]").unwrap_or(v.trim());
            s.parse::<InstanceAddr>().map_err(|e| OpsError::BadAddress {
                flag: flag.to_string(),
                input: v.clone(),
                reason: e.reason,
            })
        })
        .collect()
}

/// What state recorded, for IPAM stickiness (`config::LoadOptions::prior`).
pub fn prior(snapshot: &Snapshot) -> Prior {
    let mut p = Prior::default();
    for rec in snapshot.instances.values() {
        match &rec.spec {
            Spec::Node(n) => {
                let m: BTreeMap<String, Ipv4Addr> = n
                    .interfaces
                    .iter()
                    .map(|i| (i.network.clone(), i.address))
                    .collect();
                p.node_addresses.insert(rec.address.clone(), m);
            }
            Spec::Network(n) => {
                p.network_cidrs.insert(rec.address.clone(), n.cidr);
            }
            Spec::Package(_) => {}
        }
    }
    p
}

/// Load the session's state; a session that does not exist is an error
/// (reading never creates one).
pub fn snapshot(ctx: &Context) -> OpsResult<Snapshot> {
    if ctx.store.get_session(&ctx.session)?.is_none() {
        return Err(StateError::NoSuchSession(ctx.session.clone()).into());
    }
    Ok(ctx.store.load(&ctx.session)?)
}

/// Refresh and diff: what apply would do. Takes no lock (the caller holds it).
pub async fn plan(ctx: &Context, testbed: &Testbed, opts: &PlanOptions) -> OpsResult<Plan> {
    let (session, snap) = ctx.session_and_state().await?;
    let refreshed = if opts.refresh {
        diff::refresh(
            &snap,
            &ctx.registry,
            &session,
            opts.parallelism,
            &RefreshVia(&*ctx.hook),
        )
        .await
        .map_err(OpsError::Diagnostics)?
    } else {
        BTreeMap::new()
    };
    let header = PlanHeader {
        session: ctx.session.clone(),
        tg_version: TG_VERSION.to_string(),
    };
    diff::diff(
        &header,
        testbed,
        &snap,
        &refreshed,
        &ctx.registry,
        &DiffOptions {
            destroy: opts.destroy,
            targets: opts.targets.clone(),
            replace: opts.replace.clone(),
        },
    )
    .map_err(OpsError::Diagnostics)
}

/// Apply a plan. The state must still be where the plan left it (same
/// lineage and serial), else the plan is stale and nothing is done. After
/// the walk: outputs are saved (not for `-target` plans), platforms get
/// `sync_session`, and a complete destroy sweeps the platforms it used.
pub async fn apply(ctx: &Context, plan: &Plan, walk: &WalkOptions) -> OpsResult<ApplyReport> {
    let (session, snap) = ctx.session_and_state().await?;
    if snap.lineage != plan.lineage || snap.serial != plan.serial {
        return Err(PlanFileError::Stale {
            plan_serial: plan.serial,
            plan_lineage: plan.lineage.clone(),
            serial: snap.serial,
            lineage_note: if snap.lineage != plan.lineage {
                format!(" of lineage {}", snap.lineage)
            } else {
                String::new()
            },
        }
        .into());
    }
    let mut used: BTreeSet<String> = snap
        .instances
        .values()
        .map(|r| r.platform.clone())
        .collect();
    used.extend(plan.changes.iter().map(|c| c.platform.clone()));

    let recorded_outputs = snap.outputs.clone();
    let mut report = apply::walk(
        plan,
        snap,
        ctx.store.clone(),
        &ctx.registry,
        &session,
        ctx.hook.clone(),
        walk,
    )
    .await;
    if report.state_error.is_some() {
        return Ok(report);
    }

    let outputs = if plan.destroy {
        BTreeMap::new()
    } else {
        plan.outputs.clone()
    };
    if !plan.targeted && outputs != recorded_outputs {
        ctx.hook.note("saving outputs");
        let name = ctx.session.clone();
        match on_store(&ctx.store, move |s| s.put_outputs(&name, &outputs)).await {
            Ok(s) => report.serial = s,
            Err(e) => {
                report.state_error = Some(e.to_string());
                return Ok(report);
            }
        }
    }

    let name = ctx.session.clone();
    let after = on_store(&ctx.store, move |s| s.load(&name)).await?;
    let sync = session_sync(&session, &after);
    for name in &used {
        if let Some(p) = ctx.registry.get(name) {
            if let Err(e) = p.sync_session(sync.clone()).await {
                report.failed.push(apply::OpFailure {
                    address: sync_addr(),
                    op: apply::OpKind::Update,
                    message: format!(
                        "platform `{name}` could not sync the session: {}",
                        e.message
                    ),
                    detail: e.detail,
                });
            }
        }
    }
    if plan.destroy && !plan.targeted && report.success() && after.instances.is_empty() {
        for name in &used {
            if let Some(p) = ctx.registry.get(name) {
                ctx.hook.note(&format!("sweeping platform `{name}`"));
                match p.sweep(&session).await {
                    Ok(removed) => {
                        for r in removed {
                            ctx.hook.note(&format!("swept {r}"));
                        }
                    }
                    Err(e) => report.failed.push(apply::OpFailure {
                        address: sync_addr(),
                        op: apply::OpKind::Delete,
                        message: format!(
                            "platform `{name}` could not sweep the session: {}",
                            e.message
                        ),
                        detail: e.detail,
                    }),
                }
            }
        }
    }
    Ok(report)
}

/// The pseudo-address session-wide failures are reported under.
fn sync_addr() -> InstanceAddr {
    InstanceAddr::new(
        ResourceKind::Network,
        "session",
        crate::addrs::InstanceKey::None,
    )
}

/// Every node of a snapshot with its addresses, for `sync_session`.
pub fn session_sync(session: &SessionRef, snap: &Snapshot) -> SessionSync {
    let mut nodes = BTreeMap::new();
    for rec in snap.instances.values() {
        if let Spec::Node(n) = &rec.spec {
            nodes.insert(
                n.hostname.clone(),
                n.interfaces
                    .iter()
                    .map(|i| (i.network.clone(), i.address))
                    .collect(),
            );
        }
    }
    SessionSync {
        session: Some(session.clone()),
        nodes,
    }
}

/// Plan a destroy and apply it (library convenience; the CLI confirms in
/// between). Takes the session lock.
pub async fn destroy(
    ctx: &Context,
    testbed: &Testbed,
    opts: &PlanOptions,
    walk: &WalkOptions,
    lock_timeout: Duration,
) -> OpsResult<(Plan, ApplyReport)> {
    let c = ctx.clone();
    let lock = tokio::task::spawn_blocking(move || c.lock("destroy", lock_timeout))
        .await
        .map_err(|e| OpsError::Usage(e.to_string()))??;
    let opts = PlanOptions {
        destroy: true,
        ..opts.clone()
    };
    let done: OpsResult<(Plan, ApplyReport)> = async {
        let plan = plan(ctx, testbed, &opts).await?;
        let report = apply(ctx, &plan, walk).await?;
        Ok((plan, report))
    }
    .await;
    // Released off the runtime's threads (a PostgreSQL lock's release blocks).
    let released = crate::state::release_lock(lock).await;
    let done = done?;
    released?;
    Ok(done)
}

/// Nodes recorded in state that a `tg exec` target selects: an instance
/// address, a splat `node.edge[*]`, a resource `node.edge`, or a label
/// selector `role=edge` (several joined with `,` must all match).
pub fn select_nodes<'a>(
    snap: &'a Snapshot,
    session: &str,
    target: &str,
) -> OpsResult<Vec<&'a InstanceRecord>> {
    let target = target.trim();
    let nodes = snap
        .instances
        .values()
        .filter(|r| matches!(r.spec, Spec::Node(_)));
    let picked: Vec<&InstanceRecord> = if target.starts_with("node.") {
        let t = parse_addresses("exec", &[target.to_string()])?.remove(0);
        nodes.filter(|r| r.address.matches(&t)).collect()
    } else if target.contains('=') {
        let mut want = Vec::new();
        for part in target.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                OpsError::Usage(format!(
                    "invalid label selector `{part}`: expected KEY=VALUE"
                ))
            })?;
            want.push((k.trim().to_string(), v.trim().to_string()));
        }
        nodes
            .filter(|r| match &r.spec {
                Spec::Node(n) => want.iter().all(|(k, v)| n.labels.get(k) == Some(v)),
                _ => false,
            })
            .collect()
    } else {
        return Err(OpsError::Usage(format!(
            "invalid target `{target}`: expected a node address (`node.edge[0]`, `node.edge[*]`, `node.edge`) or a label selector (`role=edge`)"
        )));
    };
    if picked.is_empty() {
        return Err(OpsError::Usage(format!(
            "`{target}` matches no node recorded in session `{session}`: see `tg state list`"
        )));
    }
    Ok(picked)
}

/// The result of a command on one node.
#[derive(Debug, Clone, Serialize)]
pub struct ExecResult {
    pub address: InstanceAddr,
    pub hostname: String,
    /// `None` when the command could not be run at all (see `error`).
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Run `argv` on every node `target` selects, all at once.
pub async fn exec(ctx: &Context, target: &str, argv: &[String]) -> OpsResult<Vec<ExecResult>> {
    let (session, snap) = ctx.existing_session_and_state().await?;
    let nodes = select_nodes(&snap, &session.name, target)?;
    let mut set = tokio::task::JoinSet::new();
    for (i, rec) in nodes.iter().enumerate() {
        let Spec::Node(spec) = &rec.spec else {
            continue;
        };
        let platform = ctx.registry.get(&rec.platform).cloned();
        let req = ExecRequest {
            session: session.clone(),
            address: rec.address.to_string(),
            spec: spec.clone(),
            private: rec.private.clone(),
            argv: argv.to_vec(),
        };
        let (addr, host, pname) = (
            rec.address.clone(),
            spec.hostname.clone(),
            rec.platform.clone(),
        );
        set.spawn(async move {
            let r = match platform {
                None => Err(format!("platform `{pname}` is not available here")),
                Some(p) => p.exec(req).await.map_err(|e| match e.detail {
                    Some(d) => format!("{}: {d}", e.message),
                    None => e.message,
                }),
            };
            (i, addr, host, r)
        });
    }
    let mut out: Vec<(usize, ExecResult)> = Vec::new();
    while let Some(j) = set.join_next().await {
        let Ok((i, address, hostname, r)) = j else {
            continue;
        };
        out.push((
            i,
            match r {
                Ok(resp) => ExecResult {
                    address,
                    hostname,
                    exit_code: Some(resp.exit_code),
                    stdout: String::from_utf8_lossy(&resp.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&resp.stderr).into_owned(),
                    error: None,
                },
                Err(e) => ExecResult {
                    address,
                    hostname,
                    exit_code: None,
                    stdout: String::new(),
                    stderr: String::new(),
                    error: Some(e),
                },
            },
        ));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// Options of the Ansible inventory.
#[derive(Debug, Clone)]
pub struct InventoryOptions {
    pub session: String,
    /// The `tg` executable to name in ProxyCommand (absolute).
    pub tg_exe: PathBuf,
    /// The testbed directory, passed to the proxy with `--chdir`.
    pub testbed_dir: PathBuf,
}

/// Turn a string into an Ansible group name (`[A-Za-z0-9_]`).
fn group_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The Ansible dynamic inventory (`--list` form) of the recorded nodes.
pub fn inventory(snap: &Snapshot, opts: &InventoryOptions) -> Value {
    let mut hostvars = serde_json::Map::new();
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rec in snap.instances.values() {
        let Spec::Node(n) = &rec.spec else { continue };
        let host = n.hostname.clone();
        let mut vars = serde_json::Map::new();
        if let Some(i) = n.interfaces.first() {
            vars.insert("ansible_host".into(), json!(i.address.to_string()));
        }
        vars.insert("ansible_user".into(), json!("root"));
        // Nodes are Debian systems: name the system Python, so Ansible's
        // discovery is not misled by the controller's environment (pyenv).
        vars.insert(
            "ansible_python_interpreter".into(),
            json!("/usr/bin/python3"),
        );
        vars.insert("tg_address".into(), json!(rec.address.to_string()));
        vars.insert("tg_platform".into(), json!(rec.platform));
        vars.insert("tg_image".into(), json!(n.image));
        vars.insert(
            "tg_addresses".into(),
            json!(n
                .interfaces
                .iter()
                .map(|i| (i.network.clone(), i.address.to_string()))
                .collect::<BTreeMap<_, _>>()),
        );
        vars.insert("tg_labels".into(), json!(n.labels));
        for (k, v) in &n.labels {
            vars.insert(format!("tg_label_{}", group_name(k)), json!(v));
        }
        if rec.platform == "netns" {
            vars.insert(
                "ansible_ssh_common_args".into(),
                json!(format!(
                    "-o ProxyCommand=\"{} --chdir {} --session {} proxy %h %p\" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                    opts.tg_exe.display(),
                    opts.testbed_dir.display(),
                    opts.session
                )),
            );
        }
        hostvars.insert(host.clone(), Value::Object(vars));
        groups
            .entry(group_name(rec.address.name()))
            .or_default()
            .insert(host.clone());
        for (k, v) in &n.labels {
            groups
                .entry(group_name(&format!("{k}_{v}")))
                .or_default()
                .insert(host.clone());
        }
        groups
            .entry(group_name(&format!("platform_{}", rec.platform)))
            .or_default()
            .insert(host);
    }
    // A single-instance node's group (`origin`) would share its host's
    // name, which Ansible warns about: the host alone is enough.
    groups.retain(|g, _| !hostvars.contains_key(g));
    let mut doc = serde_json::Map::new();
    doc.insert("_meta".into(), json!({ "hostvars": hostvars }));
    doc.insert(
        "all".into(),
        json!({ "children": groups.keys().cloned().collect::<Vec<_>>() }),
    );
    for (g, hosts) in groups {
        if g == "all" || g == "_meta" {
            continue;
        }
        doc.insert(g, json!({ "hosts": hosts.into_iter().collect::<Vec<_>>() }));
    }
    Value::Object(doc)
}

/// Open the state store: `TG_STATE_URL` (a `postgres://` URL or a file
/// path) wins over the testbed's `state` block; the default is
/// `.tg/state.db` under the testbed directory.
pub fn open_store(
    testbed_dir: &Path,
    config: &StateBackendConfig,
    env_url: Option<&str>,
) -> OpsResult<Arc<dyn StateStore>> {
    let target = match env_url.filter(|s| !s.is_empty()) {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            StoreTarget::Postgres(u.to_string())
        }
        Some(p) => StoreTarget::Sqlite(testbed_dir.join(p)),
        None => match config {
            StateBackendConfig::Sqlite => {
                StoreTarget::Sqlite(testbed_dir.join(".tg").join("state.db"))
            }
            StateBackendConfig::SqlitePath(p) => StoreTarget::Sqlite(testbed_dir.join(p)),
            StateBackendConfig::Postgres { url } => StoreTarget::Postgres(url.clone()),
        },
    };
    match target {
        StoreTarget::Sqlite(path) => open_sqlite(&path),
        StoreTarget::Postgres(url) => open_postgres(&url),
    }
}

enum StoreTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

/// The store makes a missing folder itself, mode 0700 (state may hold
/// secrets), and only a missing file becomes a new state.
fn open_sqlite(path: &Path) -> OpsResult<Arc<dyn StateStore>> {
    Ok(Arc::new(crate::state::sqlite::SqliteStore::open(path)?))
}

fn open_postgres(url: &str) -> OpsResult<Arc<dyn StateStore>> {
    Ok(Arc::new(crate::state::postgres::PostgresStore::connect(
        url,
    )?))
}
