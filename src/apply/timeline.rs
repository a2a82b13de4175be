//! The timeline of an apply: when each operation became ready, started and
//! ended, with the platform's own phases inside it (the netns platform's
//! namespaces, cgroups, links, wait_for, packages, session folder; the
//! ssh platform's links, upload, packages, reset, lease).
//!
//! Platforms report phases through the [`OpTrace`] in every request; the
//! walk fills the rest. From the timeline come the summary (wall time, the
//! sum of operation times, achieved parallelism, the critical path) and the
//! Chrome trace-event file (`tg apply -trace FILE`) that Perfetto and
//! `chrome://tracing` open. Nothing here prints or writes files.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use super::OpKind;
use crate::addrs::InstanceAddr;
pub use crate::platform::trace::{OpTrace, Phase};

/// One operation on the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct OpTiming {
    pub address: InstanceAddr,
    pub op: OpKind,
    /// When its prerequisites were all done (offsets from the walk's start).
    pub ready: Duration,
    pub started: Option<Duration>,
    pub finished: Option<Duration>,
    pub ok: bool,
    pub phases: Vec<Phase>,
    /// The operations (indices into the timeline) it waited for.
    #[serde(skip)]
    pub after: Vec<usize>,
}

impl OpTiming {
    /// How long it ran.
    pub fn ran(&self) -> Duration {
        match (self.started, self.finished) {
            (Some(s), Some(f)) => f.saturating_sub(s),
            _ => Duration::ZERO,
        }
    }
}

/// The timeline of one walk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    pub wall: Duration,
    pub ops: Vec<OpTiming>,
    #[serde(skip)]
    origin: Option<Instant>,
    #[serde(skip)]
    sinks: Vec<Arc<Mutex<Vec<Phase>>>>,
}

/// What the summary line says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineSummary {
    pub wall: Duration,
    /// The sum of every operation's running time.
    pub busy: Duration,
    /// `busy / wall`.
    pub parallelism: f64,
    /// The longest chain of dependent operations by running time.
    pub critical_path: Vec<(InstanceAddr, OpKind)>,
    pub critical_time: Duration,
}

impl Timeline {
    /// A timeline for operations `addrs`, started now.
    pub fn start(ops: Vec<(InstanceAddr, OpKind, Vec<usize>)>) -> Timeline {
        let n = ops.len();
        Timeline {
            wall: Duration::ZERO,
            ops: ops
                .into_iter()
                .map(|(address, op, after)| OpTiming {
                    address,
                    op,
                    ready: Duration::ZERO,
                    started: None,
                    finished: None,
                    ok: false,
                    phases: Vec::new(),
                    after,
                })
                .collect(),
            origin: Some(Instant::now()),
            sinks: (0..n).map(|_| Arc::default()).collect(),
        }
    }

    fn now(&self) -> Duration {
        self.origin.map_or(Duration::ZERO, |o| o.elapsed())
    }

    pub fn ready(&mut self, id: usize) {
        let now = self.now();
        if let Some(o) = self.ops.get_mut(id) {
            o.ready = now;
        }
    }

    /// The trace handle of operation `id`, marked started.
    pub fn started(&mut self, id: usize) -> OpTrace {
        let now = self.now();
        if let Some(o) = self.ops.get_mut(id) {
            o.started = Some(now);
        }
        match (self.origin, self.sinks.get(id)) {
            (Some(origin), Some(s)) => OpTrace::recording(origin, s.clone()),
            _ => OpTrace::default(),
        }
    }

    pub fn finished(&mut self, id: usize, ok: bool) {
        let now = self.now();
        if let Some(o) = self.ops.get_mut(id) {
            o.finished = Some(now);
            o.ok = ok;
        }
    }

    /// Close the timeline: the wall time and every phase reported.
    pub fn end(&mut self) {
        self.wall = self.now();
        for (o, s) in self.ops.iter_mut().zip(&self.sinks) {
            let mut phases = std::mem::take(&mut *s.lock().unwrap_or_else(|e| e.into_inner()));
            phases.sort_by_key(|p| p.start);
            o.phases = phases;
        }
    }

    /// Wall time, busy time, parallelism and the critical path.
    pub fn summary(&self) -> TimelineSummary {
        let busy: Duration = self.ops.iter().map(OpTiming::ran).sum();
        // Longest path by running time; `after` only points backwards in
        // the order operations became ready, so a pass in finish order works.
        let mut order: Vec<usize> = (0..self.ops.len())
            .filter(|i| self.ops[*i].finished.is_some())
            .collect();
        order.sort_by_key(|i| self.ops[*i].finished);
        let mut best: Vec<(Duration, Option<usize>)> = vec![(Duration::ZERO, None); self.ops.len()];
        for &i in &order {
            let (prev_time, prev) = self.ops[i]
                .after
                .iter()
                .map(|p| (best[*p].0, Some(*p)))
                .max_by_key(|(t, _)| *t)
                .unwrap_or((Duration::ZERO, None));
            best[i] = (prev_time + self.ops[i].ran(), prev);
        }
        let end = (0..self.ops.len()).max_by_key(|i| best[*i].0);
        let mut path = Vec::new();
        let mut at = end;
        while let Some(i) = at {
            path.push((self.ops[i].address.clone(), self.ops[i].op));
            at = best[i].1;
        }
        path.reverse();
        let wall_s = self.wall.as_secs_f64();
        TimelineSummary {
            wall: self.wall,
            busy,
            parallelism: if wall_s > 0.0 {
                busy.as_secs_f64() / wall_s
            } else {
                0.0
            },
            critical_time: end.map_or(Duration::ZERO, |i| best[i].0),
            critical_path: path,
        }
    }

