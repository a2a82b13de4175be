//! The library API: one function per user operation.
//!
//! A caller describes itself once in a [`Workspace`] (the testbed directory,
//! its variables, environment, identity, platform drivers and progress
//! hook) and then:
//! - [`open`]: the session's [`Context`] (state store and platforms) for
//!   read-only work (`show`, `output`, `exec`, the inventory);
//! - [`lock`]: the same, with the session's lock held ([`Locked`]);
//! - [`evaluate`], [`plan`] with a [`Locked`] session, or [`plan_session`]
//!   for all of it at once ([`Planned`]);
//! - [`apply`] of a plan, which takes the [`Locked`] session: applying
//!   without the lock does not compile. [`destroy`] plans and applies a
//!   destroy.
//!
//! The order is fixed so nothing is read stale: the settings (`state` and
//! `platform` blocks) are evaluated first, then the store is opened and the
//! lock taken, then state is read and the testbed evaluated with the
//! recorded addresses, then refresh, placement and diff. Nothing here
//! prints and nothing reads the process environment: progress goes out
//! through the [`ApplyHook`].

mod capture;
mod exec;
mod impair;
mod inventory;
pub mod pool;
mod session;
mod ssh_args;
pub mod ssh_files;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use capture::{capture, CaptureOptions};
pub use exec::{exec, exec_on, select_nodes, ExecChunk, ExecOptions, ExecResult, Stream};
pub use impair::{impair, parse_set as parse_impair_set, ImpairChange, ImpairedLink};
pub use inventory::{inventory, ssh_logins, Inventory, InventoryOptions};
pub use session::{lock, open, open_for, open_with, Locked, SessionGuard};
pub use ssh_args::{
    config_file as ssh_config_file, login_blocks as ssh_login_blocks,
    login_options as ssh_login_options, session_ssh_dir, SshReach, Unquotable,
};
pub use store::{open_store, open_store_for, StoreAccess, ENV_STATE_URL};

use crate::addrs::{InstanceAddr, ResourceKind};
use crate::apply::hooks::RefreshVia;
use crate::apply::{self, on_store, ApplyHook, ApplyReport, WalkOptions};
use crate::config::model::{Move, Testbed};
use crate::config::{LoadError, LoadOptions, Prior};
use crate::diagnostics::Diagnostics;
use crate::environment::{Caller, Environment};
use crate::names::SessionName;
use crate::plan::diff::{self, DiffOptions, PlanHeader};
use crate::plan::planfile::PlanFileError;
use crate::plan::Plan;
use crate::platform::factory::Factory;
use crate::platform::registry::Registry;
use crate::platform::{SessionRef, SessionSync, Spec};
use crate::state::moves::Renamed;
use crate::state::{Snapshot, StateError, StateStore};

