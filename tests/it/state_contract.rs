//! One contract for every [`StateStore`]: the memory, SQLite and PostgreSQL
//! stores must behave the same. Each check is written once, as a function
//! of a [`Backend`] (a way to make an empty store, a second handle to it,
//! and damaged rows), and [`contract!`] runs every check against every
//! backend: `state_contract::sqlite::locks_exclude_...`.
//!
//! What is the same everywhere: sessions (create, list, get, delete),
//! lineage and serial rules, round trips of records (odd addresses, big
//! values, key order) and outputs, batches, import, locks (held, refused
//! with the holder's details, timeouts, release, drop in async code, force
//! unlock, stale holders), damaged rows reported as damage, and files kept
//! with a session (revisions, refused stale writers, racing writers). What only
//! one backend has (a PostgreSQL server restart, TLS, SQLite files) lives
//! in `state_postgres`, `state_sqlite` and the stores' unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tg::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use tg::platform::{Interface, NodeSpec, Spec};
use tg::state::memory::MemoryStore;
use tg::state::postgres::PostgresStore;
use tg::state::sqlite::SqliteStore;
use tg::state::{
    Expect, InstanceRecord, InstanceStatus, LockInfo, OutputRecord, Snapshot, StateError,
    StateStore, StateWrite,
};

/// A way to damage a stored session by hand, as a user editing the
/// database might.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The record of `node.edge[0]` is not JSON.
    RecordNotJson,
    /// The record of `node.edge[0]` is stored under `node.edge[9]`.
    RecordUnderAnotherAddress,
    /// The session's serial is negative.
    NegativeSerial,
    /// The session's serial is not a number (a changed column type).
    SerialNotANumber,
    /// Output `o` is not JSON.
    OutputNotJson,
}

/// What the contract needs from a backend.
trait Backend {
    /// The store (empty when the backend was made).
    fn store(&self) -> Arc<dyn StateStore>;
    /// Another handle on the same data, as another process would have.
    fn other(&self) -> Arc<dyn StateStore>;
    /// Damage session `session` (which has `node.edge[0]` and output `o`);
    /// `false` when the backend has no rows to damage (memory).
    fn damage(&self, session: &str, how: Damage) -> bool;
    /// Make the lock of `session` look held by a holder that is gone;
    /// `false` when the backend cannot have such a holder (memory).
    fn stale_holder(&self, session: &str) -> bool;
}

struct Memory(MemoryStore);

impl Backend for Memory {
    fn store(&self) -> Arc<dyn StateStore> {
        Arc::new(self.0.clone())
    }
    fn other(&self) -> Arc<dyn StateStore> {
        Arc::new(self.0.clone())
    }
    fn damage(&self, _: &str, _: Damage) -> bool {
        false
    }
    fn stale_holder(&self, _: &str) -> bool {
        false
    }
}

struct Sqlite {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Arc<dyn StateStore>,
}

impl Sqlite {
    fn new() -> Sqlite {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(".tg/state.db");
        let store = Arc::new(SqliteStore::open(&path).expect("open"));
        Sqlite {
            _dir: dir,
            path,
            store,
        }
    }

    fn sql(&self, sql: &str) {
        rusqlite::Connection::open(&self.path)
            .expect("raw connection")
            .execute_batch(sql)
            .expect("damage the file");
    }
}

impl Backend for Sqlite {
    fn store(&self) -> Arc<dyn StateStore> {
        self.store.clone()
    }
    fn other(&self) -> Arc<dyn StateStore> {
        Arc::new(SqliteStore::open(&self.path).expect("open again"))
    }
    fn damage(&self, session: &str, how: Damage) -> bool {
        let s = session;
        self.sql(&match how {
            Damage::RecordNotJson => format!(
                "UPDATE instances SET record = '{{not json' WHERE session = '{s}' AND address = 'node.edge[0]'"
            ),
            Damage::RecordUnderAnotherAddress => format!(
                "UPDATE instances SET address = 'node.edge[9]' WHERE session = '{s}' AND address = 'node.edge[0]'"
            ),
            Damage::NegativeSerial => format!("UPDATE sessions SET serial = -5 WHERE name = '{s}'"),
            Damage::SerialNotANumber => {
                format!("UPDATE sessions SET serial = 'many' WHERE name = '{s}'")
            }
            Damage::OutputNotJson => format!(
                "UPDATE outputs SET value = 'nope' WHERE session = '{s}' AND name = 'o'"
            ),
        });
        true
    }
    fn stale_holder(&self, session: &str) -> bool {
        // A holder on this host whose process is gone.
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        child.wait().expect("reap");
        self.sql(&format!(
            r#"INSERT INTO locks (session, id, operation, "user", host, pid, created_at)
               VALUES ('{session}', 'gone-holder', 'apply', 'ghost', '{}', {pid}, '2020-01-01T00:00:00Z')"#,
            tg::state::hostname()
        ));
        true
    }
}

