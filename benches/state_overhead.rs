//! What recording state costs an apply: N instance records (1,000 unless
//! `TG_BENCH_INSTANCES` says) written one by one while the session lock is
//! held, as an apply records each instance when it is made, then the whole
//! session loaded once. Runs every backend through `&dyn StateStore`:
//! SQLite in a temporary file, PostgreSQL at `TG_BENCH_PG_URL` or else the
//! test cluster that `.ci/postgres.sh` starts (skipped when neither works).
//!
//! `cargo bench --bench state_overhead`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tg::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use tg::platform::{Interface, NodeSpec, Spec};
use tg::state::postgres::PostgresStore;
use tg::state::sqlite::SqliteStore;
use tg::state::{InstanceRecord, InstanceStatus, LockInfo, StateStore};

/// A node record of a realistic size (about 600 bytes of JSON).
fn record(i: u64) -> InstanceRecord {
    let hostname = format!("edge-{i}");
    InstanceRecord {
        address: InstanceAddr::new(ResourceKind::Node, "edge", InstanceKey::Int(i)),
        platform: "netns".into(),
        status: InstanceStatus::Ready,
        spec: Spec::Node(NodeSpec {
            settings: Default::default(),
            host: None,
            hostname: hostname.clone(),
            image: "debian:bookworm".into(),
            cpus: Some(0.5),
            memory_mib: Some(256),
            labels: [("role".to_string(), "edge".to_string())].into(),
            interfaces: vec![Interface {
                network: "lab".into(),
                address: std::net::Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 2) as u8),
                prefix_len: 16,
                gateway: "10.0.0.1".parse().expect("an address"),
            }],
        }),
        private: json!({
            "netns": format!("tg-bench-{hostname}"),
            "veth": format!("tgv{i:05}"),
            "cgroup": format!("/sys/fs/cgroup/tg/bench/{hostname}"),
            "pid": 40_000 + i,
        }),
        dependencies: vec![InstanceAddr::new(
            ResourceKind::Network,
            "lab",
            InstanceKey::None,
        )],
        attributes: json!({"name": hostname, "address": format!("10.0.{}.{}", i / 250, i % 250 + 2)}),
        sensitive: vec![],
    }
}

struct Run {
    writes: Duration,
    slowest_write: Duration,
    p99_write: Duration,
    load: Duration,
}

fn bench(store: &dyn StateStore, n: u64) -> Result<Run, String> {
    let session = format!("bench-{}", uuid::Uuid::new_v4().simple());
    store.create_session(&session).map_err(|e| e.to_string())?;
    let lock = store
        .lock(
            LockInfo::for_this_process(&session, "apply"),
            Duration::from_secs(5),
        )
        .map_err(|e| e.to_string())?;
    let records: Vec<_> = (0..n).map(record).collect();

    let mut each = Vec::with_capacity(records.len());
    let started = Instant::now();
    for r in &records {
        let t = Instant::now();
        store.put_instance(&session, r).map_err(|e| e.to_string())?;
        each.push(t.elapsed());
    }
    let writes = started.elapsed();

    let t = Instant::now();
    let snapshot = store.load(&session).map_err(|e| e.to_string())?;
    let load = t.elapsed();
    if snapshot.instances.len() as u64 != n || snapshot.serial != n {
        return Err(format!(
            "loaded {} instances at serial {}, expected {n}",
            snapshot.instances.len(),
            snapshot.serial
        ));
    }

    drop(lock);
    store.delete_session(&session).map_err(|e| e.to_string())?;
    each.sort();
    Ok(Run {
        writes,
        slowest_write: each.last().copied().unwrap_or_default(),
        p99_write: each
            .get((each.len() * 99 / 100).min(each.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default(),
        load,
    })
}

fn postgres_url() -> Result<String, String> {
    if let Ok(url) = std::env::var("TG_BENCH_PG_URL") {
        return Ok(url);
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

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A store to measure, or why it could not be opened.
type Backend = Result<Box<dyn StateStore>, String>;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too, so
    // keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("TG_BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20 } else { 1000 });

    let mut backends: Vec<(String, Backend)> = Vec::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("state.db");
    backends.push((
        "sqlite".into(),
        SqliteStore::open(&path)
            .map(|s| Box::new(s) as Box<dyn StateStore>)
            .map_err(|e| e.to_string()),
    ));
    backends.push((
        "postgres".into(),
        postgres_url().and_then(|url| {
            PostgresStore::connect(&url)
                .map(|s| Box::new(s) as Box<dyn StateStore>)
                .map_err(|e| e.to_string())
        }),
    ));

    println!(
        "state overhead: {n} instance writes (one transaction each, lock held), then one load"
    );
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "backend", "writes", "per write", "p99 write", "max write", "load"
    );
    for (name, store) in &backends {
        let result = store
            .as_ref()
            .map_err(|e| e.clone())
            .and_then(|s| bench(s.as_ref(), n));
        match result {
            Ok(r) => println!(
                "{:<10} {:>12} {:>12} {:>12} {:>12} {:>12}",
                name,
                ms(r.writes),
                ms(r.writes / n.max(1) as u32),
                ms(r.p99_write),
                ms(r.slowest_write),
                ms(r.load)
            ),
            Err(e) => println!("{name:<10} skipped: {e}"),
        }
    }
}