/// This tg's version, recorded in plans.
pub const TG_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Errors of the operations.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    State(Box<StateError>),
    /// The testbed does not load: its problems, with the sources to render
    /// them.
    #[error("the testbed has {} error(s)", .0.diagnostics.error_count())]
    Load(Box<LoadError>),
    /// Problems found planning a testbed that loads, with its sources.
    #[error("the plan has {} error(s)", .0.diagnostics.error_count())]
    Plan(Box<LoadError>),
    /// Problems with the testbed found while planning (render them with the
    /// testbed's source map).
    #[error("the plan has {} error(s)", .0.error_count())]
    Diagnostics(Diagnostics),
    #[error(transparent)]
    PlanFile(Box<PlanFileError>),
    /// A `platform` block could not be turned into a platform.
    #[error("{}", .0.join("; "))]
    Platforms(Vec<String>),
    #[error("invalid address `{input}` in `{flag}`: {reason}")]
    BadAddress {
        flag: String,
        input: String,
        reason: String,
    },
    #[error(transparent)]
    SshFiles(#[from] ssh_files::SshFilesError),
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

impl From<LoadError> for OpsError {
    fn from(e: LoadError) -> Self {
        OpsError::Load(Box::new(e))
    }
}

/// Who asks, about which testbed, with which platform drivers: what every
/// operation starts from. Nothing in it is read from the process: the CLI
/// fills it from its own process, a server per request.
#[derive(Clone)]
pub struct Workspace {
    /// The testbed directory (absolute).
    pub dir: PathBuf,
    /// `-var name=value`, in command-line order.
    pub vars: Vec<String>,
    /// `-var-file FILE` (relative to `env`'s working directory).
    pub var_files: Vec<PathBuf>,
    pub env: Environment,
    pub caller: Caller,
    pub factory: Factory,
    pub hook: Arc<dyn ApplyHook>,
    /// Where a pool's relative SQLite `state` path is taken from; `None`:
    /// [`Self::dir`]. `tg serve` names its catalog, whose pools every
    /// session folder (a copy of the catalog's files) shares.
    pub leases_dir: Option<PathBuf>,
}

impl Workspace {
    /// The folder a pool's relative SQLite `state` path is taken from.
    pub fn leases_dir(&self) -> &Path {
        self.leases_dir.as_deref().unwrap_or(&self.dir)
    }

    /// How `config` loads this workspace's testbed with `prior`.
    pub fn load_options(&self, prior: Prior) -> LoadOptions {
        LoadOptions {
            dir: self.dir.clone(),
            vars: self.vars.clone(),
            var_files: self.var_files.clone(),
            prior,
            env: self.env.clone(),
            drivers: self.factory.kinds(),
            limits: Default::default(),
        }
    }
}

/// A session's state store and platforms: what the operations work with.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn StateStore>,
    pub registry: Registry,
    pub session: SessionName,
    /// The testbed directory (absolute).
    pub testbed_dir: PathBuf,
    pub hook: Arc<dyn ApplyHook>,
    pub caller: Caller,
    /// The testbed as parsed when the context was opened ([`open`]), so
    /// [`evaluate`] does not read and parse the files again; `None` for a
    /// context made by hand.
    pub parsed: Option<Arc<crate::config::Parsed>>,
}

impl Context {
    /// The session as platforms see it, and its state now. A session that
    /// does not exist is an error, not created (reading never creates one).
    pub async fn existing_session_and_state(&self) -> OpsResult<(SessionRef, Snapshot)> {
        let name = self.session.clone();
        let (info, snap) = on_store(&self.store, move |s| {
            let info = s
                .get_session(name.as_str())?
                .ok_or_else(|| StateError::NoSuchSession(name.to_string()))?;
            let snap = s.load(name.as_str())?;
            Ok((info, snap))
        })
        .await?;
        Ok((self.session_ref(&info.lineage), snap))
    }

    /// The session as platforms see it, with `lineage`.
    pub fn session_ref(&self, lineage: &str) -> SessionRef {
        SessionRef {
            name: self.session.to_string(),
            lineage: lineage.to_string(),
            testbed_dir: self.testbed_dir.clone(),
            ssh_client_key: ssh_files::client_public_key(&self.ssh_dir()),
        }
    }

    /// The session's SSH files' folder (`.tg/ssh/SESSION/`).
    pub fn ssh_dir(&self) -> PathBuf {
        session_ssh_dir(&self.testbed_dir, self.session.as_str())
    }
}

/// Plan options (stage two of the flags: parsed and checked).
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub destroy: bool,
    pub targets: Vec<InstanceAddr>,
    pub replace: Vec<InstanceAddr>,
    /// `-exclude`: leave these (and what depends on them, or for a destroy
    /// what they depend on) out.
    pub excludes: Vec<InstanceAddr>,
    /// `-refresh-only`: only accept drift into state.
    pub refresh_only: bool,
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
            excludes: Vec::new(),
            refresh_only: false,
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
/// (reading never creates one). Blocking.
pub fn snapshot(ctx: &Context) -> OpsResult<Snapshot> {
    if ctx.store.get_session(ctx.session.as_str())?.is_none() {
        return Err(StateError::NoSuchSession(ctx.session.to_string()).into());
    }
    Ok(ctx.store.load(ctx.session.as_str())?)
}

/// Evaluate the workspace's testbed with the addresses `locked` records,
/// so IPAM keeps them (at their new addresses for instances the testbed's
/// `moved` blocks rename). Returns the testbed and its warnings.
pub async fn evaluate(ws: &Workspace, locked: &Locked) -> OpsResult<(Testbed, Diagnostics)> {
    let (parsed, prior) =
        parsed_and_prior(ws, locked.context.parsed.clone(), &locked.snapshot).await?;
    let loaded = tokio::task::spawn_blocking(move || parsed.evaluate(&prior))
        .await
        .map_err(|e| OpsError::Usage(format!("the testbed could not be loaded: {e}")))?;
    Ok(loaded?)
}

