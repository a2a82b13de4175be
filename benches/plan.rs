//! Plan benchmark: a 10,000-node testbed.
//!
//! 1. plan against empty state (target: ≤ 1.0 s, ≤ 400 MB peak);
//! 2. a no-change plan of 10,000 recorded instances with refresh off
//!    (target: ≤ 1.0 s).
//!
//! Loads the testbed from HCL through `config::load`, plans with the library
//! API (`ops::plan`) against an in-memory store, and prints the figures with
//! the peak resident memory (`VmHWM` from `/proc/self/status`). Run with
//! `cargo bench --bench plan` (`TG_BENCH_NODES=N` for another size).
//!
//! Measured on the 2-core development machine (2026-11-26): load 0.13 s,
//! empty-state plan 0.06 s at 98 MiB peak, no-change plan without refresh
//! 0.14 s, plan with 10,001 refresh reads 0.74 s, apply of 10,001 creates
//! through a no-op platform 0.64 s. Through the CLI with SQLite state and
//! the test double: `tg plan` 0.39 s / 127 MiB, `tg apply` 7.6 s,
//! `tg plan -refresh=false` (no changes) 0.49 s, `tg destroy` 4.6 s.

use std::sync::Arc;
use std::time::Instant;

use tg::apply::NoHook;
use tg::config::{LoadOptions, Prior};
use tg::environment::Caller;
use tg::names::SessionName;
use tg::ops::{self, Context, PlanOptions};
use tg::platform::registry::Registry;
use tg::platform::testdouble::TestDouble;
use tg::state::memory::MemoryStore;
use tg::state::{InstanceRecord, InstanceStatus, Snapshot, StateStore};

