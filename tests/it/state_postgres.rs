//! The PostgreSQL store's own behaviour against a real server: this
//! checkout's test server (`.ci/postgres.sh`, its URL in `TG_PG_TEST_URL`).
//! What every store does is in `state_contract`; here: connection loss, a
//! server restart, concurrent migrations, TLS, URLs and the `PG*`
//! environment, a SIGKILLed holder, `force_unlock` ending a holder's
//! connection, and the engine on PostgreSQL through the library and the CLI.
//!
//! Without a server the tests skip (and fail when `CI` is set). Tests share
//! the `tg` database with unique session names, or make a fresh database
//! (dropped by a guard) when they need an empty one. The restart tests take
//! [`SERVER`] for writing so no other test sees their restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use tg::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use tg::platform::{NetworkSpec, Spec};
use tg::state::postgres::PostgresStore;
use tg::state::{InstanceRecord, InstanceStatus, LockInfo, StateError, StateStore};

/// Held for reading by every test, for writing by the one that restarts
/// the server.
static SERVER: RwLock<()> = RwLock::new(());

const CHILD_ENV: &str = "TG_PG_TEST_HOLD_SESSION";

fn script() -> String {
    format!("{}/.ci/postgres.sh", env!("CARGO_MANIFEST_DIR"))
}

/// The server URL: `TG_PG_TEST_URL`, or what `.ci/postgres.sh` prints
/// (it starts this checkout's server); why neither works otherwise.
fn find_url() -> Result<String, String> {
    if let Ok(url) = std::env::var("TG_PG_TEST_URL") {
        if !url.is_empty() {
            return Ok(url);
        }
    }
    let out = Command::new("bash")
        .arg(script())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run .ci/postgres.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            ".ci/postgres.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| l.trim().to_string())
        .ok_or_else(|| ".ci/postgres.sh printed no URL".to_string())
}

fn try_url() -> Result<&'static str, &'static str> {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    URL.get_or_init(find_url).as_deref().map_err(|e| e.as_str())
}

/// The server URL, starting the server on first use.
pub(crate) fn url() -> &'static str {
    try_url().expect("the PostgreSQL test server")
}

/// The server, started, shared with other tests; `None` (skip) when there
/// is none outside CI. In CI (`CI` set) a missing server fails the test.
pub(crate) fn server() -> Option<RwLockReadGuard<'static, ()>> {
    if let Err(why) = try_url() {
        crate::support::cannot_run(&format!("no PostgreSQL test server ({why})"));
        return None;
    }
    Some(SERVER.read().unwrap_or_else(|e| e.into_inner()))
}

/// The server for writing (no other test runs against it meanwhile).
fn server_alone() -> Option<std::sync::RwLockWriteGuard<'static, ()>> {
    drop(server()?);
    Some(SERVER.write().unwrap_or_else(|e| e.into_inner()))
}

/// The test server's port, from its URL (`postgres://tg:tg@127.0.0.1:PORT/tg`).
fn url_port() -> String {
    let (_, rest) = url().rsplit_once(':').expect("a port in the URL");
    rest.split('/').next().expect("a port").to_string()
}

