//! What recording state costs an apply, SQLite and PostgreSQL side by side.
//!
//! Applies (then destroys) a testbed of N nodes (10,000 unless
//! `TG_BENCH_INSTANCES` says) through the library (`ops::plan`,
//! `ops::apply`) and the test-double platform with no delay, once per
//! store: the in-memory store (the baseline: the same walk, platform calls
//! and double's files, but no durable state), SQLite in a file on disk, and
//! PostgreSQL at `TG_BENCH_PG_URL`, else `TG_PG_TEST_URL`, else the server
//! `.ci/postgres.sh` starts (skipped when there is none). The state
//! overhead is a store's time minus the baseline's. Every store is wrapped
//! to count its transactions, so the table shows how well writes group.
//! The last column is the cost of one synced write alone (one transaction
//! and one fsync), for comparison.
//!
//! `cargo bench --bench state_overhead` (`TG_BENCH_PARALLELISM`, default 10
//! like `tg apply`).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tg::apply::{NoHook, WalkOptions};
use tg::config::model::Testbed;
use tg::config::{LoadOptions, Prior};
use tg::environment::Caller;
use tg::names::SessionName;
use tg::ops::{self, Context, PlanOptions};
use tg::platform::registry::Registry;
use tg::platform::testdouble::TestDouble;
use tg::state::memory::MemoryStore;
use tg::state::postgres::PostgresStore;
use tg::state::sqlite::SqliteStore;
use tg::state::{
    LockInfo, SessionInfo, SessionLock, Snapshot, StateResult, StateStore, StateWrite,
};

/// A store that counts the transactions and writes that reach it.
struct Counting {
    inner: Box<dyn StateStore>,
    batches: AtomicU64,
    writes: AtomicU64,
}