    /// The Chrome trace-event document: one track per concurrent lane,
    /// spans named by instance address (queued, then the operation with its
    /// platform phases nested inside).
    pub fn chrome_trace(&self, process_name: &str) -> Value {
        let us = |d: Duration| d.as_micros() as u64;
        // Lanes: an operation takes the lowest lane free at its start.
        let mut by_start: Vec<usize> = (0..self.ops.len())
            .filter(|i| self.ops[*i].started.is_some())
            .collect();
        by_start.sort_by_key(|i| self.ops[*i].started);
        let mut lane_free: Vec<Duration> = Vec::new();
        let mut lane_of = vec![0usize; self.ops.len()];
        for i in by_start {
            let o = &self.ops[i];
            let (s, f) = (
                o.started.unwrap_or_default(),
                o.finished.unwrap_or(self.wall),
            );
            let lane = match lane_free.iter().position(|free| *free <= s) {
                Some(l) => l,
                None => {
                    lane_free.push(Duration::ZERO);
                    lane_free.len() - 1
                }
            };
            lane_free[lane] = f;
            lane_of[i] = lane;
        }
        let mut events = vec![json!({
            "name": "process_name", "ph": "M", "pid": 1, "tid": 0,
            "args": { "name": process_name },
        })];
        for (lane, _) in lane_free.iter().enumerate() {
            events.push(json!({
                "name": "thread_name", "ph": "M", "pid": 1, "tid": lane + 1,
                "args": { "name": format!("lane {}", lane + 1) },
            }));
        }
        for (i, o) in self.ops.iter().enumerate() {
            let Some(started) = o.started else { continue };
            let tid = lane_of[i] + 1;
            let name = o.address.to_string();
            if started > o.ready {
                events.push(json!({
                    "name": format!("{name} (queued)"), "cat": "queued", "ph": "X",
                    "ts": us(o.ready), "dur": us(started - o.ready), "pid": 1, "tid": tid,
                    "args": { "op": o.op },
                }));
            }
            let finished = o.finished.unwrap_or(self.wall);
            events.push(json!({
                "name": name, "cat": o.op.to_string(), "ph": "X",
                "ts": us(started), "dur": us(finished.saturating_sub(started)), "pid": 1, "tid": tid,
                "args": { "op": o.op, "result": if o.finished.is_none() { "unfinished" } else if o.ok { "finished" } else { "failed" } },
            }));
            for p in &o.phases {
                events.push(json!({
                    "name": p.name, "cat": "phase", "ph": "X",
                    "ts": us(p.start), "dur": us(p.end.saturating_sub(p.start)), "pid": 1, "tid": tid,
                    "args": { "instance": name },
                }));
            }
        }
        json!({ "traceEvents": events, "displayTimeUnit": "ms" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_critical_path_is_the_longest_chain() {
        let a: InstanceAddr = "network.lab".parse().unwrap();
        let b: InstanceAddr = "node.a".parse().unwrap();
        let c: InstanceAddr = "node.b".parse().unwrap();
        let mut t = Timeline::start(vec![
            (a.clone(), OpKind::Create, vec![]),
            (b.clone(), OpKind::Create, vec![0]),
            (c.clone(), OpKind::Create, vec![0]),
        ]);
        t.origin = None;
        let times = [(0, 10), (10, 40), (10, 20)];
        for (o, (s, f)) in t.ops.iter_mut().zip(times) {
            o.started = Some(ms(s));
            o.finished = Some(ms(f));
            o.ok = true;
        }
        t.wall = ms(40);
        let s = t.summary();
        assert_eq!(s.busy, ms(50));
        assert!((s.parallelism - 1.25).abs() < 1e-9);
        assert_eq!(s.critical_time, ms(40));
        assert_eq!(s.critical_path, [(a, OpKind::Create), (b, OpKind::Create)]);
        let doc = t.chrome_trace("tg apply");
        let spans: Vec<&Value> = doc["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X" && e["cat"] == "create")
            .collect();
        assert_eq!(spans.len(), 3);
        // node.a and node.b overlap: two lanes.
        assert_ne!(spans[1]["tid"], spans[2]["tid"]);
        assert_eq!(spans[1]["name"], "node.a");
        assert_eq!(spans[1]["ts"], 10_000);
    }

    #[test]
    fn phases_nest_in_their_operation() {
        let a: InstanceAddr = "node.a".parse().unwrap();
        let mut t = Timeline::start(vec![(a, OpKind::Create, vec![])]);
        let trace = t.started(0);
        drop(trace.phase("namespaces"));
        drop(trace.phase("links"));
        OpTrace::default().phase("ignored");
        t.finished(0, true);
        t.end();
        let names: Vec<&str> = t.ops[0].phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["namespaces", "links"]);
    }
}