fn expected_location() -> String {
    format!("postgres tg@127.0.0.1:{}/tg", url_port())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn store() -> PostgresStore {
    PostgresStore::connect(url()).expect("connect to the test server")
}

pub(crate) fn raw(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("raw connection")
}

/// A database of its own, dropped when the test ends (even by panic).
pub(crate) struct FreshDb {
    name: String,
}

impl FreshDb {
    pub(crate) fn new() -> FreshDb {
        let name = format!("tgt_{}", uuid::Uuid::new_v4().simple());
        raw(url())
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        FreshDb { name }
    }

    pub(crate) fn url(&self) -> String {
        let (server, _db) = url().rsplit_once('/').expect("the URL names a database");
        format!("{server}/{}", self.name)
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn addr(i: u64) -> InstanceAddr {
    InstanceAddr::new(ResourceKind::Network, "lab", InstanceKey::Int(i))
}

fn record(i: u64) -> InstanceRecord {
    InstanceRecord {
        address: addr(i),
        platform: "netns".into(),
        status: InstanceStatus::Ready,
        spec: Spec::Network(NetworkSpec {
            name: format!("lab-{i}"),
            cidr: "10.9.0.0/24".parse().unwrap(),
            gateway: "10.9.0.1".parse().unwrap(),
            nat: i % 2 == 0,
            hosts: Vec::new(),
        }),
        // Keys out of order on purpose: the store must keep their order.
        private: json!({"zeta": i, "alpha": {"b": 2, "a": [1, "two", null]}}),
        dependencies: vec![],
        attributes: json!({"name": format!("lab-{i}"), "address": "10.9.0.1"}),
        sensitive: vec![],
    }
}

fn lock_request(session: &str) -> LockInfo {
    LockInfo::for_this_process(session, "apply")
}

#[test]
fn location_never_shows_the_password() {
    let Some(_s) = server() else { return };
    let store = store();
    assert_eq!(store.location(), expected_location());
    let bad = url().replace("tg:tg@", "tg:wr0ngSecret@");
    let err = PostgresStore::connect(&bad)
        .err()
        .expect("bad password fails");
    let text = err.to_string();
    assert!(!text.contains("wr0ngSecret"), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
}

#[test]
fn sslmode_require_encrypts_and_disable_does_not() {
    let Some(_s) = server() else { return };
    let mut admin = raw(url());
    for (mode, want) in [("require", true), ("prefer", true), ("disable", false)] {
        let app = unique("tls").replace('-', "_");
        let store =
            PostgresStore::connect(&format!("{}?sslmode={mode}&application_name={app}", url()))
                .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        let row = admin
            .query_one(
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = $1",
                &[&app],
            )
            .unwrap();
        assert_eq!(row.get::<_, Option<bool>>(0), Some(want), "sslmode={mode}");
        drop(store);
    }
}

#[test]
fn one_session_two_lockers_exactly_one_wins() {
    let Some(_s) = server() else { return };
    let session = unique("contended");
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (barrier, session) = (barrier.clone(), session.clone());
            std::thread::spawn(move || {
                let store = store();
                let request = lock_request(&session);
                let id = request.id.clone();
                barrier.wait();
                let result = store.lock(request, Duration::from_millis(1500));
                (id, result)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one locker wins");
    let winner_id = &winners[0].0;
    let loser = results.iter().find(|(_, r)| r.is_err()).unwrap();
    match &loser.1 {
        Err(StateError::Locked { session: s, holder }) => {
            assert_eq!(s, &session);
            assert_eq!(&holder.id, winner_id);
            assert_eq!(holder.operation, "apply");
            assert_eq!(holder.pid, std::process::id());
        }
        other => panic!("expected Locked, got {:?}", other.as_ref().err()),
    }
    drop(results);
    // Released: the next locker gets it at once.
    let store = store();
    assert!(store.lock(lock_request(&session), Duration::ZERO).is_ok());
}

/// Not a test on its own: the holder process for
/// [`sigkilled_holder_releases_the_lock`], which runs this binary with
/// [`CHILD_ENV`] set. Without it, it does nothing.
#[test]
fn holder_child() {
    let Ok(session) = std::env::var(CHILD_ENV) else {
        return;
    };
    let url = std::env::var("TG_PG_TEST_URL").expect("TG_PG_TEST_URL");
    let store = PostgresStore::connect(&url).expect("child connects");
    let lock = store
        .lock(lock_request(&session), Duration::ZERO)
        .expect("child locks");
    println!("HOLDING {}", lock.info().id);
    std::thread::sleep(Duration::from_secs(120));
}

/// Kills the child on drop, so a failing test leaves no holder behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigkilled_holder_releases_the_lock() {
    let Some(_s) = server() else { return };
    let session = unique("killed");
    let mut child = ChildGuard(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "state_postgres::holder_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &session)
            .env("TG_PG_TEST_URL", url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints `test NAME ... ` before it on the same line.
            if let Some((_, id)) = line.split_once("HOLDING ") {
                let _ = tx.send(id.trim().to_string());
            }
        }
    });
    let child_lock_id = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the child takes the lock");

    let store = store();
    let holder = store.lock_holder(&session).unwrap().expect("held");
    assert_eq!(holder.id, child_lock_id);
    assert_eq!(holder.pid, child.0.id());
    match store.lock(lock_request(&session), Duration::ZERO) {
        Err(StateError::Locked { holder, .. }) => assert_eq!(holder.id, child_lock_id),
        other => panic!("expected Locked, got ok={}", other.is_ok()),
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.0.wait();

    let started = Instant::now();
    let lock = store
        .lock(lock_request(&session), Duration::from_secs(15))
        .expect("the dead holder's lock is free");
    assert!(started.elapsed() < Duration::from_secs(15));
    // The stale row was overwritten.
    let holder = store.lock_holder(&session).unwrap().unwrap();
    assert_eq!(holder.id, lock.info().id);
    assert_eq!(holder.pid, std::process::id());
}

#[test]
fn force_unlock_ends_the_holder_and_its_writes() {
    let Some(_s) = server() else { return };
    let session = unique("force");
    let holder_store = store();
    holder_store.create_session(&session).unwrap();
    let lock = holder_store
        .lock(lock_request(&session), Duration::ZERO)
        .unwrap();
    assert_eq!(holder_store.put_instance(&session, &record(0)).unwrap(), 1);

    let other = store();
    assert!(matches!(
        other.force_unlock(&session, "not-the-id"),
        Err(StateError::NoSuchLock { .. })
    ));
    assert!(holder_store.lock_holder(&session).unwrap().is_some());
    other.force_unlock(&session, &lock.info().id).unwrap();
    assert_eq!(other.lock_holder(&session).unwrap(), None);

    // The old holder may not write any more: it lost its lock.
    match holder_store.put_instance(&session, &record(1)) {
        Err(StateError::ConnectionLost { message, .. }) => {
            assert!(message.contains("lock"), "{message}")
        }
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
    assert_eq!(other.load(&session).unwrap().serial, 1);
    drop(lock);

    let again = other.lock(lock_request(&session), Duration::ZERO).unwrap();
    assert_eq!(other.put_instance(&session, &record(1)).unwrap(), 2);
    drop(again);
}

#[test]
fn migrations_from_many_threads_on_an_empty_database() {
    let Some(_s) = server() else { return };
    let db = FreshDb::new();
    let url = db.url();
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let store = PostgresStore::connect(&url)?;
                store.create_session(&format!("s{i}"))?;
                Ok::<_, StateError>(())
            })
        })
        .collect();
    for t in threads {
        t.join()
            .unwrap()
            .expect("every process migrates or sees it done");
    }
    let mut c = raw(&url);
    // Applied once, by one of them.
    let row = c
        .query_one("SELECT max(version), count(*) FROM schema_migrations", &[])
        .unwrap();
    assert_eq!(
        row.get::<_, Option<i64>>(0),
        Some(tg::state::SCHEMA_VERSION)
    );
    assert_eq!(row.get::<_, i64>(1), tg::state::SCHEMA_VERSION);
    let n: i64 = c
        .query_one("SELECT count(*) FROM sessions", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
}

#[test]
fn newer_schema_is_refused_untouched() {
    let Some(_s) = server() else { return };
    let db = FreshDb::new();
    drop(PostgresStore::connect(&db.url()).unwrap());
    let mut c = raw(&db.url());
    c.batch_execute(
        "INSERT INTO schema_migrations VALUES (99, '2030-01-01T00:00:00Z', '9.0.0'); \
         INSERT INTO sessions VALUES ('future', 'l', 7, 'x', 'x')",
    )
    .unwrap();
    match PostgresStore::connect(&db.url()) {
        Err(StateError::TooNew { found, known, .. }) => {
            assert_eq!((found, known), (99, tg::state::SCHEMA_VERSION))
        }
        other => panic!("expected TooNew, got ok={}", other.is_ok()),
    }
    let row = c
        .query_one(
            "SELECT (SELECT max(version) FROM schema_migrations), \
                    (SELECT serial FROM sessions WHERE name = 'future')",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (99, 7));
}

#[test]
fn foreign_tables_are_not_taken_for_state() {
    let Some(_s) = server() else { return };
    let db = FreshDb::new();
    raw(&db.url())
        .batch_execute("CREATE TABLE sessions (id int)")
        .unwrap();
    match PostgresStore::connect(&db.url()) {
        Err(StateError::Damaged { reason, .. }) => assert!(reason.contains("not tg state")),
        other => panic!("expected Damaged, got ok={}", other.is_ok()),
    }
}

fn restart_server() {
    let out = Command::new("bash")
        .args([script().as_str(), "restart"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restart failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn server_restart_mid_run_loses_no_consistency() {
    let Some(_exclusive) = server_alone() else {
        return;
    };
    let store = Arc::new(store());
    let session = unique("restart");
    store.create_session(&session).unwrap();
    let locked = unique("restart-locked");
    store.create_session(&locked).unwrap();
    let lock = store.lock(lock_request(&locked), Duration::ZERO).unwrap();

    // A writer keeps writing while the server restarts under it.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, session, stop) = (store.clone(), session.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut ok, mut lost) = (Vec::new(), Vec::new());
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match store.put_instance(&session, &record(i)) {
                    Ok(_) => ok.push(i),
                    Err(StateError::ConnectionLost { .. }) => {
                        lost.push(i);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("unexpected error during restart: {e}"),
                }
                i += 1;
            }
            (ok, lost, i)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    restart_server();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, lost, attempted) = writer.join().unwrap();
    eprintln!(
        "restart: {} writes ok, {} lost, {attempted} attempted",
        ok.len(),
        lost.len()
    );
    assert!(!ok.is_empty(), "writes before the restart work");

    // The next write works again (reconnected).
    let serial = store.put_instance(&session, &record(attempted)).unwrap();
    let snap = store.load(&session).unwrap();
    assert_eq!(snap.serial, serial);
    let writes_ok = ok.len() as u64 + 1;
    assert!(
        snap.serial >= writes_ok && snap.serial <= writes_ok + lost.len() as u64,
        "serial {} for {} good and {} lost writes",
        snap.serial,
        writes_ok,
        lost.len()
    );
    for i in ok.iter().chain([&attempted]) {
        assert_eq!(
            snap.instances.get(&addr(*i)),
            Some(&record(*i)),
            "write {i}"
        );
    }
    // Nothing appears that was not written, and only ambiguous writes may.
    for a in snap.instances.keys() {
        let InstanceKey::Int(i) = a.key else {
            panic!("unexpected {a}")
        };
        assert!(ok.contains(&i) || lost.contains(&i) || i == attempted);
    }
    assert_eq!(snap.instances.len() as u64, snap.serial);

    // The restart dropped the session lock with its connection: writes to
    // that session stop instead of going on unlocked.
    match store.put_instance(&locked, &record(0)) {
        Err(StateError::ConnectionLost { message, .. }) => {
            assert!(message.contains("lock"), "{message}")
        }
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
    drop(lock);
    let _relocked = store.lock(lock_request(&locked), Duration::ZERO).unwrap();
    assert_eq!(store.put_instance(&locked, &record(0)).unwrap(), 1);
}

#[test]
fn a_killed_connection_is_replaced_on_the_next_call() {
    let Some(_s) = server() else { return };
    let app = unique("killed_conn").replace('-', "_");
    let store = PostgresStore::connect(&format!("{}?application_name={app}", url())).unwrap();
    let session = unique("reconnect");
    store.create_session(&session).unwrap();
    assert_eq!(store.put_instance(&session, &record(0)).unwrap(), 1);

    let ended: i64 = raw(url())
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1) t",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert_eq!(ended, 1);
    std::thread::sleep(Duration::from_millis(100));

    // The dead connection fails at BEGIN, before anything is sent: the
    // store reconnects and the write goes through once.
    assert_eq!(store.put_instance(&session, &record(1)).unwrap(), 2);
    let snap = store.load(&session).unwrap();
    assert_eq!(snap.serial, 2);
    assert_eq!(snap.instances.len(), 2);
}

#[test]
fn missing_url_parts_come_from_pg_environment_variables() {
    let Some(_s) = server() else { return };
    let port = url_port();
    let env = |k: &str| {
        match k {
            "PGHOST" => Some("127.0.0.1"),
            "PGPORT" => Some(port.as_str()),
            "PGUSER" => Some("tg"),
            "PGPASSWORD" => Some("tg"),
            "PGDATABASE" => Some("tg"),
            "PGSSLMODE" => Some("require"),
            _ => None,
        }
        .map(str::to_string)
    };
    let store = PostgresStore::connect_with_env("postgres://", &env).unwrap();
    assert_eq!(store.location(), expected_location());
    let session = unique("env");
    store.create_session(&session).unwrap();
    assert_eq!(store.put_instance(&session, &record(0)).unwrap(), 1);
}

// ----- the engine on PostgreSQL, through the real binary -----------------
//
// Many CI agents share one server: these run `tg apply` processes at once
// against it, with the test-double platform slowing creates down so the
// runs overlap for real.

mod engine_on_postgres {
    use super::*;
    use crate::engine::Bed;
    use std::process::Child;

    const SLOW_BED: &str = r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "n" {
  count    = 4
  image    = "host"
  network  = network.lab
  platform = "double"
}
"#;

    /// A session name of its own (session names are at most 40 characters).
    fn session(prefix: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}-{}", &id[..12])
    }

    fn slow_bed(delay_ms: u64) -> Bed {
        let bed = Bed::new(SLOW_BED);
        bed.config(serde_json::json!({ "delay_ms": { "node.n": delay_ms } }));
        bed
    }

    /// `tg --session S ARGS` against the test server, not waited for.
    fn spawn(bed: &Bed, session: &str, args: &[&str]) -> Child {
        let mut cmd = Command::new(crate::support::tg_bin());
        cmd.arg("--session").arg(session).args(args);
        cmd.current_dir(bed.tb.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("TG_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_COLOR", "1")
            .env("TG_TESTDOUBLE_DIR", &bed.double)
            .env("TG_STATE_URL", url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("spawn tg")
    }

    fn run(bed: &Bed, session: &str, args: &[&str]) -> crate::support::Run {
        let mut all = vec!["--session", session];
        all.extend_from_slice(args);
        bed.tg_env(&all, &[("TG_STATE_URL", url())])
    }

    fn finish(child: Child) -> (i32, String) {
        let out = child.wait_with_output().expect("wait for tg");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn recorded(bed: &Bed, session: &str) -> usize {
        let r = run(bed, session, &["state", "list"]);
        r.expect_code(0);
        r.stdout().lines().count()
    }

    /// Wait until `n` instances of the session are recorded.
    fn wait_recorded(bed: &Bed, session: &str, n: usize) {
        let start = std::time::Instant::now();
        while recorded(bed, session) < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "fewer than {n} instances recorded after 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The library inside a tokio runtime, as a server would drive it:
    /// plan, apply and destroy through `ops` on PostgreSQL, with the lock
    /// taken and let go from async code, and a lock and the store dropped
    /// on runtime threads. Dropping a PostgreSQL lock there used to abort
    /// with "Cannot start a runtime from within a runtime".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // The guard only keeps the restart tests out while this runs.
    #[allow(clippy::await_holding_lock)]
    async fn library_plan_apply_destroy_inside_a_runtime() {
        use tg::apply::{NoHook, WalkOptions};
        use tg::environment::{Caller, Environment};
        use tg::names::SessionName;
        use tg::ops::{self, Context, PlanOptions, Workspace};
        use tg::platform::factory::Factory;
        use tg::platform::testdouble::TestDoubleDriver;
        use tg::state::StateStore;

        let Some(_server) = server() else { return };
        let bed = Bed::new(SLOW_BED);
        let env = Environment::new([], bed.tb.path());
        let ws = Workspace {
            dir: bed.tb.path().to_path_buf(),
            vars: vec![],
            var_files: vec![],
            caller: Caller::this_process(&env),
            env,
            factory: Factory::new().with(Arc::new(TestDoubleDriver::new(&bed.double))),
            hook: Arc::new(NoHook),
            leases_dir: None,
        };
        // Connecting on a runtime thread works too (off the runtime inside).
        let store: Arc<dyn StateStore> = Arc::new(PostgresStore::connect(url()).unwrap());
        let name = session("lib-rt");
        let ctx = Context {
            store: store.clone(),
            registry: ws.factory.registry(&[], &ws.env).unwrap(),
            session: SessionName::parse(&name).unwrap(),
            testbed_dir: ws.dir.clone(),
            hook: Arc::new(NoHook),
            caller: ws.caller.clone(),
            parsed: None,
        };
        let holder = |store: Arc<dyn StateStore>, name: String| async move {
            tokio::task::spawn_blocking(move || store.lock_holder(&name))
                .await
                .unwrap()
                .unwrap()
        };

        let planned = ops::plan_context(
            &ws,
            ctx.clone(),
            &PlanOptions::default(),
            "apply",
            Duration::ZERO,
        )
        .await
        .unwrap();
        assert_eq!(planned.plan.summary().add, 5);
        let report = ops::apply(&planned.locked, &planned.plan, &WalkOptions::default())
            .await
            .unwrap();
        assert!(report.success(), "{report:?}");
        assert_eq!(report.recorded, Some(5));
        planned.locked.release().await.unwrap();
        assert_eq!(holder(store.clone(), name.clone()).await, None);

        let (plan, report) = ops::destroy(
            &ws,
            ctx.clone(),
            &PlanOptions::default(),
            &WalkOptions::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(plan.summary().destroy, 5);
        assert!(report.success(), "{report:?}");
        assert_eq!(holder(store.clone(), name.clone()).await, None);

        // Dropped, not released, on a runtime thread: no panic, no wait;
        // the lock is let go in the background.
        let s = store.clone();
        let lock_name = name.clone();
        let lock = tokio::task::spawn_blocking(move || {
            s.lock(
                LockInfo::for_this_process(&lock_name, "plan"),
                Duration::ZERO,
            )
        })
        .await
        .unwrap()
        .unwrap();
        let started = std::time::Instant::now();
        drop(lock);
        assert!(started.elapsed() < Duration::from_millis(50));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while holder(store.clone(), name.clone()).await.is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped lock stays held"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let s = store.clone();
        let _ = tokio::task::spawn_blocking(move || s.delete_session(&name)).await;
        // The last handles to the store go away on a runtime thread.
        drop(ctx);
        drop(store);
    }

    #[test]
    fn two_sessions_apply_at_once() {
        let Some(_server) = server() else { return };
        let bed = slow_bed(300);
        let (a, b) = (session("cli-a"), session("cli-b"));
        let first = spawn(&bed, &a, &["apply", "-auto-approve", "-parallelism", "1"]);
        let second = spawn(&bed, &b, &["apply", "-auto-approve", "-parallelism", "1"]);
        let (ca, ta) = finish(first);
        let (cb, tb) = finish(second);
        assert_eq!(ca, 0, "{ta}");
        assert_eq!(cb, 0, "{tb}");
        assert_eq!(recorded(&bed, &a), 5);
        assert_eq!(recorded(&bed, &b), 5);
        for s in [&a, &b] {
            run(&bed, s, &["destroy", "-auto-approve"]).expect_code(0);
            run(&bed, s, &["session", "delete", s]).expect_code(0);
        }
    }

    #[test]
    fn two_applies_of_one_session_exactly_one_runs() {
        let Some(_server) = server() else { return };
        let bed = slow_bed(300);
        let s = session("cli-one");
        run(&bed, &s, &["session", "new", &s]).expect_code(0);
        let first = spawn(&bed, &s, &["apply", "-auto-approve", "-parallelism", "1"]);
        let second = spawn(&bed, &s, &["apply", "-auto-approve", "-parallelism", "1"]);
        let (c1, t1) = finish(first);
        let (c2, t2) = finish(second);
        let mut codes = [c1, c2];
        codes.sort();
        assert_eq!(codes, [0, 1], "first:\n{t1}\nsecond:\n{t2}");
        let refused = if c1 == 1 { &t1 } else { &t2 };
        assert!(refused.contains("locked"), "{refused}");
        assert!(
            refused.contains("apply"),
            "the refusal names the operation: {refused}"
        );
        assert_eq!(recorded(&bed, &s), 5);
        run(&bed, &s, &["destroy", "-auto-approve"]).expect_code(0);
    }

    #[test]
    fn a_sigkilled_holder_releases_its_lock() {
        let Some(_server) = server() else { return };
        let bed = slow_bed(400);
        let s = session("cli-kill");
        run(&bed, &s, &["session", "new", &s]).expect_code(0);
        let mut child = spawn(&bed, &s, &["apply", "-auto-approve", "-parallelism", "1"]);
        wait_recorded(&bed, &s, 2);
        child.kill().expect("SIGKILL tg apply");
        let _ = child.wait();
        assert!(recorded(&bed, &s) < 5, "the apply finished before the kill");
        // No force-unlock: the advisory lock died with the connection.
        bed.config(serde_json::json!({}));
        run(&bed, &s, &["apply", "-auto-approve"]).expect_code(0);
        run(&bed, &s, &["plan", "-detailed-exitcode"]).expect_code(0);
        assert_eq!(recorded(&bed, &s), 5);
        run(&bed, &s, &["destroy", "-auto-approve"]).expect_code(0);
    }

    #[test]
    fn a_server_restart_mid_apply_stops_cleanly_and_the_next_run_resumes() {
        let Some(_exclusive) = super::server_alone() else {
            return;
        };
        let bed = slow_bed(500);
        let s = session("cli-restart");
        run(&bed, &s, &["session", "new", &s]).expect_code(0);
        let child = spawn(&bed, &s, &["apply", "-auto-approve", "-parallelism", "1"]);
        wait_recorded(&bed, &s, 2);
        restart_server();
        let (code, text) = finish(child);
        eprintln!("apply across a server restart: exit {code}\n{text}");
        // The lock died with the connection: the apply must not go on
        // unlocked. It starts nothing new and says why.
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains("lost the connection to the state backend"),
            "the failure says what happened: {text}"
        );
        assert!(text.contains("not started"), "{text}");
        // The state is consistent and the next run converges.
        bed.config(serde_json::json!({}));
        run(&bed, &s, &["apply", "-auto-approve"]).expect_code(0);
        run(&bed, &s, &["plan", "-detailed-exitcode"]).expect_code(0);
        assert_eq!(recorded(&bed, &s), 5);
        let objects = bed.objects().keys().filter(|k| !k.is_empty()).count();
        assert_eq!(objects, 5, "objects made outside the state leaked");
        run(&bed, &s, &["destroy", "-auto-approve"]).expect_code(0);
    }
}
