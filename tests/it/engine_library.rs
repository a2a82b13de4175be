//! The engine as a library (`tg::ops` with the memory store and a store
//! that fails), netns through the library, and where state keeps pool
//! CIDRs. Shares the test-double bed of `engine`.

use std::time::Duration;

use serde_json::Value;

use crate::engine::{Bed, BED};
use crate::support::Testbed;

/// The library API with the in-memory store: what Rust users call. Nothing
/// comes from the process: the environment, the caller and the platform
/// drivers are values.
#[test]
fn library_plan_and_apply_with_the_memory_store() {
    use std::sync::Arc;
    use tg::apply::WalkOptions;
    use tg::ops::{self, PlanOptions};
    use tg::state::memory::MemoryStore;
    use tg::state::StateStore;

    let bed = Bed::new(BED);
    let ws = bed.workspace();
    let store = MemoryStore::new();
    let ctx = Bed::context(&ws, Arc::new(store.clone()), "lib");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let planned = rt
        .block_on(ops::plan_context(
            &ws,
            ctx.clone(),
            &PlanOptions::default(),
            "apply",
            std::time::Duration::ZERO,
        ))
        .unwrap();
    // Planning neither creates the session nor lets another run in.
    assert!(store.get_session("lib").unwrap().is_none());
    assert!(store.lock_holder("lib").unwrap().is_some());
    let plan = planned.plan.clone();
    assert_eq!(plan.summary().add, 6);
    let report = rt
        .block_on(ops::apply(&planned.locked, &plan, &WalkOptions::default()))
        .unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!((report.added, report.recorded), (6, Some(6)));
    let snap = store.load("lib").unwrap();
    assert_eq!(snap.instances.len(), 6);
    assert_eq!(
        snap.outputs["edge_addresses"].value,
        serde_json::json!(["10.42.0.2", "10.42.0.3"])
    );
    // Applying the same plan again is refused: the state moved on.
    let err = rt
        .block_on(ops::apply(&planned.locked, &plan, &WalkOptions::default()))
        .unwrap_err();
    assert!(err.to_string().contains("run `tg plan` again"), "{err}");
    rt.block_on(planned.locked.release()).unwrap();
    assert!(store.lock_holder("lib").unwrap().is_none());
    // And the library's one-call destroy takes the lock, plans and applies.
    let (plan, report) = rt
        .block_on(ops::destroy(
            &ws,
            ctx,
            &PlanOptions::default(),
            &WalkOptions::default(),
            std::time::Duration::ZERO,
        ))
        .unwrap();
    assert_eq!(plan.summary().destroy, 6);
    assert!(report.success(), "{report:?}");
    assert!(store.load("lib").unwrap().instances.is_empty());
    assert!(store.lock_holder("lib").unwrap().is_none());
}

/// A real netns testbed end to end (root only): apply, exec across nodes,
/// no-change plan, destroy. The session name is unique to this run and a
/// guard destroys it even when the test fails.
#[test]
fn netns_apply_exec_destroy() {
    crate::require_root!();
    let tb = Testbed::new(&[(
        "main.tg.hcl",
        r#"
network "lab" {
  cidr = "10.78.0.0/24"
}
node "edge" {
  count   = 2
  image   = "host"
  network = network.lab
}
"#,
    )]);
    let session = format!("eng{}", std::process::id());
    struct Destroy<'a>(&'a Testbed, String);
    impl Drop for Destroy<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .tg(&["--session", &self.1, "destroy", "-auto-approve"]);
        }
    }
    let _guard = Destroy(&tb, session.clone());
    let s = session.as_str();
    let r = tb.tg(&["--session", s, "apply", "-auto-approve"]);
    r.expect_code(0);
    let r = tb.tg(&[
        "--session",
        s,
        "exec",
        "node.edge[0]",
        "--",
        "ping",
        "-c1",
        "-W2",
        "10.78.0.3",
    ]);
    r.expect_code(0);
    let r = tb.tg(&["--session", s, "exec", "node.edge", "--", "hostname"]);
    r.expect_code(0);
    assert_eq!(
        crate::support::sorted_lines(&r.stdout()),
        ["[edge-0] edge-0", "[edge-1] edge-1"]
    );
    tb.tg(&["--session", s, "plan", "-detailed-exitcode"])
        .expect_code(0);
    let r = tb.tg(&["--session", s, "destroy", "-auto-approve"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("Destroy complete! 3 destroyed."),
        "{}",
        r.stdout()
    );
}

/// A store whose writes start failing after `ok` puts (a full disk).
struct FullDisk {
    inner: tg::state::memory::MemoryStore,
    ok: std::sync::atomic::AtomicUsize,
}