/// The parsed testbed (`parsed`, else read now) and what `snapshot`
/// recorded for it to evaluate with: the addresses of every instance, at
/// their new addresses for those the testbed's `moved` blocks rename.
pub async fn parsed_and_prior(
    ws: &Workspace,
    parsed: Option<Arc<crate::config::Parsed>>,
    snapshot: &Snapshot,
) -> OpsResult<(Arc<crate::config::Parsed>, Prior)> {
    let lost = |e: tokio::task::JoinError| {
        OpsError::Usage(format!("the testbed could not be loaded: {e}"))
    };
    let parsed = match parsed {
        Some(p) => p,
        None => {
            let opts = ws.load_options(Prior::default());
            Arc::new(
                tokio::task::spawn_blocking(move || crate::config::parse(&opts))
                    .await
                    .map_err(lost)??,
            )
        }
    };
    let (moves, parsed) = tokio::task::spawn_blocking(move || (parsed.moves(), parsed))
        .await
        .map_err(lost)?;
    match moved_snapshot(snapshot, &moves) {
        Ok((snap, _)) => Ok((parsed, prior(&snap))),
        Err(d) => Err(OpsError::Plan(Box::new(LoadError {
            diagnostics: d,
            sources: parsed.sources().clone(),
        }))),
    }
}

/// `snapshot` with the `moved` blocks' renames made, and every instance
/// they moved; the snapshot itself when there are none. A move to an
/// address state already holds is an error at its block.
pub fn moved_snapshot<'s>(
    snapshot: &'s Snapshot,
    moves: &[Move],
) -> Result<(std::borrow::Cow<'s, Snapshot>, Vec<Renamed>), Diagnostics> {
    if moves.is_empty() {
        return Ok((std::borrow::Cow::Borrowed(snapshot), Vec::new()));
    }
    let pairs: Vec<(InstanceAddr, InstanceAddr)> = moves
        .iter()
        .map(|m| (m.from.clone(), m.to.clone()))
        .collect();
    match crate::state::moves::apply_moves(snapshot, &pairs) {
        Ok((snap, done)) => Ok((std::borrow::Cow::Owned(snap), done)),
        Err((i, e)) => {
            let crate::state::moves::MoveError::Occupied { to, .. } = &e;
            let mut d = Diagnostics::default();
            d.push(
                crate::diagnostics::Diagnostic::error(e.to_string())
                    .at(moves[i].span.clone())
                    .help(format!(
                        "state holds another object at `{to}`: forget it with `tg state rm {to}` (it is not destroyed) or destroy it with `tg destroy -target {to}`, or remove this `moved` block"
                    )),
            );
            Err(d)
        }
    }
}

/// Refresh, place and diff: what apply would do, against the state the
/// lock was taken on.
pub async fn plan(locked: &Locked, testbed: &Testbed, opts: &PlanOptions) -> OpsResult<Plan> {
    let ctx = &locked.context;
    // `moved` blocks rename what state recorded first (not for a
    // refresh-only plan, which changes nothing).
    let (moved, moves) = if opts.refresh_only {
        (std::borrow::Cow::Borrowed(&locked.snapshot), Vec::new())
    } else {
        moved_snapshot(&locked.snapshot, &testbed.moves).map_err(OpsError::Diagnostics)?
    };
    let snap = &*moved;
    let session = ctx.session_ref(&snap.lineage);
    let refreshed = if opts.refresh {
        crate::plan::refresh::refresh(
            snap,
            &ctx.registry,
            &session,
            opts.parallelism,
            &RefreshVia(&*ctx.hook),
        )
        .await
        .map_err(OpsError::Diagnostics)?
    } else {
        Default::default()
    };
    let placements = if opts.destroy {
        Default::default()
    } else {
        crate::plan::placement::place(testbed, snap, &ctx.registry, &session)
            .await
            .map_err(OpsError::Diagnostics)?
    };
    let header = PlanHeader {
        session: ctx.session.to_string(),
        tg_version: TG_VERSION.to_string(),
    };
    let mut plan = diff::diff(
        &header,
        testbed,
        snap,
        &refreshed.found,
        &placements,
        &ctx.registry,
        &DiffOptions {
            destroy: opts.destroy,
            targets: opts.targets.clone(),
            replace: opts.replace.clone(),
            excludes: opts.excludes.clone(),
            refresh_only: opts.refresh_only,
        },
    )
    .map_err(OpsError::Diagnostics)?;
    plan.moves = moves;
    plan.warnings.extend(refreshed.warnings);
    // Say once per platform that applying will need what is missing here.
    let needs: BTreeSet<String> = plan.actionable().map(|c| c.platform.clone()).collect();
    for name in needs {
        if let Some(problem) = ctx.registry.get(&name).and_then(|p| p.host_problem()) {
            plan.warnings
                .push(format!("applying this plan will fail here: {problem}"));
        }
    }
    Ok(plan)
}

