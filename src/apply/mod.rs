//! Apply: a concurrent walk of a plan's changes.
//!
//! The apply graph is built from the [`Plan`] only, never from the
//! configuration, so apply touches nothing the plan did not show. Every
//! change becomes one or two operations (a replace is a delete, then a
//! create); an operation starts as soon as the operations it needs are done,
//! bounded by the run's parallelism and each platform's
//! [`Platform::max_parallelism`](crate::platform::Platform::max_parallelism).
//!
//! State is written after every operation (and a `tainted` placeholder
//! before every create), so a crash loses only the work in flight. Writes
//! go through one [`BatchWriter`] per walk: operations that finish close
//! together share one transaction, and each operation is reported done
//! only when its write has committed. A platform's parallelism counts its
//! calls only, not the wait for their records. A failed
//! operation skips what depends on it; independent work goes on. An
//! [`Interrupt`] stops new work (first level) or abandons the work in
//! flight (second level): what was in flight is recorded tainted, its
//! platform calls are cancelled, and the walk waits for them to stop
//! before it returns, so no platform work outlives the session lock (a
//! third level stops waiting). Progress goes out through [`ApplyHook`];
//! this module never prints.

pub mod hooks;
pub mod timeline;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::addrs::InstanceAddr;
use crate::plan::{Action, Plan, ResourceChange};
use crate::platform::registry::Registry;
use crate::platform::{
    Cancel, CreateRequest, DeleteRequest, Dependency, PlatformError, SessionRef, UpdateRequest,
};
use crate::state::batch::BatchWriter;
use crate::state::{
    InstanceRecord, InstanceStatus, Snapshot, StateError, StateResult, StateStore, StateWrite,
};

pub use hooks::{ApplyHook, Interrupt, NoHook};
pub use timeline::Timeline;

/// One primitive operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Create,
    Update,
    Delete,
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpKind::Create => "create",
            OpKind::Update => "update",
            OpKind::Delete => "delete",
        })
    }
}

/// An operation that failed.
#[derive(Debug, Clone, Serialize)]
pub struct OpFailure {
    pub address: InstanceAddr,
    pub op: OpKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An operation that did not run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct OpSkipped {
    pub address: InstanceAddr,
    pub op: OpKind,
    /// The failed instance it depends on; `None` when interrupted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<InstanceAddr>,
}

/// What an apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
    /// Operations that finished, in completion order.
    pub done: Vec<(InstanceAddr, OpKind)>,
    pub failed: Vec<OpFailure>,
    pub skipped: Vec<OpSkipped>,
    /// Stopped by an interrupt.
    pub interrupted: bool,
    /// Writing state failed: the run stopped (the message says where).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_error: Option<String>,
    /// The state's serial after the last write.
    pub serial: u64,
    /// Operations the platform finished whose result could not be written
    /// to state (a full disk, a lost database): state still holds what it
    /// held before (a made instance stays recorded tainted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unrecorded: Vec<(InstanceAddr, OpKind)>,
    /// Instances recorded in state after the apply (`None` when state could
    /// not be read back).
    pub recorded: Option<usize>,
    /// When every operation ran (`tg apply -trace`, the summary).
    #[serde(skip)]
    pub timeline: Timeline,
}

impl ApplyReport {
    /// Everything went as planned.
    pub fn success(&self) -> bool {
        self.failed.is_empty()
            && self.skipped.is_empty()
            && !self.interrupted
            && self.state_error.is_none()
    }
}

/// How to walk.
#[derive(Clone)]
pub struct WalkOptions {
    /// Most operations in flight at once (at least 1).
    pub parallelism: usize,
    pub interrupt: Interrupt,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            parallelism: 10,
            interrupt: Interrupt::new(),
        }
    }
}

struct Op<'p> {
    change: &'p ResourceChange,
    kind: OpKind,
    /// Operations waiting for this one.
    next: Vec<usize>,
}

enum OpState {
    Pending,
    Running,
    Finished,
    Dropped,
}