/// Fields drop in order: the store, then its database, then the server.
struct Postgres {
    store: Arc<dyn StateStore>,
    db: crate::state_postgres::FreshDb,
    _server: std::sync::RwLockReadGuard<'static, ()>,
}

impl Postgres {
    /// `None` (the test is skipped) when there is no server outside CI.
    fn new() -> Option<Postgres> {
        let server = crate::state_postgres::server()?;
        let db = crate::state_postgres::FreshDb::new();
        let store = Arc::new(PostgresStore::connect(&db.url()).expect("connect"));
        Some(Postgres {
            store,
            db,
            _server: server,
        })
    }

    fn sql(&self, sql: &str) {
        crate::state_postgres::raw(&self.db.url())
            .batch_execute(sql)
            .expect("damage the database");
    }
}

impl Backend for Postgres {
    fn store(&self) -> Arc<dyn StateStore> {
        self.store.clone()
    }
    fn other(&self) -> Arc<dyn StateStore> {
        Arc::new(PostgresStore::connect(&self.db.url()).expect("connect again"))
    }
    fn damage(&self, session: &str, how: Damage) -> bool {
        let s = session;
        self.sql(&match how {
            Damage::RecordNotJson => format!(
                "ALTER TABLE instances ALTER COLUMN record TYPE text; \
                 UPDATE instances SET record = '{{not json' WHERE session = '{s}' AND address = 'node.edge[0]'"
            ),
            Damage::RecordUnderAnotherAddress => format!(
                "UPDATE instances SET address = 'node.edge[9]' WHERE session = '{s}' AND address = 'node.edge[0]'"
            ),
            Damage::NegativeSerial => format!("UPDATE sessions SET serial = -5 WHERE name = '{s}'"),
            Damage::SerialNotANumber => format!(
                "ALTER TABLE sessions ALTER COLUMN serial TYPE text; \
                 UPDATE sessions SET serial = 'many' WHERE name = '{s}'"
            ),
            Damage::OutputNotJson => format!(
                "ALTER TABLE outputs ALTER COLUMN value TYPE text; \
                 UPDATE outputs SET value = 'nope' WHERE session = '{s}' AND name = 'o'"
            ),
        });
        true
    }
    fn stale_holder(&self, session: &str) -> bool {
        // A row whose advisory lock nobody holds: its holder is gone.
        self.sql(&format!(
            r#"INSERT INTO locks (session, id, operation, "user", host, pid, created_at)
               VALUES ('{session}', 'gone-holder', 'apply', 'ghost', 'gone', 1, '2020-01-01T00:00:00Z')"#
        ));
        true
    }
}

fn addr(s: &str) -> InstanceAddr {
    s.parse().expect("an address")
}

/// A node record with values that are easy to get wrong: key order,
/// unicode, big and small numbers, nested nulls.
fn record(address: &str) -> InstanceRecord {
    let address = addr(address);
    let hostname = address.host_name();
    InstanceRecord {
        sensitive: Vec::new(),
        platform: "netns".into(),
        status: InstanceStatus::Ready,
        spec: Spec::Node(NodeSpec {
            hostname: hostname.clone(),
            image: "debian:bookworm".into(),
            cpus: Some(0.5),
            memory_mib: Some(256),
            labels: [("role".to_string(), "edge ☃ \"quoted\"".to_string())].into(),
            interfaces: vec![Interface {
                impair: Default::default(),
                network: "lab".into(),
                address: "10.0.0.2".parse().unwrap(),
                prefix_len: 24,
                gateway: "10.0.0.1".parse().unwrap(),
            }],
            host: None,
            settings: Default::default(),
        }),
        private: json!({
            "zeta": u64::MAX, "alpha": {"b": -1, "a": [1.5e300, "two", null]},
            "text": "tab\tnewline\nquote\"backslash\\ nul-free ünïcödé 🦀",
        }),
        dependencies: vec![addr("network.lab")],
        attributes: json!({"name": hostname, "address": "10.0.0.2"}),
        address,
    }
}