/// Planning diagnostics with the testbed's sources, so they render with
/// their lines.
pub fn with_sources(e: OpsError, testbed: &Testbed) -> OpsError {
    match e {
        OpsError::Diagnostics(d) => OpsError::Plan(Box::new(LoadError {
            diagnostics: d,
            sources: testbed.sources.clone(),
        })),
        other => other,
    }
}

/// A plan with what it was made from; the session stays locked until
/// `locked` is released or dropped.
pub struct Planned {
    pub plan: Plan,
    pub testbed: Testbed,
    /// The testbed's warnings.
    pub warnings: Diagnostics,
    pub locked: Locked,
}

/// Open the session, lock it, evaluate the testbed and plan: the whole
/// planning flow in one call. `operation` names the lock (`plan`, `apply`).
pub async fn plan_session(
    ws: &Workspace,
    session: &SessionName,
    opts: &PlanOptions,
    operation: &str,
    lock_timeout: Duration,
) -> OpsResult<Planned> {
    let context = open(ws, session).await?;
    plan_context(ws, context, opts, operation, lock_timeout).await
}

/// Like [`plan_session`], for a [`Context`] the caller opened itself (its
/// own store, its own registry).
pub async fn plan_context(
    ws: &Workspace,
    context: Context,
    opts: &PlanOptions,
    operation: &str,
    lock_timeout: Duration,
) -> OpsResult<Planned> {
    let locked = lock(context, operation, lock_timeout).await?;
    let (testbed, warnings) = match evaluate(ws, &locked).await {
        Ok(t) => t,
        Err(e) => {
            session::discard(locked).await;
            return Err(e);
        }
    };
    let plan = match plan(&locked, &testbed, opts).await {
        Ok(p) => p,
        Err(e) => {
            session::discard(locked).await;
            return Err(with_sources(e, &testbed));
        }
    };
    Ok(Planned {
        plan,
        testbed,
        warnings,
        locked,
    })
}

/// Lock `context`'s session and plan the destruction of what its state
/// records, without the testbed (which may be gone or broken): nothing is
/// protected by `prevent_destroy` then, since no block is read.
pub async fn plan_destroy_from_state(
    context: Context,
    opts: &PlanOptions,
    lock_timeout: Duration,
) -> OpsResult<Planned> {
    let opts = PlanOptions {
        destroy: true,
        ..opts.clone()
    };
    let locked = lock(context, "destroy", lock_timeout).await?;
    let testbed = Testbed::default();
    match plan(&locked, &testbed, &opts).await {
        Ok(plan) => Ok(Planned {
            plan,
            testbed,
            warnings: Diagnostics::default(),
            locked,
        }),
        Err(e) => {
            session::discard(locked).await;
            Err(e)
        }
    }
}