/// An operation's share of the run's and its platform's parallelism:
/// held for the platform call only (not while its state is written), so
/// the next operations start and their writes join the same commit.
struct Permits {
    held: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
    freed: Arc<Notify>,
}

impl Permits {
    /// Let go now (the platform call ended).
    fn free(self) {}
}

impl Drop for Permits {
    fn drop(&mut self) {
        if self.held.take().is_some() {
            self.freed.notify_one();
        }
    }
}

/// What one operation's task did.
struct TaskResult {
    id: usize,
    /// `Err`: the state write before the platform call failed (the
    /// message); nothing was started.
    outcome: Result<Done, String>,
}

/// An operation whose platform call ended.
struct Done {
    result: Result<(), PlatformError>,
    /// The platform call's time.
    elapsed: Duration,
    /// What state records for the address now: `Some(Some(r))` the record
    /// `r`, `Some(None)` nothing; `None` when unchanged.
    recorded: Option<Option<InstanceRecord>>,
    /// The serial of the last write, when one committed.
    serial: Option<u64>,
    /// Recording the outcome failed (the message).
    write_error: Option<String>,
}

impl Done {
    fn new(result: Result<(), PlatformError>, elapsed: Duration) -> Done {
        Done {
            result,
            elapsed,
            recorded: None,
            serial: None,
            write_error: None,
        }
    }

    /// Note the outcome of writing `write`, which records `recorded`.
    async fn record(
        &mut self,
        writer: &BatchWriter,
        write: StateWrite,
        recorded: Option<InstanceRecord>,
    ) {
        match writer.write(write).await {
            Ok(s) => {
                self.serial = Some(s);
                self.recorded = Some(recorded);
            }
            Err(e) => self.write_error = Some(e.to_string()),
        }
    }
}

