//! Jobs: the changes of sessions running in the background, and the rule
//! that a session runs one change at a time (a second one is a 409).
//!
//! Every job keeps its progress ([`Progress`]): the events of its apply
//! (each instance's start, end or failure, from the engine's apply hook)
//! and a last `done` event with the job's result, which
//! `GET /v1/jobs/{id}/events` streams (from the start to a client that
//! connects late).
//!
//! The table belongs to one server ([`super::App`]); nothing here is
//! process-wide. Not here: what a job does (`handlers`, `run`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

use super::error::ApiError;
use super::wire::ErrorDetail;
use crate::addrs::InstanceAddr;
use crate::apply::{ApplyHook, OpKind};
use crate::platform::PlatformError;

/// Finished jobs kept for `GET /v1/jobs/{id}`; the oldest go first.
pub const KEEP_FINISHED: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    pub id: String,
    /// `OWNER/NAME`.
    pub session: String,
    #[serde(skip)]
    pub owner: String,
    /// What it does: `allocate_node`, `release_node`, `deploy`, `undeploy`,
    /// `impair_node`, `clear_node_impairment`, `impair_session`,
    /// `clear_session_impairment`, `close`.
    pub kind: String,
    pub status: JobStatus,
    /// Why it failed (`status: failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// What it did (`status: succeeded`): `node`, `package`, `apply`, ... by kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
}

#[derive(Default)]
struct Table {
    jobs: HashMap<String, Job>,
    /// Session → its running job.
    running: HashMap<String, String>,
    finished: std::collections::VecDeque<String>,
    progress: HashMap<String, Arc<Progress>>,
}

/// The jobs of one server.
#[derive(Default)]
pub struct Jobs {
    table: Mutex<Table>,
}

impl Jobs {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while the table was held leaves it consistent: every
        // update is a single insert or remove.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start a job on `session`; a session with a running job is a 409.
    pub fn start(&self, session: &str, owner: &str, kind: &str) -> Result<Job, ApiError> {
        let mut t = self.table();
        if let Some(id) = t.running.get(session) {
            let other = t.jobs.get(id).map(|j| j.kind.clone()).unwrap_or_default();
            return Err(ApiError::busy(format!(
                "session `{session}` is busy with job `{id}` ({other}): wait for it (`GET /v1/jobs/{id}`) and retry"
            )));
        }
        let job = Job {
            id: uuid::Uuid::new_v4().to_string(),
            session: session.to_string(),
            owner: owner.to_string(),
            kind: kind.to_string(),
            status: JobStatus::Running,
            error: None,
            result: None,
            created: crate::state::now_rfc3339(),
            finished: None,
        };
        t.running.insert(session.to_string(), job.id.clone());
        t.jobs.insert(job.id.clone(), job.clone());
        t.progress
            .insert(job.id.clone(), Arc::new(Progress::default()));
        Ok(job)
    }

    /// End a job with its result; its session is free again.
    pub fn finish(&self, id: &str, result: Result<serde_json::Value, ApiError>) {
        let mut t = self.table();
        let Some(job) = t.jobs.get_mut(id) else {
            return;
        };
        match result {
            Ok(v) => {
                job.status = JobStatus::Succeeded;
                job.result = Some(v);
            }
            Err(e) => {
                job.status = JobStatus::Failed;
                job.error = Some(ErrorDetail {
                    code: e.code.to_string(),
                    message: e.message,
                });
            }
        }
        job.finished = Some(crate::state::now_rfc3339());
        let done = job.clone();
        let session = job.session.clone();
        if let Some(p) = t.progress.get(id) {
            p.finish(done);
        }
        if t.running.get(&session).map(String::as_str) == Some(id) {
            t.running.remove(&session);
        }
        t.finished.push_back(id.to_string());
        while t.finished.len() > KEEP_FINISHED {
            if let Some(old) = t.finished.pop_front() {
                t.jobs.remove(&old);
                t.progress.remove(&old);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.table().jobs.get(id).cloned()
    }

    /// The progress of job `id`.
    pub fn progress(&self, id: &str) -> Option<Arc<Progress>> {
        self.table().progress.get(id).cloned()
    }

    /// The running job of `session`, if any.
    pub fn running(&self, session: &str) -> Option<String> {
        self.table().running.get(session).cloned()
    }

    /// How many jobs are running.
    pub fn running_count(&self) -> usize {
        self.table().running.len()
    }
}

/// What an event tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// An operation on an instance starts.
    Started,
    /// It ended well.
    Finished,
    /// It failed (`message` says why).
    Failed,
    /// It will not run: a dependency failed (`message` names it).
    Skipped,
    /// The job ended: `job` is its final document. The last event.
    Done,
}

/// One event of a job's progress (the `data` of a server-sent event whose
/// `event` is the kind and whose `id` is `seq`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobEvent {
    /// Its number in the job's stream, from 1.
    pub seq: u64,
    pub kind: EventKind,
    /// The instance (`node.n1`), except for `done`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `create`, `update` or `delete`, except for `done`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// How long the operation took (`finished`, `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The job at its end (`done`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
}