fn outputs(pairs: &[(&str, serde_json::Value, bool)]) -> BTreeMap<String, OutputRecord> {
    pairs
        .iter()
        .map(|(k, v, s)| {
            (
                k.to_string(),
                OutputRecord {
                    value: v.clone(),
                    sensitive: *s,
                },
            )
        })
        .collect()
}

fn request(session: &str, operation: &str) -> LockInfo {
    LockInfo::for_this_process(session, operation)
}

// ----- sessions ----------------------------------------------------------

fn sessions_are_created_listed_got_and_deleted(b: &dyn Backend) {
    let store = b.store();
    assert!(store.list_sessions().unwrap().is_empty());
    assert_eq!(store.get_session("a").unwrap(), None);
    let a = store.create_session("a").unwrap();
    assert_eq!((a.name.as_str(), a.serial, a.instances), ("a", 0, 0));
    let lineage = uuid::Uuid::parse_str(&a.lineage).expect("the lineage is a UUID");
    assert_eq!(lineage.get_version_num(), 4);
    let b_ = store.create_session("b.2_x-y").unwrap();
    assert_ne!(a.lineage, b_.lineage);
    assert_eq!(store.get_session("a").unwrap(), Some(a.clone()));
    let names: Vec<_> = store
        .list_sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a", "b.2_x-y"]);
    assert!(matches!(
        store.create_session("a"),
        Err(StateError::SessionExists(n)) if n == "a"
    ));
    assert_eq!(store.ensure_session("a").unwrap(), a);
    assert_eq!(store.ensure_session("c").unwrap().name, "c");
    // Another handle sees the same sessions.
    assert_eq!(b.other().get_session("a").unwrap(), Some(a.clone()));

    store.put_instance("a", &record("node.edge[0]")).unwrap();
    assert_eq!(store.get_session("a").unwrap().unwrap().instances, 1);
    store.delete_session("a").unwrap();
    assert_eq!(store.get_session("a").unwrap(), None);
    assert!(matches!(
        store.delete_session("a"),
        Err(StateError::NoSuchSession(_))
    ));
    // Its instances went with it: a new session of that name is empty and
    // has a new lineage.
    let again = store.create_session("a").unwrap();
    assert_ne!(again.lineage, a.lineage);
    assert!(store.load("a").unwrap().instances.is_empty());
}

fn every_write_bumps_the_serial_once_and_keeps_the_lineage(b: &dyn Backend) {
    let store = b.store();
    let created = store.create_session("s").unwrap();
    let r = record("node.edge[0]");
    let serials = [
        store.put_instance("s", &r).unwrap(),
        store.put_instance("s", &r).unwrap(),
        store.remove_instance("s", &r.address).unwrap(),
        // Forgetting what is not recorded is a write all the same.
        store.remove_instance("s", &r.address).unwrap(),
        store.put_outputs("s", &BTreeMap::new()).unwrap(),
        // A batch is one write, whatever its size; an empty one too.
        store
            .write_batch(
                "s",
                &[
                    StateWrite::Put(r.clone()),
                    StateWrite::Put(record("node.edge[1]")),
                ],
            )
            .unwrap(),
        store.write_batch("s", &[]).unwrap(),
    ];
    assert_eq!(serials, [1, 2, 3, 4, 5, 6, 7]);
    let info = store.get_session("s").unwrap().unwrap();
    assert_eq!((info.serial, info.instances), (7, 2));
    assert_eq!(info.lineage, created.lineage);
    assert!(info.updated_at >= created.updated_at);
    assert_eq!(info.created_at, created.created_at);
    let snap = store.load("s").unwrap();
    assert_eq!((snap.serial, snap.lineage), (7, created.lineage));
}

