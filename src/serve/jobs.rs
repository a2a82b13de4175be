//! Jobs: the changes of sessions running in the background, and the rule
//! that a session runs one change at a time (a second one is a 409).
//!
//! The table belongs to one server ([`super::App`]); nothing here is
//! process-wide. Not here: what a job does (`handlers`, `run`).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use super::error::ApiError;

/// Finished jobs kept for `GET /v1/jobs/{id}`; the oldest go first.
pub const KEEP_FINISHED: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    /// `OWNER/NAME`.
    pub session: String,
    #[serde(skip)]
    pub owner: String,
    /// What it does: `allocate_node`, `release_node`, `deploy`, `undeploy`, `close`.
    pub kind: String,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
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
                job.error = Some(serde_json::json!({ "code": e.code, "message": e.message }));
            }
        }
        job.finished = Some(crate::state::now_rfc3339());
        let session = job.session.clone();
        if t.running.get(&session).map(String::as_str) == Some(id) {
            t.running.remove(&session);
        }
        t.finished.push_back(id.to_string());
        while t.finished.len() > KEEP_FINISHED {
            if let Some(old) = t.finished.pop_front() {
                t.jobs.remove(&old);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.table().jobs.get(id).cloned()
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

#[cfg(test)]
mod tests {
    use super::*;

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
