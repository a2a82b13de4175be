//! Platform phases: how a platform says what an operation spends its time
//! on (netns: namespaces, cgroups, links, wait_for, packages, session
//! folder; ssh: links, upload, packages, reset, lease), for the apply
//! timeline
//! (`apply::timeline`, `tg apply -trace FILE`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A platform phase of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phase {
    pub name: String,
    /// Offsets from the start of the walk.
    pub start: Duration,
    pub end: Duration,
}

/// Where a platform reports the phases of one operation. The default
/// records nothing (calls made outside an apply).
#[derive(Debug, Clone, Default)]
pub struct OpTrace {
    sink: Option<(Instant, Arc<Mutex<Vec<Phase>>>)>,
}

impl OpTrace {
    /// A trace that records into `phases`, with times from `origin`.
    pub fn recording(origin: Instant, phases: Arc<Mutex<Vec<Phase>>>) -> OpTrace {
        OpTrace {
            sink: Some((origin, phases)),
        }
    }

    /// A phase that lasts until the guard is dropped.
    pub fn phase(&self, name: &str) -> PhaseGuard {
        PhaseGuard {
            trace: self.clone(),
            name: name.to_string(),
            start: Instant::now(),
        }
    }

    fn record(&self, name: String, start: Instant, end: Instant) {
        if let Some((origin, phases)) = &self.sink {
            let p = Phase {
                name,
                start: start.saturating_duration_since(*origin),
                end: end.saturating_duration_since(*origin),
            };
            phases.lock().unwrap_or_else(|e| e.into_inner()).push(p);
        }
    }
}

/// An open phase (see [`OpTrace::phase`]).
pub struct PhaseGuard {
    trace: OpTrace,
    name: String,
    start: Instant,
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        self.trace
            .record(std::mem::take(&mut self.name), self.start, Instant::now());
    }
}