fn writes_to_a_missing_session_are_refused_and_make_nothing(b: &dyn Backend) {
    let store = b.store();
    let r = record("node.edge[0]");
    for result in [
        store.put_instance("nope", &r),
        store.remove_instance("nope", &r.address),
        store.put_outputs("nope", &BTreeMap::new()),
        store.write_batch("nope", &[StateWrite::Put(r.clone())]),
    ] {
        assert!(
            matches!(&result, Err(StateError::NoSuchSession(s)) if s == "nope"),
            "{result:?}"
        );
    }
    assert!(matches!(
        store.load("nope"),
        Err(StateError::NoSuchSession(_))
    ));
    assert!(store.list_sessions().unwrap().is_empty());
}

// ----- records and outputs -----------------------------------------------

fn records_round_trip_whole_with_odd_addresses_and_big_values(b: &dyn Backend) {
    let store = b.store();
    store.create_session("s").unwrap();
    store.create_session("other").unwrap();
    let mut records: Vec<InstanceRecord> = [
        "network.lab",
        "node.edge[0]",
        "node.edge[18446744073709551615]",
        "node.web[\"a-b\"]",
        "node.web[\"\"]",
        "node.web[\"ünï cödé/x.y\"]",
        "node.my_node-2[3]",
        "package.nginx[node.edge[0]]",
        "package.x[node.web[\"b\"]]",
    ]
    .iter()
    .map(|a| record(a))
    .collect();
    records[1].status = InstanceStatus::Tainted;
    records[1].dependencies = vec![addr("network.lab"), addr("package.x[node.web[\"b\"]]")];
    // A big value: about 2 MB of private data.
    records[2].private =
        json!({ "blob": "x".repeat(2 << 20), "list": (0..10_000).collect::<Vec<_>>() });
    for r in &records {
        store.put_instance("s", r).unwrap();
    }
    store
        .put_instance("other", &record("node.edge[0]"))
        .unwrap();

    let snap = b.other().load("s").unwrap();
    let expected: BTreeMap<_, _> = records
        .iter()
        .map(|r| (r.address.clone(), r.clone()))
        .collect();
    assert_eq!(snap.instances, expected);
    // Object keys keep their order.
    assert_eq!(
        serde_json::to_string(&snap.instances[&addr("network.lab")].private).unwrap(),
        serde_json::to_string(&records[0].private).unwrap()
    );
    assert!(
        serde_json::to_string(&snap.instances[&addr("network.lab")].private)
            .unwrap()
            .starts_with(r#"{"zeta":18446744073709551615,"alpha":{"b":-1,"a":[1.5e+300"#),
    );
    assert_eq!(
        store.get_session("s").unwrap().unwrap().instances,
        records.len()
    );
    assert_eq!(store.load("other").unwrap().instances.len(), 1);

    // Replacing and removing touch only the named instance of the session.
    let mut changed = records[3].clone();
    changed.status = InstanceStatus::Tainted;
    changed.private = json!({"changed": true});
    store.put_instance("s", &changed).unwrap();
    store.remove_instance("s", &records[4].address).unwrap();
    let snap = store.load("s").unwrap();
    assert_eq!(snap.instances[&changed.address], changed);
    assert!(!snap.instances.contains_key(&records[4].address));
    assert_eq!(snap.instances.len(), records.len() - 1);
    assert_eq!(store.load("other").unwrap().instances.len(), 1);
}

fn an_address_that_would_not_read_back_is_refused_and_nothing_is_written(b: &dyn Backend) {
    let store = b.store();
    store.create_session("s").unwrap();
    let mut bad = record("node.edge[0]");
    bad.address = InstanceAddr::new(ResourceKind::Node, "web", InstanceKey::Str("a\"b".into()));
    let before = store.load("s").unwrap();
    let err = store
        .write_batch(
            "s",
            &[
                StateWrite::Put(record("node.edge[1]")),
                StateWrite::Put(bad),
            ],
        )
        .unwrap_err();
    assert!(matches!(err, StateError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(store.load("s").unwrap(), before);
}

fn outputs_are_replaced_as_a_whole(b: &dyn Backend) {
    let store = b.store();
    store.create_session("s").unwrap();
    let first = outputs(&[
        ("a", json!({"x": [1, 2], "nested": {"z": null}}), false),
        ("token", json!("s3cr3t ☃"), true),
        ("n", json!(1.25), false),
    ]);
    store.put_outputs("s", &first).unwrap();
    assert_eq!(b.other().load("s").unwrap().outputs, first);
    let second = outputs(&[("c", serde_json::Value::Null, false)]);
    store.put_outputs("s", &second).unwrap();
    assert_eq!(store.load("s").unwrap().outputs, second);
    store.put_outputs("s", &BTreeMap::new()).unwrap();
    assert!(store.load("s").unwrap().outputs.is_empty());
}

fn a_batch_applies_its_writes_in_order(b: &dyn Backend) {
    let store = b.store();
    store.create_session("s").unwrap();
    let a = record("node.edge[0]");
    let mut a2 = a.clone();
    a2.status = InstanceStatus::Tainted;
    let c = record("node.edge[2]");
    let serial = store
        .write_batch(
            "s",
            &[
                StateWrite::Put(a.clone()),
                StateWrite::Put(record("node.edge[1]")),
                StateWrite::Outputs(outputs(&[("o", json!(1), false)])),
                StateWrite::Remove(addr("node.edge[1]")),
                StateWrite::Put(a2.clone()),
                StateWrite::Put(c.clone()),
                StateWrite::Outputs(outputs(&[("p", json!(2), true)])),
            ],
        )
        .unwrap();
    assert_eq!(serial, 1);
    let snap = store.load("s").unwrap();
    assert_eq!(
        snap.instances,
        BTreeMap::from([(a2.address.clone(), a2), (c.address.clone(), c)])
    );
    assert_eq!(snap.outputs, outputs(&[("p", json!(2), true)]));
}

fn import_replaces_the_content_and_keeps_the_lineage(b: &dyn Backend) {
    let store = b.store();
    let imported = Snapshot {
        lineage: uuid::Uuid::new_v4().to_string(),
        serial: 40,
        instances: ["node.edge[7]", "network.lab"]
            .iter()
            .map(|a| (addr(a), record(a)))
            .collect(),
        outputs: outputs(&[("o", json!([1]), false)]),
    };
    // Into a missing session: created with the snapshot's lineage, the
    // serial past the snapshot's.
    assert_eq!(store.import("new", &imported).unwrap(), 41);
    let got = store.load("new").unwrap();
    assert_eq!(
        (got.lineage.as_str(), got.serial),
        (imported.lineage.as_str(), 41)
    );
    assert_eq!(got.instances, imported.instances);
    assert_eq!(got.outputs, imported.outputs);

    // Over a session with more writes than the snapshot: the serial moves
    // past both, the content is replaced.
    store.create_session("busy").unwrap();
    for i in 0..50 {
        store
            .put_instance("busy", &record(&format!("node.n[{i}]")))
            .unwrap();
    }
    assert_eq!(store.import("busy", &imported).unwrap(), 51);
    let got = store.load("busy").unwrap();
    assert_eq!(got.lineage, imported.lineage);
    assert_eq!(got.instances, imported.instances);

    // An empty lineage keeps the session's, or makes a fresh one.
    let anonymous = Snapshot {
        lineage: String::new(),
        ..imported.clone()
    };
    assert_eq!(store.import("busy", &anonymous).unwrap(), 52);
    assert_eq!(store.load("busy").unwrap().lineage, imported.lineage);
    store.import("anon", &anonymous).unwrap();
    let made = store.load("anon").unwrap().lineage;
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
}

fn ten_thousand_instances_round_trip(b: &dyn Backend) {
    let store = b.store();
    let snap = Snapshot {
        lineage: uuid::Uuid::new_v4().to_string(),
        serial: 0,
        instances: (0..10_000)
            .map(|i| record(&format!("node.n[{i}]")))
            .map(|r| (r.address.clone(), r))
            .collect(),
        outputs: BTreeMap::new(),
    };
    store.import("big", &snap).unwrap();
    assert_eq!(store.load("big").unwrap().instances, snap.instances);
    store.create_session("batched").unwrap();
    let writes: Vec<_> = snap
        .instances
        .values()
        .cloned()
        .map(StateWrite::Put)
        .collect();
    for chunk in writes.chunks(1000) {
        store.write_batch("batched", chunk).unwrap();
    }
    let got = b.other().load("batched").unwrap();
    assert_eq!((got.serial, got.instances.len()), (10, 10_000));
    assert_eq!(got.instances, snap.instances);
    assert_eq!(
        store.get_session("batched").unwrap().unwrap().instances,
        10_000
    );
}

// ----- locks -------------------------------------------------------------

fn a_held_lock_refuses_others_with_its_holder_until_released(b: &dyn Backend) {
    let (store, other) = (b.store(), b.other());
    assert_eq!(store.lock_holder("s").unwrap(), None);
    let held = store.lock(request("s", "apply"), Duration::ZERO).unwrap();
    assert_eq!(other.lock_holder("s").unwrap().as_ref(), Some(held.info()));

    for locker in [&store, &other] {
        let started = Instant::now();
        let err = locker
            .lock(request("s", "plan"), Duration::from_millis(400))
            .err()
            .expect("the lock is held");
        assert!(started.elapsed() >= Duration::from_millis(400), "no wait");
        let StateError::Locked { session, holder } = &err else {
            panic!("expected Locked, got {err}");
        };
        assert_eq!(session, "s");
        assert_eq!(holder, held.info());
        let message = err.to_string();
        assert!(message.contains(&held.info().id), "{message}");
        assert!(message.contains("apply"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
    }
    // No wait at all with a zero timeout.
    let started = Instant::now();
    assert!(matches!(
        other.lock(request("s", "plan"), Duration::ZERO),
        Err(StateError::Locked { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(2));

    // Other sessions are not blocked.
    let t = other.lock(request("t", "apply"), Duration::ZERO).unwrap();
    assert_eq!(store.lock_holder("t").unwrap().as_ref(), Some(t.info()));
    t.release().unwrap();

    held.release().unwrap();
    assert_eq!(other.lock_holder("s").unwrap(), None);
    let next = other.lock(request("s", "apply"), Duration::ZERO).unwrap();
    // Dropped (outside async code): free again at once.
    drop(next);
    assert_eq!(store.lock_holder("s").unwrap(), None);
    store.lock(request("s", "apply"), Duration::ZERO).unwrap();
}

fn a_waiting_locker_gets_the_lock_when_it_is_released(b: &dyn Backend) {
    let (store, other) = (b.store(), b.other());
    let held = store.lock(request("s", "apply"), Duration::ZERO).unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        held.release()
    });
    let started = Instant::now();
    let got = other
        .lock(request("s", "apply"), Duration::from_secs(20))
        .expect("the lock is handed over");
    let waited = started.elapsed();
    releaser.join().unwrap().unwrap();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(store.lock_holder("s").unwrap().as_ref(), Some(got.info()));
}

fn force_unlock_removes_only_the_named_lock(b: &dyn Backend) {
    let (store, other) = (b.store(), b.other());
    let held = store.lock(request("s", "apply"), Duration::ZERO).unwrap();
    let id = held.info().id.clone();
    assert!(matches!(
        other.force_unlock("s", "not-the-id"),
        Err(StateError::NoSuchLock { session, id }) if session == "s" && id == "not-the-id"
    ));
    assert!(matches!(
        other.force_unlock("t", &id),
        Err(StateError::NoSuchLock { .. })
    ));
    assert_eq!(store.lock_holder("s").unwrap().as_ref(), Some(held.info()));
    other.force_unlock("s", &id).unwrap();
    assert_eq!(store.lock_holder("s").unwrap(), None);
    assert!(matches!(
        other.force_unlock("s", &id),
        Err(StateError::NoSuchLock { .. })
    ));

    // Someone else takes it; the old lock letting go leaves theirs alone.
    let next = other.lock(request("s", "apply"), Duration::ZERO).unwrap();
    let _ = held.release();
    assert_eq!(store.lock_holder("s").unwrap().as_ref(), Some(next.info()));
}

fn a_stale_holder_is_taken_over(b: &dyn Backend) {
    if !b.stale_holder("s") {
        return;
    }
    let store = b.store();
    let taken = store
        .lock(request("s", "apply"), Duration::ZERO)
        .expect("a gone holder's lock is taken over");
    let holder = store.lock_holder("s").unwrap().expect("held");
    assert_eq!(&holder, taken.info());
    assert_ne!(holder.id, "gone-holder");
}

fn locks_dropped_or_released_in_async_code_neither_panic_nor_block(b: &dyn Backend) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = b.store();
    rt.block_on(async {
        // On a current-thread runtime a blocking drop would stall every
        // task, and the PostgreSQL client would panic.
        let s = store.clone();
        let lock =
            tokio::task::spawn_blocking(move || s.lock(request("s", "apply"), Duration::ZERO))
                .await
                .unwrap()
                .unwrap();
        let started = Instant::now();
        drop(lock);
        assert!(started.elapsed() < Duration::from_millis(200));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = store.clone();
            let holder = tokio::task::spawn_blocking(move || s.lock_holder("s"))
                .await
                .unwrap()
                .unwrap();
            if holder.is_none() {
                break;
            }
            assert!(Instant::now() < deadline, "a dropped lock stays held");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let s = store.clone();
        let lock =
            tokio::task::spawn_blocking(move || s.lock(request("s", "apply"), Duration::ZERO))
                .await
                .unwrap()
                .unwrap();
        tg::state::release_lock(lock).await.unwrap();
        let s = store.clone();
        let holder = tokio::task::spawn_blocking(move || s.lock_holder("s"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(holder, None);

        // A store dropped on a runtime thread.
        drop(b.other());
    });
}

// ----- damage ------------------------------------------------------------

fn damaged_rows_are_damage_naming_the_place_and_the_row(b: &dyn Backend) {
    for (how, names) in [
        (Damage::RecordNotJson, "`node.edge[0]`"),
        (Damage::RecordUnderAnotherAddress, "`node.edge[9]`"),
        (Damage::NegativeSerial, "-5"),
        (Damage::OutputNotJson, "output `o`"),
        // Last: in PostgreSQL it changes the column type for every session.
        (Damage::SerialNotANumber, "sessions.serial"),
    ] {
        let session = format!("s{}", how as u8);
        let store = b.store();
        store.create_session(&session).unwrap();
        store
            .put_instance(&session, &record("node.edge[0]"))
            .unwrap();
        store
            .put_outputs(&session, &outputs(&[("o", json!(1), false)]))
            .unwrap();
        if !b.damage(&session, how) {
            return;
        }
        let err = store.load(&session).unwrap_err();
        let StateError::Damaged { location, reason } = &err else {
            panic!("{how:?}: expected Damaged, got {err:?}");
        };
        assert_eq!(location, &store.location(), "{how:?}");
        assert!(reason.contains(names), "{how:?}: {reason}");
        assert!(reason.contains(&session), "{how:?}: {reason}");
        assert!(err.to_string().contains("was not touched"), "{err}");
        if matches!(how, Damage::NegativeSerial | Damage::SerialNotANumber) {
            for result in [
                store.get_session(&session).map(drop),
                store.list_sessions().map(drop),
            ] {
                assert!(
                    matches!(result, Err(StateError::Damaged { .. })),
                    "{how:?}: {result:?}"
                );
            }
        }
    }
}

/// Files kept with a session: revisions, the writer's expectation, binary
/// and big contents, listing and removal, other sessions untouched.
fn session_files_keep_revisions_and_refuse_stale_writers(b: &dyn Backend) {
    let st = b.store();
    let (s, t) = ("alice/hello world", "bob/hello");
    let changed = |r: Result<tg::state::StoredFile, StateError>| {
        matches!(r, Err(StateError::FileChanged { .. }))
    };
    let first = st
        .write_session_file(s, "session.json", b"{}", Expect::Absent)
        .unwrap();
    assert_eq!((first.revision, first.size), (1, 2));
    assert_eq!(first.sha256, tg::state::files::sha256_hex(b"{}"));
    assert!(changed(st.write_session_file(
        s,
        "session.json",
        b"x",
        Expect::Absent
    )));
    let second = st
        .write_session_file(s, "session.json", b"{\"n\":1}", Expect::Revision(1))
        .unwrap();
    assert_eq!(second.revision, 2);
    // A writer that read revision 1 is refused, and changes nothing.
    assert!(changed(st.write_session_file(
        s,
        "session.json",
        b"stale",
        Expect::Revision(1)
    )));
    assert!(changed(st.write_session_file(
        s,
        "nothing",
        b"",
        Expect::Revision(1)
    )));
    let (row, content) = st.read_session_file(s, "session.json").unwrap().unwrap();
    assert_eq!((row.revision, content.as_slice()), (2, &b"{\"n\":1}"[..]));
    // Bytes of every value, and a few MiB, come back whole.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    st.write_session_file(s, "files/a.deb", &big, Expect::Any)
        .unwrap();
    let again = st
        .write_session_file(s, "files/a.deb", &big, Expect::Any)
        .unwrap();
    assert_eq!((again.revision, again.size), (2, big.len() as u64));
    let (_, read) = st.read_session_file(s, "files/a.deb").unwrap().unwrap();
    assert!(
        read == big,
        "the big file changed on its way through the store"
    );
    st.write_session_file(t, "session.json", b"[]", Expect::Absent)
        .unwrap();
    // Another handle (another process) sees the same.
    let other = b.other();
    let names: Vec<String> = other
        .session_files(s)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["files/a.deb", "session.json"]);
    assert_eq!(other.sessions_with_file("session.json").unwrap(), [s, t]);
    assert_eq!(other.read_session_file(s, "missing").unwrap(), None);
    other.remove_session_files(s, Some("files/a.deb")).unwrap();
    assert_eq!(st.session_files(s).unwrap().len(), 1);
    other.remove_session_files(s, None).unwrap();
    assert!(st.session_files(s).unwrap().is_empty());
    assert_eq!(st.sessions_with_file("session.json").unwrap(), [t]);
    // Written again after removal: a new file, revision 1.
    let anew = st
        .write_session_file(s, "session.json", b"{}", Expect::Absent)
        .unwrap();
    assert_eq!(anew.revision, 1);
}

/// Writers racing from two handles on one revision (or on a new file):
/// exactly one wins each race.
fn racing_writers_of_one_revision_one_wins(b: &dyn Backend) {
    let stores = [b.store(), b.other()];
    for expect in [Expect::Absent, Expect::Revision(1)] {
        let wins = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for i in 0..8 {
                let st = stores[i % 2].clone();
                let wins = &wins;
                scope.spawn(move || {
                    let body = format!("writer {i}");
                    match st.write_session_file("race", "session.json", body.as_bytes(), expect) {
                        Ok(_) => {
                            wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(StateError::FileChanged { .. }) => {}
                        Err(e) => panic!("writer {i}: {e}"),
                    }
                });
            }
        });
        assert_eq!(wins.into_inner(), 1, "{expect:?}");
    }
    let (row, _) = b
        .store()
        .read_session_file("race", "session.json")
        .unwrap()
        .unwrap();
    assert_eq!(row.revision, 2);
}

/// Every check against every backend.
macro_rules! contract {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[test]
                fn $check() {
                    super::$check(&super::Memory(tg::state::memory::MemoryStore::new()));
                }
            )*
        }
        mod sqlite {
            $(
                #[test]
                fn $check() {
                    super::$check(&super::Sqlite::new());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $check() {
                    let Some(backend) = super::Postgres::new() else { return };
                    super::$check(&backend);
                }
            )*
        }
    };
}

contract!(
    sessions_are_created_listed_got_and_deleted,
    every_write_bumps_the_serial_once_and_keeps_the_lineage,
    writes_to_a_missing_session_are_refused_and_make_nothing,
    records_round_trip_whole_with_odd_addresses_and_big_values,
    an_address_that_would_not_read_back_is_refused_and_nothing_is_written,
    outputs_are_replaced_as_a_whole,
    a_batch_applies_its_writes_in_order,
    import_replaces_the_content_and_keeps_the_lineage,
    ten_thousand_instances_round_trip,
    a_held_lock_refuses_others_with_its_holder_until_released,
    a_waiting_locker_gets_the_lock_when_it_is_released,
    force_unlock_removes_only_the_named_lock,
    a_stale_holder_is_taken_over,
    locks_dropped_or_released_in_async_code_neither_panic_nor_block,
    damaged_rows_are_damage_naming_the_place_and_the_row,
    session_files_keep_revisions_and_refuse_stale_writers,
    racing_writers_of_one_revision_one_wins,
);