impl Counting {
    fn new(inner: Box<dyn StateStore>) -> Counting {
        Counting {
            inner,
            batches: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    fn take(&self) -> (u64, u64) {
        (
            self.batches.swap(0, Ordering::SeqCst),
            self.writes.swap(0, Ordering::SeqCst),
        )
    }
}

impl StateStore for Counting {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn list_sessions(&self) -> StateResult<Vec<SessionInfo>> {
        self.inner.list_sessions()
    }
    fn get_session(&self, name: &str) -> StateResult<Option<SessionInfo>> {
        self.inner.get_session(name)
    }
    fn create_session(&self, name: &str) -> StateResult<SessionInfo> {
        self.inner.create_session(name)
    }
    fn delete_session(&self, name: &str) -> StateResult<()> {
        self.inner.delete_session(name)
    }
    fn load(&self, session: &str) -> StateResult<Snapshot> {
        self.inner.load(session)
    }
    fn write_batch(&self, session: &str, writes: &[StateWrite]) -> StateResult<u64> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.writes.fetch_add(writes.len() as u64, Ordering::SeqCst);
        self.inner.write_batch(session, writes)
    }
    fn import(&self, session: &str, snapshot: &Snapshot) -> StateResult<u64> {
        self.inner.import(session, snapshot)
    }
    fn lock(&self, request: LockInfo, timeout: Duration) -> StateResult<Box<dyn SessionLock>> {
        self.inner.lock(request, timeout)
    }
    fn lock_holder(&self, session: &str) -> StateResult<Option<LockInfo>> {
        self.inner.lock_holder(session)
    }
    fn force_unlock(&self, session: &str, id: &str) -> StateResult<()> {
        self.inner.force_unlock(session, id)
    }
}

/// One store's figures.
struct Run {
    apply: Duration,
    apply_commits: u64,
    apply_writes: u64,
    destroy: Duration,
    destroy_commits: u64,
}

fn run_once(
    rt: &tokio::runtime::Runtime,
    store: Arc<Counting>,
    registry: &Registry,
    testbed: &Testbed,
    dir: &std::path::Path,
    parallelism: usize,
) -> Result<Run, String> {
    let session = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let ctx = Context {
        store: store.clone(),
        registry: registry.clone(),
        session: SessionName::parse(&session).expect("a session name"),
        testbed_dir: dir.to_path_buf(),
        hook: Arc::new(NoHook),
        caller: Caller::user_of_this_process("bench"),
    };
    let walk = WalkOptions {
        parallelism,
        ..WalkOptions::default()
    };
    let no_refresh = PlanOptions {
        refresh: false,
        ..PlanOptions::default()
    };
    let err = |e: ops::OpsError| e.to_string();

    let locked = rt
        .block_on(ops::lock(ctx.clone(), "apply", Duration::from_secs(5)))
        .map_err(err)?;
    let plan = rt
        .block_on(ops::plan(&locked, testbed, &no_refresh))
        .map_err(err)?;
    store.take();
    let t = Instant::now();
    let report = rt
        .block_on(ops::apply(&locked, &plan, &walk))
        .map_err(err)?;
    let apply = t.elapsed();
    let (apply_commits, apply_writes) = store.take();
    if !report.success() || report.added != testbed.instances.len() {
        return Err(format!("apply did not add everything: {report:?}"));
    }
    rt.block_on(locked.release()).map_err(err)?;

    let locked = rt
        .block_on(ops::lock(ctx, "destroy", Duration::from_secs(5)))
        .map_err(err)?;
    let destroy_opts = PlanOptions {
        destroy: true,
        ..no_refresh
    };
    let plan = rt
        .block_on(ops::plan(&locked, testbed, &destroy_opts))
        .map_err(err)?;
    let t = Instant::now();
    let report = rt
        .block_on(ops::apply(&locked, &plan, &walk))
        .map_err(err)?;
    let destroy = t.elapsed();
    let (destroy_commits, _) = store.take();
    if !report.success() {
        return Err(format!("destroy failed: {report:?}"));
    }
    rt.block_on(locked.release()).map_err(err)?;
    store.delete_session(&session).map_err(|e| e.to_string())?;
    Ok(Run {
        apply,
        apply_commits,
        apply_writes,
        destroy,
        destroy_commits,
    })
}

/// One write alone, synced (more than `SYNC_INTERVAL` after the last one):
/// the latency of one durable transaction.
fn single_write(store: &dyn StateStore, n: u64) -> Result<Duration, String> {
    let session = format!("one-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    store.create_session(&session).map_err(|e| e.to_string())?;
    let mut total = Duration::ZERO;
    for i in 0..n {
        std::thread::sleep(tg::state::SYNC_INTERVAL);
        let t = Instant::now();
        store
            .put_outputs(
                &session,
                &BTreeMap::from([(
                    "n".to_string(),
                    tg::state::OutputRecord {
                        value: i.into(),
                        sensitive: false,
                    },
                )]),
            )
            .map_err(|e| e.to_string())?;
        total += t.elapsed();
    }
    let each = total / n.max(1) as u32;
    store.delete_session(&session).map_err(|e| e.to_string())?;
    Ok(each)
}

fn postgres_url() -> Result<String, String> {
    for var in ["TG_BENCH_PG_URL", "TG_PG_TEST_URL"] {
        if let Ok(url) = std::env::var(var) {
            if !url.is_empty() {
                return Ok(url);
            }
        }
    }
    let script = format!("{}/.ci/postgres.sh", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{script} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| l.trim().to_string())
        .ok_or_else(|| format!("{script} printed no URL"))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too,
    // so keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let nodes = env_number("TG_BENCH_INSTANCES", if quick { 50 } else { 10_000 });
    let parallelism = env_number("TG_BENCH_PARALLELISM", 10).max(1) as usize;

    let dir = tempfile::tempdir().expect("a temporary directory");
    // The double's files on tmpfs when there is one: its cost is the same
    // for every store, so keep it small.
    let double_dir = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").expect("a tmpfs directory")
    } else {
        tempfile::tempdir().expect("a temporary directory")
    };
    std::fs::write(
        double_dir.path().join("config.json"),
        format!(r#"{{ "max_parallelism": {parallelism} }}"#),
    )
    .expect("double config");
    std::fs::write(
        dir.path().join("bench.tg.hcl"),
        format!(
            r#"
network "lab" {{
  cidr = "10.64.0.0/16"
}}

node "n" {{
  count    = {}
  image    = "host"
  network  = network.lab
  platform = "double"
  labels   = {{ role = "bench" }}
}}
"#,
            nodes.saturating_sub(1)
        ),
    )
    .expect("write testbed");
    let (testbed, _) = tg::config::load(&LoadOptions {
        dir: dir.path().to_path_buf(),
        prior: Prior::default(),
        drivers: vec!["double".into()],
        ..LoadOptions::default()
    })
    .unwrap_or_else(|e| {
        panic!(
            "{}",
            tg::diagnostics::render_all(&e.diagnostics, &e.sources)
        )
    });
    let mut registry = Registry::new();
    registry.register(Arc::new(TestDouble::new(double_dir.path())));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    type Open = Box<dyn Fn() -> Result<Box<dyn StateStore>, String>>;
    let sqlite_path = dir.path().join(".tg/state.db");
    let pg = postgres_url();
    let backends: Vec<(&str, Open)> = vec![
        (
            "memory",
            Box::new(|| Ok(Box::new(MemoryStore::new()) as Box<dyn StateStore>)),
        ),
        (
            "sqlite",
            Box::new(move || {
                SqliteStore::open(&sqlite_path)
                    .map(|s| Box::new(s) as Box<dyn StateStore>)
                    .map_err(|e| e.to_string())
            }),
        ),
        (
            "postgres",
            Box::new(move || {
                let url = pg.clone()?;
                PostgresStore::connect(&url)
                    .map(|s| Box::new(s) as Box<dyn StateStore>)
                    .map_err(|e| e.to_string())
            }),
        ),
    ];

    println!(
        "state overhead: apply then destroy of {} instances through the test double (no delay), parallelism {parallelism}",
        testbed.instances.len()
    );
    println!(
        "{:<9} {:>9} {:>10} {:>17} {:>9} {:>10} {:>11} {:>12}",
        "store",
        "apply",
        "overhead",
        "commits/writes",
        "destroy",
        "overhead",
        "commits",
        "synced write"
    );
    let mut baseline: Option<(Duration, Duration)> = None;
    // The baseline is measured before and after the others; the faster
    // of its two runs counts.
    let order = ["memory", "sqlite", "postgres", "memory"];
    let mut rows = Vec::new();
    for name in order {
        let (_, open) = backends.iter().find(|(n, _)| *n == name).expect("a store");
        let result = open().and_then(|s| {
            let store = Arc::new(Counting::new(s));
            let run = run_once(
                &rt,
                store.clone(),
                &registry,
                &testbed,
                dir.path(),
                parallelism,
            )?;
            let one = single_write(store.as_ref(), if quick { 2 } else { 20 })?;
            Ok((run, one))
        });
        match (&result, name) {
            (Ok((run, _)), "memory") => {
                let b = baseline.get_or_insert((run.apply, run.destroy));
                *b = (b.0.min(run.apply), b.1.min(run.destroy));
            }
            _ => rows.push((name, result)),
        }
    }
    let (base_apply, base_destroy) = baseline.unwrap_or_default();
    println!(
        "{:<9} {:>9} {:>10} {:>17} {:>9} {:>10} {:>11} {:>12}",
        "memory",
        secs(base_apply),
        "-",
        "-",
        secs(base_destroy),
        "-",
        "-",
        "-"
    );
    for (name, result) in rows {
        match result {
            Ok((r, one)) => println!(
                "{:<9} {:>9} {:>10} {:>17} {:>9} {:>10} {:>11} {:>12}",
                name,
                secs(r.apply),
                secs(r.apply.saturating_sub(base_apply)),
                format!("{}/{}", r.apply_commits, r.apply_writes),
                secs(r.destroy),
                secs(r.destroy.saturating_sub(base_destroy)),
                r.destroy_commits,
                format!("{:.2} ms", one.as_secs_f64() * 1000.0),
            ),
            Err(e) => println!("{name:<9} skipped: {e}"),
        }
    }
}