/// Walk `plan`'s changes against `store`. `snapshot` is the state the plan
/// was checked against (its lineage and serial match the plan's).
pub async fn walk(
    plan: &Plan,
    snapshot: Snapshot,
    store: Arc<dyn StateStore>,
    registry: &Registry,
    session: &SessionRef,
    hook: Arc<dyn ApplyHook>,
    opts: &WalkOptions,
) -> ApplyReport {
    let mut report = ApplyReport {
        serial: snapshot.serial,
        ..ApplyReport::default()
    };
    let mut mirror: BTreeMap<InstanceAddr, InstanceRecord> = snapshot.instances;
    let writer = match BatchWriter::new(store, &plan.session) {
        Ok(w) => w,
        Err(e) => {
            report.state_error = Some(e.to_string());
            return report;
        }
    };

    // Operations and their order.
    let mut ops: Vec<Op> = Vec::new();
    let mut make_op: HashMap<&InstanceAddr, usize> = HashMap::new();
    let mut delete_op: HashMap<&InstanceAddr, usize> = HashMap::new();
    for c in plan.actionable() {
        let kinds: &[OpKind] = match c.action {
            Action::Create => &[OpKind::Create],
            Action::Update => &[OpKind::Update],
            Action::Delete => &[OpKind::Delete],
            Action::Replace => &[OpKind::Delete, OpKind::Create],
            Action::NoOp => &[],
        };
        for k in kinds {
            let id = ops.len();
            ops.push(Op {
                change: c,
                kind: *k,
                next: Vec::new(),
            });
            if *k == OpKind::Delete {
                delete_op.insert(&c.address, id);
            } else {
                make_op.insert(&c.address, id);
            }
        }
    }
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for (id, op) in ops.iter().enumerate() {
        match op.kind {
            OpKind::Create | OpKind::Update => {
                for d in &op.change.depends_on {
                    if let Some(&p) = make_op.get(d) {
                        edges.push((p, id));
                    }
                }
                if let Some(&del) = delete_op.get(&op.change.address) {
                    edges.push((del, id));
                }
            }
            OpKind::Delete => {
                // What this instance was recorded to depend on must be
                // deleted after it.
                let deps = mirror
                    .get(&op.change.address)
                    .map(|r| r.dependencies.clone())
                    .unwrap_or_else(|| op.change.depends_on.clone());
                for d in deps {
                    if let Some(&p) = delete_op.get(&d) {
                        edges.push((id, p));
                    }
                }
            }
        }
    }
    let mut waiting: Vec<usize> = vec![0; ops.len()];
    let mut seen = std::collections::HashSet::new();
    for (a, b) in edges {
        if a != b && seen.insert((a, b)) {
            ops[a].next.push(b);
            waiting[b] += 1;
        }
    }

    let mut after: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    for (a, op) in ops.iter().enumerate() {
        for &b in &op.next {
            after[b].push(a);
        }
    }
    let mut timeline = Timeline::start(
        ops.iter()
            .zip(after)
            .map(|(op, after)| (op.change.address.clone(), op.kind, after))
            .collect(),
    );
    let mut states: Vec<OpState> = ops.iter().map(|_| OpState::Pending).collect();
    let mut ready: VecDeque<usize> = (0..ops.len()).filter(|i| waiting[*i] == 0).collect();
    let global = Arc::new(Semaphore::new(opts.parallelism.max(1)));
    let mut per_platform: HashMap<String, Arc<Semaphore>> = HashMap::new();
    for p in registry.all() {
        per_platform.insert(
            p.name().to_string(),
            Arc::new(Semaphore::new(p.max_parallelism().max(1))),
        );
    }
    let mut set: tokio::task::JoinSet<TaskResult> = tokio::task::JoinSet::new();
    let mut running: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut stop_starting = false;
    // Ready operations waiting for their platform's bound, by platform.
    let mut blocked: HashMap<String, VecDeque<usize>> = HashMap::new();
    // Cancelled on the second interrupt: platforms stop what they can.
    let cancel = Cancel::new();
    // Told when a platform call ends and its permits are free.
    let freed = Arc::new(Notify::new());

    loop {
        if opts.interrupt.level() >= 1 && !stop_starting {
            stop_starting = true;
            report.interrupted = true;
            hook.interrupted(running.len());
        }
        // Ready operations that waited for their platform try again.
        for q in blocked.values_mut() {
            while let Some(b) = q.pop_back() {
                ready.push_front(b);
            }
        }
        // Start everything ready (nothing, once told to stop).
        if !stop_starting {
            while let Some(id) = ready.pop_front() {
                let op = &ops[id];
                let c = op.change;
                let Some(platform) = registry.get(&c.platform).cloned() else {
                    report.failed.push(OpFailure {
                        address: c.address.clone(),
                        op: op.kind,
                        message: format!("platform `{}` is not available", c.platform),
                        detail: None,
                    });
                    states[id] = OpState::Finished;
                    skip_dependents(id, &ops, &mut states, &mut report);
                    continue;
                };
                let local = per_platform
                    .entry(c.platform.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(10)))
                    .clone();
                // Permits are taken here, not in the task, so an interrupt
                // stops everything that has not really started.
                let Ok(global_permit) = global.clone().try_acquire_owned() else {
                    ready.push_front(id);
                    break;
                };
                let Ok(local_permit) = local.try_acquire_owned() else {
                    blocked.entry(c.platform.clone()).or_default().push_back(id);
                    continue;
                };
                let permits = Permits {
                    held: Some((global_permit, local_permit)),
                    freed: freed.clone(),
                };
                let address = c.address.to_string();
                let kind = op.kind;
                let (w, h, addr) = (writer.clone(), hook.clone(), c.address.clone());
                let task: std::pin::Pin<Box<dyn std::future::Future<Output = TaskResult> + Send>> =
                    match op.kind {
                        OpKind::Create => {
                            let Some(spec) = c.after.clone() else {
                                states[id] = OpState::Finished;
                                continue;
                            };
                            // The placeholder: if we die during the create,
                            // the next plan replaces whatever was half made.
                            let placeholder = InstanceRecord {
                                sensitive: c.sensitive.clone(),
                                address: c.address.clone(),
                                platform: c.platform.clone(),
                                status: InstanceStatus::Tainted,
                                spec: spec.clone(),
                                private: serde_json::Value::Null,
                                dependencies: c.depends_on.clone(),
                                attributes: c.attributes.clone(),
                            };
                            let req = CreateRequest {
                                session: session.clone(),
                                address,
                                spec,
                                deps: deps_of(&mirror, &c.depends_on),
                                cancel: cancel.clone(),
                                trace: timeline.started(id),
                            };
                            Box::pin(async move {
                                let serial =
                                    match w.write(StateWrite::Put(placeholder.clone())).await {
                                        Ok(s) => s,
                                        Err(e) => {
                                            return TaskResult {
                                                id,
                                                outcome: Err(e.to_string()),
                                            }
                                        }
                                    };
                                h.pre_apply(&addr, kind);
                                let started = Instant::now();
                                let result = platform.create(req).await;
                                let mut done = Done::new(
                                    result.as_ref().map(drop).map_err(Clone::clone),
                                    started.elapsed(),
                                );
                                permits.free();
                                // A failed create keeps its tainted placeholder.
                                done.serial = Some(serial);
                                done.recorded = Some(Some(placeholder.clone()));
                                if let Ok(r) = result {
                                    let rec = InstanceRecord {
                                        status: InstanceStatus::Ready,
                                        private: r.private,
                                        ..placeholder
                                    };
                                    done.record(&w, StateWrite::Put(rec.clone()), Some(rec))
                                        .await;
                                }
                                TaskResult {
                                    id,
                                    outcome: Ok(done),
                                }
                            })
                        }
                        OpKind::Update => {
                            let (Some(after), Some(rec)) =
                                (c.after.clone(), mirror.get(&c.address))
                            else {
                                states[id] = OpState::Finished;
                                continue;
                            };
                            let req = UpdateRequest {
                                session: session.clone(),
                                address,
                                before: c.before.clone().unwrap_or_else(|| rec.spec.clone()),
                                after: after.clone(),
                                private: rec.private.clone(),
                                deps: deps_of(&mirror, &c.depends_on),
                                cancel: cancel.clone(),
                                trace: timeline.started(id),
                            };
                            let tainted = InstanceRecord {
                                status: InstanceStatus::Tainted,
                                ..rec.clone()
                            };
                            let ready_rec = InstanceRecord {
                                sensitive: c.sensitive.clone(),
                                address: c.address.clone(),
                                platform: c.platform.clone(),
                                status: InstanceStatus::Ready,
                                spec: after,
                                private: serde_json::Value::Null,
                                dependencies: c.depends_on.clone(),
                                attributes: c.attributes.clone(),
                            };
                            Box::pin(async move {
                                h.pre_apply(&addr, kind);
                                let started = Instant::now();
                                let result = platform.update(req).await;
                                let mut done = Done::new(
                                    result.as_ref().map(drop).map_err(Clone::clone),
                                    started.elapsed(),
                                );
                                permits.free();
                                // A failed update leaves the instance in doubt.
                                let rec = match result {
                                    Ok(r) => InstanceRecord {
                                        private: r.private,
                                        ..ready_rec
                                    },
                                    Err(_) => tainted,
                                };
                                done.record(&w, StateWrite::Put(rec.clone()), Some(rec))
                                    .await;
                                TaskResult {
                                    id,
                                    outcome: Ok(done),
                                }
                            })
                        }
                        OpKind::Delete => {
                            let Some(rec) = mirror.get(&c.address) else {
                                // Already gone from state: nothing to delete.
                                states[id] = OpState::Finished;
                                release(id, &ops, &mut waiting, &states, &mut ready, &mut timeline);
                                continue;
                            };
                            let req = DeleteRequest {
                                session: session.clone(),
                                address,
                                spec: rec.spec.clone(),
                                private: rec.private.clone(),
                                deps: deps_of(&mirror, &rec.dependencies),
                                cancel: cancel.clone(),
                                trace: timeline.started(id),
                            };
                            Box::pin(async move {
                                h.pre_apply(&addr, kind);
                                let started = Instant::now();
                                let result = platform.delete(req).await;
                                let mut done = Done::new(result.map(drop), started.elapsed());
                                permits.free();
                                if done.result.is_ok() {
                                    done.record(&w, StateWrite::Remove(addr), None).await;
                                }
                                TaskResult {
                                    id,
                                    outcome: Ok(done),
                                }
                            })
                        }
                    };
                states[id] = OpState::Running;
                let handle = set.spawn(task);
                running.insert(handle.id(), id);
            }
        }

        if set.is_empty() {
            break;
        }

        let joined = tokio::select! {
            j = set.join_next_with_id() => j,
            // A platform call ended and its permits are free while its
            // state is written: start more.
            _ = freed.notified(), if !stop_starting => continue,
            _ = opts.interrupt.wait_for(if stop_starting { 2 } else { 1 }) => {
                if opts.interrupt.level() >= 2 {
                    // Abandon the work in flight: what was being made stays
                    // tainted, what was being updated becomes tainted. The
                    // platform calls are cancelled, then awaited, so none
                    // outlives the walk (and the session lock).
                    report.interrupted = true;
                    cancel.cancel();
                    for (_, id) in running.drain() {
                        let op = &ops[id];
                        if op.kind == OpKind::Update {
                            if let Some(rec) = mirror.get_mut(&op.change.address) {
                                rec.status = InstanceStatus::Tainted;
                                let rec = rec.clone();
                                if let Ok(s) = writer.write(StateWrite::Put(rec)).await {
                                    report.serial = report.serial.max(s);
                                }
                            }
                        }
                        report.failed.push(OpFailure {
                            address: op.change.address.clone(),
                            op: op.kind,
                            message: "interrupted".into(),
                            detail: None,
                        });
                        states[id] = OpState::Finished;
                    }
                    if !set.is_empty() {
                        hook.note(&format!(
                            "waiting for {} operation(s) in flight to stop (press Ctrl-C again to stop waiting)",
                            set.len()
                        ));
                    }
                    loop {
                        tokio::select! {
                            j = set.join_next() => if j.is_none() { break },
                            _ = opts.interrupt.wait_for(3) => {
                                set.abort_all();
                                while set.join_next().await.is_some() {}
                                break;
                            }
                        }
                    }
                    break;
                }
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let (id, outcome) = match joined {
            Ok((_, r)) => (r.id, r.outcome),
            Err(e) => {
                let Some(id) = running.remove(&e.id()) else {
                    continue;
                };
                let failed = PlatformError::new(format!("the operation stopped unexpectedly: {e}"));
                (id, Ok(Done::new(Err(failed), Duration::ZERO)))
            }
        };
        running.retain(|_, v| *v != id);
        let op = &ops[id];
        let c = op.change;
        let done = match outcome {
            Ok(done) => done,
            Err(e) => {
                // Not started: it is reported with what never started.
                states[id] = OpState::Pending;
                timeline.finished(id, false);
                report.state_error = Some(e);
                stop_starting = true;
                continue;
            }
        };
        states[id] = OpState::Finished;
        let ok = done.result.is_ok() && done.write_error.is_none();
        timeline.finished(id, ok);
        if let Some(s) = done.serial {
            report.serial = report.serial.max(s);
        }
        match done.recorded {
            Some(Some(rec)) => {
                mirror.insert(c.address.clone(), rec);
            }
            Some(None) => {
                mirror.remove(&c.address);
            }
            None => {}
        }
        hook.post_apply(
            &c.address,
            op.kind,
            done.result.as_ref().err(),
            done.elapsed,
        );
        match (done.result, done.write_error) {
            (Ok(()), None) => {
                match op.kind {
                    OpKind::Create => report.added += 1,
                    OpKind::Update => report.changed += 1,
                    OpKind::Delete => report.destroyed += 1,
                }
                report.done.push((c.address.clone(), op.kind));
                release(id, &ops, &mut waiting, &states, &mut ready, &mut timeline);
            }
            (Ok(()), Some(e)) => {
                // Made (or removed) but not recorded: state still says what
                // it said before (a made instance stays recorded tainted),
                // and what needs this does not start.
                report.unrecorded.push((c.address.clone(), op.kind));
                report.state_error = Some(e);
                stop_starting = true;
            }
            (Err(e), write_error) => {
                if let Some(w) = write_error {
                    report.state_error = Some(w);
                    stop_starting = true;
                }
                report.failed.push(OpFailure {
                    address: c.address.clone(),
                    op: op.kind,
                    message: e.message,
                    detail: e.detail,
                });
                skip_dependents(id, &ops, &mut states, &mut report);
            }
        }
    }

    // Every write sent is committed (and synced) before the walk returns.
    drop(set);
    let summary = writer.finish().await;
    report.serial = report.serial.max(summary.serial);
    if let (Some(e), None) = (summary.sync_error, &report.state_error) {
        report.state_error = Some(format!(
            "every write was recorded, but syncing them to disk failed ({e}): a power loss now could lose the last of them"
        ));
    }

    timeline.end();
    report.timeline = timeline;
    // Whatever never started.
    for (id, st) in states.iter().enumerate() {
        if matches!(st, OpState::Pending) {
            report.skipped.push(OpSkipped {
                address: ops[id].change.address.clone(),
                op: ops[id].kind,
                because: None,
            });
            hook.skipped(&ops[id].change.address, ops[id].kind, None);
        }
    }
    report
}

fn deps_of(
    mirror: &BTreeMap<InstanceAddr, InstanceRecord>,
    addrs: &[InstanceAddr],
) -> BTreeMap<String, Dependency> {
    addrs
        .iter()
        .filter_map(|a| {
            mirror.get(a).map(|r| {
                (
                    a.to_string(),
                    Dependency {
                        spec: r.spec.clone(),
                        private: r.private.clone(),
                    },
                )
            })
        })
        .collect()
}

/// Run a blocking state-store call on tokio's blocking pool: stores are
/// blocking (some run their own runtime inside), the walk is async.
pub async fn on_store<T: Send + 'static>(
    store: &Arc<dyn StateStore>,
    f: impl FnOnce(&dyn StateStore) -> StateResult<T> + Send + 'static,
) -> StateResult<T> {
    let s = store.clone();
    match tokio::task::spawn_blocking(move || f(&*s)).await {
        Ok(r) => r,
        Err(e) => Err(StateError::Backend {
            location: store.location(),
            message: format!("the state call stopped unexpectedly: {e}"),
        }),
    }
}

/// An operation finished: its dependents whose prerequisites are all done
/// become ready.
fn release(
    id: usize,
    ops: &[Op],
    waiting: &mut [usize],
    states: &[OpState],
    ready: &mut VecDeque<usize>,
    timeline: &mut Timeline,
) {
    for &n in &ops[id].next {
        waiting[n] = waiting[n].saturating_sub(1);
        if waiting[n] == 0 && matches!(states[n], OpState::Pending) {
            timeline.ready(n);
            ready.push_back(n);
        }
    }
}

/// An operation failed: everything after it, transitively, is skipped.
fn skip_dependents(id: usize, ops: &[Op], states: &mut [OpState], report: &mut ApplyReport) {
    let because = ops[id].change.address.clone();
    let mut queue: VecDeque<usize> = ops[id].next.iter().copied().collect();
    while let Some(n) = queue.pop_front() {
        if !matches!(states[n], OpState::Pending) {
            continue;
        }
        states[n] = OpState::Dropped;
        report.skipped.push(OpSkipped {
            address: ops[n].change.address.clone(),
            op: ops[n].kind,
            because: Some(because.clone()),
        });
        queue.extend(ops[n].next.iter().copied());
    }
}