impl tg::state::StateStore for FullDisk {
    fn location(&self) -> String {
        "full disk".into()
    }
    fn list_sessions(&self) -> tg::state::StateResult<Vec<tg::state::SessionInfo>> {
        self.inner.list_sessions()
    }
    fn get_session(&self, name: &str) -> tg::state::StateResult<Option<tg::state::SessionInfo>> {
        self.inner.get_session(name)
    }
    fn create_session(&self, name: &str) -> tg::state::StateResult<tg::state::SessionInfo> {
        self.inner.create_session(name)
    }
    fn delete_session(&self, name: &str) -> tg::state::StateResult<()> {
        self.inner.delete_session(name)
    }
    fn load(&self, session: &str) -> tg::state::StateResult<tg::state::Snapshot> {
        self.inner.load(session)
    }
    /// A batch is all or nothing: one with more puts than are left fails
    /// whole, and so does every later one.
    fn write_batch(
        &self,
        session: &str,
        writes: &[tg::state::StateWrite],
    ) -> tg::state::StateResult<u64> {
        use std::sync::atomic::Ordering;
        let puts = writes
            .iter()
            .filter(|w| matches!(w, tg::state::StateWrite::Put(_)))
            .count();
        if self
            .ok
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(puts))
            })
            .is_ok_and(|before| before < puts)
        {
            return Err(tg::state::StateError::Backend {
                location: "full disk".into(),
                message: "database or disk is full".into(),
            });
        }
        self.inner.write_batch(session, writes)
    }
    fn import(&self, session: &str, snapshot: &tg::state::Snapshot) -> tg::state::StateResult<u64> {
        self.inner.import(session, snapshot)
    }
    fn lock(
        &self,
        request: tg::state::LockInfo,
        timeout: Duration,
    ) -> tg::state::StateResult<Box<dyn tg::state::SessionLock>> {
        self.inner.lock(request, timeout)
    }
    fn lock_holder(&self, session: &str) -> tg::state::StateResult<Option<tg::state::LockInfo>> {
        self.inner.lock_holder(session)
    }
    fn force_unlock(&self, session: &str, id: &str) -> tg::state::StateResult<()> {
        self.inner.force_unlock(session, id)
    }
}

/// When state writes fail mid-apply, the report counts only what state
/// holds, and names what finished but could not be recorded.
#[test]
fn a_full_disk_is_reported_as_state_holds_it() {
    use std::sync::Arc;
    use tg::apply::WalkOptions;
    use tg::ops::{self, PlanOptions};
    use tg::state::{InstanceStatus, StateStore};

    let bed = Bed::new(BED);
    let ws = bed.workspace();
    let inner = tg::state::memory::MemoryStore::new();
    // Five puts: the network's placeholder and record, then two node
    // placeholders and one node record; the other node's record fails.
    let store = Arc::new(FullDisk {
        inner: inner.clone(),
        ok: 5.into(),
    });
    let ctx = Bed::context(&ws, store, "disk");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let planned = rt
        .block_on(ops::plan_context(
            &ws,
            ctx,
            &PlanOptions::default(),
            "apply",
            Duration::ZERO,
        ))
        .unwrap();
    let report = rt
        .block_on(ops::apply(
            &planned.locked,
            &planned.plan,
            &WalkOptions {
                parallelism: 2,
                ..WalkOptions::default()
            },
        ))
        .unwrap();
    assert!(!report.success());
    assert!(report
        .state_error
        .as_deref()
        .unwrap()
        .contains("disk is full"));
    assert!(!report.unrecorded.is_empty(), "{report:?}");
    let snap = inner.load("disk").unwrap();
    let ready = snap
        .instances
        .values()
        .filter(|r| r.status == InstanceStatus::Ready)
        .count();
    assert_eq!(report.added, ready, "{report:?}\n{snap:#?}");
    assert_eq!(report.recorded, Some(snap.instances.len()));
    for (a, _) in &report.unrecorded {
        assert_eq!(snap.instances[a].status, InstanceStatus::Tainted, "{a}");
    }
}

/// A network without `cidr` keeps the pool /24 state recorded for it when a
/// network is declared before it later (the evaluation's prior, not the
/// parse options', is what counts).
#[test]
fn pool_cidrs_stay_where_state_recorded_them() {
    let bed = Bed::new("network \"b\" {}\n\nnode \"n\" {\n  image    = \"host\"\n  network  = network.b\n  platform = \"double\"\n}\n");
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    bed.tb.write(
        "main.tg.hcl",
        "network \"a\" {}\n\nnetwork \"b\" {}\n\nnode \"n\" {\n  image    = \"host\"\n  network  = network.b\n  platform = \"double\"\n}\n",
    );
    let r = bed.tg(&["plan", "-json"]);
    r.expect_code(0);
    let doc: Value = serde_json::from_str(&r.stdout()).unwrap();
    let acts: Vec<String> = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["address"].as_str().unwrap(),
                c["change"]["actions"][0].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        acts,
        ["network.a create", "network.b no-op", "node.n no-op"]
    );
}