const DEFAULT_NODES: usize = 10_000;

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    #[allow(non_snake_case)]
    let NODES: usize = std::env::var("TG_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_NODES);
    let dir = tempfile::tempdir().expect("temp dir");
    // The config accepts `platform = "double"` only when the test double is on.
    std::env::set_var(tg::platform::testdouble::ENV_DIR, dir.path().join("double"));
    std::fs::write(
        dir.path().join("bench.tg.hcl"),
        format!(
            r#"
network "lab" {{
  cidr = "10.64.0.0/16"
}}

node "n" {{
  count    = {NODES}
  image    = "host"
  network  = network.lab
  platform = "double"
  labels   = {{ role = "bench" }}
}}
"#
        ),
    )
    .expect("write testbed");

    let t = Instant::now();
    let (testbed, _) = tg::config::load(&LoadOptions {
        dir: dir.path().to_path_buf(),
        prior: Prior::default(),
        drivers: vec!["double".into(), "null".into()],
        ..LoadOptions::default()
    })
    .unwrap_or_else(|e| {
        panic!(
            "{}",
            tg::diagnostics::render_all(&e.diagnostics, &e.sources)
        )
    });
    let load = t.elapsed();
    assert_eq!(testbed.instances.len(), NODES + 1);

    let mut registry = Registry::new();
    registry.register(Arc::new(TestDouble::new(dir.path().join("double"))));
    let store = MemoryStore::new();
    let ctx = Context {
        store: Arc::new(store.clone()),
        registry,
        session: SessionName::parse("bench").unwrap(),
        testbed_dir: dir.path().to_path_buf(),
        hook: Arc::new(NoHook),
        caller: Caller::user_of_this_process("bench"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let t = Instant::now();
    let plan = rt
        .block_on(plan_locked(&ctx, &testbed, &PlanOptions::default()))
        .expect("plan");
    let empty = t.elapsed();
    assert_eq!(plan.summary().add, NODES + 1);
    let text = Instant::now();
    let rendered = tg::plan::render_text::render_plan(&plan, Default::default());
    let render = text.elapsed();
    let hwm_empty = vm_hwm_mib();

    // Record every instance as applied, then plan again without refresh.
    let mut snap = Snapshot {
        lineage: plan.lineage.clone(),
        ..Snapshot::default()
    };
    for c in &plan.changes {
        snap.instances.insert(
            c.address.clone(),
            InstanceRecord {
                address: c.address.clone(),
                platform: c.platform.clone(),
                status: InstanceStatus::Ready,
                spec: c.after.clone().expect("create has an after"),
                private: serde_json::Value::Null,
                dependencies: c.depends_on.clone(),
                attributes: c.attributes.clone(),
                sensitive: c.sensitive.clone(),
            },
        );
    }
    store.import("bench", &snap).expect("import");
    let t = Instant::now();
    let noop = rt
        .block_on(plan_locked(
            &ctx,
            &testbed,
            &PlanOptions {
                refresh: false,
                ..PlanOptions::default()
            },
        ))
        .expect("plan");
    let nochange = t.elapsed();
    assert!(!noop.has_changes());
    let t = Instant::now();
    let refreshed = rt
        .block_on(plan_locked(&ctx, &testbed, &PlanOptions::default()))
        .expect("plan");
    let with_refresh = t.elapsed();
    // The double's objects do not exist, so everything is drift here.

    let (drift, refreshed_len) = (refreshed.drift.len(), refreshed.changes.len());
    drop((plan, noop, refreshed, snap));
    // Apply every create through a platform that does nothing: the
    // walker's own overhead (graph, permits, a state write per instance).
    let fresh = MemoryStore::new();
    let mut null_registry = Registry::new();
    null_registry.register(Arc::new(Null));
    let null_ctx = Context {
        store: Arc::new(fresh.clone()),
        registry: null_registry,
        session: SessionName::parse("walk").unwrap(),
        testbed_dir: dir.path().to_path_buf(),
        hook: Arc::new(NoHook),
        caller: Caller::user_of_this_process("bench"),
    };
    let mut null_bed = testbed.clone();
    for d in null_bed.instances.values_mut() {
        d.platform = Some("null".into());
    }
    let locked = rt
        .block_on(ops::lock(null_ctx, "apply", std::time::Duration::ZERO))
        .expect("lock");
    let walk_plan = rt
        .block_on(ops::plan(&locked, &null_bed, &PlanOptions::default()))
        .expect("plan");
    let t = Instant::now();
    let report = rt
        .block_on(ops::apply(
            &locked,
            &walk_plan,
            &tg::apply::WalkOptions::default(),
        ))
        .expect("apply");
    let walk = t.elapsed();
    assert!(report.success());
    assert_eq!(report.added, NODES + 1);

    assert_eq!(drift, NODES + 1);
    assert_eq!(refreshed_len, NODES + 1);
    println!("plan benchmark, {NODES} nodes + 1 network");
    println!(
        "  config::load (HCL, IPAM):            {:>8.3} s",
        load.as_secs_f64()
    );
    println!(
        "  plan, empty state:                   {:>8.3} s   (target <= 1.0 s)",
        empty.as_secs_f64()
    );
    println!(
        "  render text ({:>5} KiB):             {:>8.3} s",
        rendered.len() / 1024,
        render.as_secs_f64()
    );
    println!(
        "  peak memory after first plan (VmHWM): {:>7.1} MiB (target <= 400 MB)",
        hwm_empty
    );
    println!(
        "  plan, no changes, -refresh=false:    {:>8.3} s   (target <= 1.0 s)",
        nochange.as_secs_f64()
    );
    println!(
        "  plan with a refresh read of each:    {:>8.3} s",
        with_refresh.as_secs_f64()
    );
    println!(
        "  apply every create, no-op platform: {:>8.3} s",
        walk.as_secs_f64()
    );
    println!(
        "  peak memory at the end (VmHWM):      {:>8.1} MiB",
        vm_hwm_mib()
    );
}

/// Lock the session, plan, release.
async fn plan_locked(
    ctx: &Context,
    testbed: &tg::config::model::Testbed,
    opts: &PlanOptions,
) -> ops::OpsResult<tg::plan::Plan> {
    let locked = ops::lock(ctx.clone(), "plan", std::time::Duration::ZERO).await?;
    let plan = ops::plan(&locked, testbed, opts).await;
    locked.release().await?;
    plan
}

/// A platform that accepts everything and does nothing.
struct Null;

#[async_trait::async_trait]
impl tg::platform::Platform for Null {
    fn name(&self) -> &str {
        "null"
    }
    fn check_node(&self, _: &tg::platform::NodeSpec) -> tg::platform::Capability {
        tg::platform::Capability::default()
    }
    async fn create(
        &self,
        _: tg::platform::CreateRequest,
    ) -> tg::platform::PlatformResult<tg::platform::CreateResponse> {
        Ok(Default::default())
    }
    async fn read(
        &self,
        r: tg::platform::ReadRequest,
    ) -> tg::platform::PlatformResult<tg::platform::ReadResponse> {
        Ok(tg::platform::ReadResponse::Present { spec: r.spec })
    }
    async fn update(
        &self,
        _: tg::platform::UpdateRequest,
    ) -> tg::platform::PlatformResult<tg::platform::CreateResponse> {
        Ok(Default::default())
    }
    async fn delete(&self, _: tg::platform::DeleteRequest) -> tg::platform::PlatformResult<()> {
        Ok(())
    }
    async fn exec(
        &self,
        _: tg::platform::ExecRequest,
    ) -> tg::platform::PlatformResult<tg::platform::ExecStatus> {
        Ok(Default::default())
    }
}