/// Apply a plan to the locked session. The state must still be where the
/// plan left it (same lineage and serial; a plan of a session that did not
/// exist yet fits a session that is still empty), else the plan is stale
/// and nothing is done. After the walk: outputs are saved (not for
/// `-target` plans), platforms get `sync_session`, and a complete destroy
/// sweeps the platforms it used and every pool (whose leases may outlive
/// the records of an apply killed in between).
pub async fn apply(locked: &Locked, plan: &Plan, walk: &WalkOptions) -> OpsResult<ApplyReport> {
    let ctx = &locked.context;
    if plan.session != ctx.session.as_str() {
        return Err(PlanFileError::WrongSession {
            planned: plan.session.clone(),
            current: ctx.session.to_string(),
        }
        .into());
    }
    // Refuse before anything is touched when a platform cannot work here.
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for c in plan.actionable() {
        if seen.insert(c.platform.as_str()) {
            if let Some(p) = ctx.registry.get(&c.platform).and_then(|p| p.host_problem()) {
                problems.push(format!("platform `{}`: {p}", c.platform));
            }
        }
    }
    if !problems.is_empty() {
        return Err(OpsError::Usage(format!(
            "cannot apply here: {}",
            problems.join("; ")
        )));
    }
    // The session's client key is made (a synced file) while the
    // store records the session (a synced write): neither waits for the
    // other.
    let makes_ssh_node = plan.actionable().any(|c| {
        matches!(&c.after, Some(Spec::Node(n)) if n.settings.ssh != Some(false))
            && c.action != crate::plan::Action::Delete
            && ctx
                .registry
                .get(&c.platform)
                .is_some_and(|p| p.kind() == "netns")
    });
    let client_key = makes_ssh_node.then(|| {
        let (dir, comment) = (ctx.ssh_dir(), format!("tg@{}", ctx.session));
        tokio::task::spawn_blocking(move || ssh_files::ensure_client_key(&dir, &comment))
    });
    let name = ctx.session.clone();
    let needs_session = plan.has_changes() || !plan.outputs.is_empty();
    let recorded = on_store(&ctx.store, move |s| {
        let info = if needs_session {
            Some(s.ensure_session(name.as_str())?)
        } else {
            s.get_session(name.as_str())?
        };
        let snap = match &info {
            Some(_) => s.load(name.as_str())?,
            None => Snapshot::default(),
        };
        Ok((info, snap))
    });
    // Both finish before anything is decided: no key job outlives a
    // return (the session lock is released right after).
    let (recorded, client_key) = tokio::join!(recorded, async {
        match client_key {
            Some(job) => Some(job.await),
            None => None,
        }
    });
    let (info, snap) = recorded?;
    let fresh = plan.lineage.is_empty() && snap.serial == 0 && snap.instances.is_empty();
    if !fresh && (snap.lineage != plan.lineage || snap.serial != plan.serial) {
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
    let Some(info) = info else {
        // Nothing to do and nothing to record.
        return Ok(ApplyReport::default());
    };
    if plan.refresh_only {
        return accept_drift(ctx, plan, snap).await;
    }
    // The plan's moves first, in one write: its changes are at the new
    // addresses. A crash after it leaves state moved, which the next plan
    // finds as it is (the `moved` blocks then match nothing).
    let snap = if plan.moves.is_empty() {
        snap
    } else {
        let moved = crate::state::moves::rename(&snap, &plan.moves)
            .map_err(|e| OpsError::Usage(format!("{e}: plan again")))?;
        ctx.hook.note(&format!(
            "moving {} recorded instance(s) to their new addresses",
            plan.moves.len()
        ));
        let name = ctx.session.clone();
        let written = moved.clone();
        let serial = on_store(&ctx.store, move |s| s.import(name.as_str(), &written)).await?;
        Snapshot { serial, ..moved }
    };
    // Nodes that may run an SSH server accept the session's client key:
    // it is made before the first one is created.
    if let Some(made) = client_key {
        made.map_err(|e| OpsError::Usage(format!("making the session's SSH key stopped: {e}")))??;
    }
    let session = ctx.session_ref(&info.lineage);
    let mut used: BTreeSet<String> = snap
        .instances
        .values()
        .map(|r| r.platform.clone())
        .collect();
    used.extend(plan.changes.iter().map(|c| c.platform.clone()));

    // Every platform takes what its changes need before anything changes.
    let mut by_platform: BTreeMap<&str, Vec<crate::platform::PreparedChange>> = BTreeMap::new();
    for c in plan.actionable() {
        by_platform
            .entry(c.platform.as_str())
            .or_default()
            .push(crate::platform::PreparedChange {
                address: c.address.to_string(),
                action: serde_json::to_value(c.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                before: c.before.clone(),
                after: c.after.clone(),
            });
    }
    for (name, changes) in by_platform {
        let Some(p) = ctx.registry.get(name) else {
            continue;
        };
        let req = crate::platform::PrepareRequest {
            session: session.clone(),
            changes,
        };
        if let Err(e) = p.prepare(req).await {
            return Err(OpsError::Usage(format!(
                "platform `{name}` refused the apply before anything changed: {}",
                e.full()
            )));
        }
    }

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
        let name = ctx.session.clone();
        report.recorded = on_store(&ctx.store, move |s| s.load(name.as_str()))
            .await
            .ok()
            .map(|s| s.instances.len());
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
        match on_store(&ctx.store, move |s| s.put_outputs(name.as_str(), &outputs)).await {
            Ok(s) => report.serial = s,
            Err(e) => {
                report.state_error = Some(e.to_string());
                return Ok(report);
            }
        }
    }

    let name = ctx.session.clone();
    let after = on_store(&ctx.store, move |s| s.load(name.as_str())).await?;
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
    // The session's known hosts, as state now records them.
    let complete_destroy =
        plan.destroy && !plan.targeted && report.success() && after.instances.is_empty();
    let ssh_dir = ctx.ssh_dir();
    let written = if complete_destroy {
        ssh_files::remove(&ssh_dir).map_err(OpsError::from)
    } else {
        write_known_hosts(ctx, &after)
    };
    if let Err(e) = written {
        report.failed.push(apply::OpFailure {
            address: sync_addr(),
            op: apply::OpKind::Update,
            message: e.to_string(),
            detail: None,
        });
    }
    if complete_destroy {
        // A pool may hold hosts for the session that no record names (an
        // apply killed after it took its leases, before its first record):
        // a pool's sweep looks at its leases, so every pool is swept.
        used.extend(
            ctx.registry
                .all()
                .filter(|p| p.kind() == "ssh")
                .map(|p| p.name().to_string()),
        );
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
    report.recorded = Some(after.instances.len());
    Ok(report)
}

/// Record a refresh-only plan's drift: what is gone is forgotten, what
/// changed is recorded as it is now. Nothing on any platform changes.
async fn accept_drift(ctx: &Context, plan: &Plan, snap: Snapshot) -> OpsResult<ApplyReport> {
    let mut report = ApplyReport {
        serial: snap.serial,
        ..ApplyReport::default()
    };
    for d in &plan.drift {
        let name = ctx.session.clone();
        let addr = d.address.clone();
        let result = match (&d.after, snap.instances.get(&d.address)) {
            (None, Some(_)) => {
                on_store(&ctx.store, move |s| s.remove_instance(name.as_str(), &addr)).await
            }
            (Some(now), Some(rec)) => {
                let mut rec = rec.clone();
                rec.spec = now.clone();
                on_store(&ctx.store, move |s| s.put_instance(name.as_str(), &rec)).await
            }
            (_, None) => continue,
        };
        match result {
            Ok(serial) => {
                report.serial = serial;
                report.done.push((d.address.clone(), apply::OpKind::Update));
            }
            Err(e) => {
                report.state_error = Some(e.to_string());
                break;
            }
        }
    }
    let name = ctx.session.clone();
    report.recorded = on_store(&ctx.store, move |s| s.load(name.as_str()))
        .await
        .ok()
        .map(|s| s.instances.len());
    Ok(report)
}

/// Write the session's `known_hosts` from `snap`, as [`apply`] does after
/// every walk (for an apply with nothing to do, which walks nothing).
pub fn write_known_hosts(ctx: &Context, snap: &Snapshot) -> OpsResult<()> {
    let hosts = ssh_files::known_hosts_of(snap, &ctx.registry);
    Ok(ssh_files::write_known_hosts(&ctx.ssh_dir(), &hosts)?)
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

/// Plan a destroy of `context`'s session and apply it (library
/// convenience; the CLI confirms in between). Takes the session lock and
/// releases it.
pub async fn destroy(
    ws: &Workspace,
    context: Context,
    opts: &PlanOptions,
    walk: &WalkOptions,
    lock_timeout: Duration,
) -> OpsResult<(Plan, ApplyReport)> {
    let opts = PlanOptions {
        destroy: true,
        ..opts.clone()
    };
    let planned = plan_context(ws, context, &opts, "destroy", lock_timeout).await?;
    let report = apply(&planned.locked, &planned.plan, walk).await;
    planned.locked.release().await?;
    Ok((planned.plan, report?))
}