/// What a job did so far.
#[derive(Debug, Clone, Default)]
pub struct Log {
    pub events: Vec<JobEvent>,
    /// The `done` event is in.
    pub done: bool,
}

/// A job's progress: a log that watchers see grow.
pub struct Progress {
    tx: watch::Sender<Log>,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            tx: watch::Sender::new(Log::default()),
        }
    }
}

impl Progress {
    /// Add an event (its `seq` is set here); none after `done`.
    pub fn push(&self, mut event: JobEvent) {
        self.tx.send_if_modified(|log| {
            if log.done {
                return false;
            }
            event.seq = log.events.len() as u64 + 1;
            log.done = event.kind == EventKind::Done;
            log.events.push(event);
            true
        });
    }

    fn finish(&self, job: Job) {
        self.push(JobEvent {
            job: Some(job),
            ..event(EventKind::Done, None, None)
        });
    }

    /// A watcher of the log: what happened so far, then every change.
    pub fn subscribe(&self) -> watch::Receiver<Log> {
        self.tx.subscribe()
    }
}

fn event(kind: EventKind, addr: Option<&InstanceAddr>, op: Option<OpKind>) -> JobEvent {
    JobEvent {
        seq: 0,
        kind,
        address: addr.map(ToString::to_string),
        op: op.map(|o| o.to_string()),
        elapsed_ms: None,
        message: None,
        job: None,
    }
}

/// The engine's apply hook feeding a job's progress.
pub struct ProgressHook(pub Arc<Progress>);

impl ApplyHook for ProgressHook {
    fn pre_apply(&self, addr: &InstanceAddr, op: OpKind) {
        self.0.push(event(EventKind::Started, Some(addr), Some(op)));
    }

    fn post_apply(
        &self,
        addr: &InstanceAddr,
        op: OpKind,
        error: Option<&PlatformError>,
        elapsed: Duration,
    ) {
        let kind = match error {
            None => EventKind::Finished,
            Some(_) => EventKind::Failed,
        };
        self.0.push(JobEvent {
            elapsed_ms: Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
            message: error.map(ToString::to_string),
            ..event(kind, Some(addr), Some(op))
        });
    }

    fn skipped(&self, addr: &InstanceAddr, op: OpKind, because: Option<&InstanceAddr>) {
        self.0.push(JobEvent {
            message: Some(match because {
                Some(b) => format!("`{b}` failed"),
                None => "the run was interrupted".to_string(),
            }),
            ..event(EventKind::Skipped, Some(addr), Some(op))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_ends_with_the_job() {
        let j = Jobs::default();
        let a = j.start("alice/s", "alice", "deploy").unwrap();
        let p = j.progress(&a.id).unwrap();
        let hook = ProgressHook(p.clone());
        let addr: InstanceAddr = "node.n1".parse().unwrap();
        hook.pre_apply(&addr, OpKind::Create);
        hook.post_apply(&addr, OpKind::Create, None, Duration::from_millis(5));
        j.finish(&a.id, Ok(serde_json::json!({ "node": "n1" })));
        hook.pre_apply(&addr, OpKind::Delete); // after `done`: dropped
        let log = p.subscribe().borrow().clone();
        let kinds: Vec<_> = log.events.iter().map(|e| (e.seq, e.kind)).collect();
        assert_eq!(
            kinds,
            [
                (1, EventKind::Started),
                (2, EventKind::Finished),
                (3, EventKind::Done)
            ]
        );
        assert!(log.done);
        let done = log.events[2].job.as_ref().unwrap();
        assert_eq!(done.status, JobStatus::Succeeded);
        assert_eq!(log.events[0].address.as_deref(), Some("node.n1"));
    }

    #[test]
    fn one_change_per_session() {
        let j = Jobs::default();
        let a = j.start("alice/s", "alice", "deploy").unwrap();
        assert_eq!(
            j.start("alice/s", "alice", "deploy").unwrap_err().status,
            409
        );
        assert!(j.start("bob/s", "bob", "deploy").is_ok());
        j.finish(&a.id, Ok(serde_json::json!({})));
        assert_eq!(j.get(&a.id).unwrap().status, JobStatus::Succeeded);
        assert!(j.start("alice/s", "alice", "deploy").is_ok());
    }
}
