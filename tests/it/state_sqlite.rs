//! The SQLite state store across real processes: a lock held by another
//! process, its holder killed with SIGKILL, a holder that lets go while we
//! wait, and a writer killed in the middle of its writes.
//!
//! The other process is this test binary itself, run with
//! `--exact state_sqlite::child_process` and `TG_TEST_SQLITE_CHILD` set;
//! without that variable the `child_process` test does nothing.

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use tg::addrs::{InstanceAddr, InstanceKey, ResourceKind};
use tg::platform::{NetworkSpec, Spec};
use tg::state::sqlite::SqliteStore;
use tg::state::{InstanceRecord, InstanceStatus, LockInfo, StateError, StateStore};

const CHILD_ENV: &str = "TG_TEST_SQLITE_CHILD";
const PATH_ENV: &str = "TG_TEST_SQLITE_PATH";
/// The hold time in ms for `release`, the instance index for `open`.
const ARG_ENV: &str = "TG_TEST_SQLITE_ARG";
const START_AT_ENV: &str = "TG_TEST_SQLITE_START_AT";

fn record(i: u64) -> InstanceRecord {
    let address = InstanceAddr::new(ResourceKind::Network, "lab", InstanceKey::Int(i));
    InstanceRecord {
        platform: "netns".into(),
        status: InstanceStatus::Ready,
        spec: Spec::Network(NetworkSpec {
            name: address.host_name(),
            cidr: format!("10.{}.{}.0/24", (i / 256) % 256, i % 256)
                .parse()
                .unwrap(),
            gateway: format!("10.{}.{}.1", (i / 256) % 256, i % 256)
                .parse()
                .unwrap(),
            nat: false,
            hosts: Vec::new(),
        }),
        private: serde_json::json!({ "bridge": format!("tgbr{i}"), "pad": "x".repeat(200) }),
        dependencies: vec![],
        attributes: serde_json::json!({ "name": address.host_name() }),
        sensitive: vec![],
        address,
    }
}

/// Not a test on its own: the body of the helper processes the tests below
/// start. Prints `@@HELD <id>`, `@@RELEASED`, `@@WROTE <i> <serial>` lines.
#[test]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var(PATH_ENV).expect("state path"));
    if let Ok(at) = std::env::var(START_AT_ENV) {
        // Start together with the other helpers: sleep until `at` (Unix ms).
        let at = Duration::from_millis(at.parse().expect("a time"));
        let now = std::time::UNIX_EPOCH.elapsed().expect("clock");
        std::thread::sleep(at.saturating_sub(now));
    }
    let store = SqliteStore::open(&path).expect("open state");
    match mode.as_str() {
        "hold" | "release" => {
            let lock = store
                .lock(
                    LockInfo::for_this_process("s", "apply"),
                    Duration::from_secs(10),
                )
                .expect("take lock");
            println!("\n@@HELD {}", lock.info().id);
            if mode == "release" {
                let ms = std::env::var(ARG_ENV).expect("hold time");
                std::thread::sleep(Duration::from_millis(ms.parse().expect("number")));
                drop(lock);
                println!("\n@@RELEASED");
                // Stay alive: the waiter must get the lock because it was
                // released, not because its holder died.
                std::thread::sleep(Duration::from_secs(60));
            } else {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        "write" => {
            for i in 0..1_000_000 {
                let serial = store.put_instance("s", &record(i)).expect("write");
                println!("\n@@WROTE {i} {serial}");
            }
        }
        "open" => {
            // Started several at once on a new file (see
            // `processes_opening_a_new_file_at_once_migrate_it_once`).
            let i: u64 = std::env::var(ARG_ENV)
                .expect("index")
                .parse()
                .expect("number");
            store.ensure_session("s").expect("ensure session");
            store.put_instance("s", &record(i)).expect("write");
            println!("\n@@DONE");
        }
        other => panic!("unknown child mode `{other}`"),
    }
}

/// A helper process, killed (SIGKILL) and reaped when dropped.
struct Helper {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Helper {
    fn start(mode: &str, path: &Path, env: &[(&str, &str)]) -> Helper {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([
            "--exact",
            "state_sqlite::child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env(PATH_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start helper process");
        let stdout = child.stdout.take().expect("helper stdout");
        Helper {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The rest of the next `@@WORD ...` line, skipping test-harness output.
    fn expect(&mut self, word: &str) -> String {
        let marker = format!("@@{word}");
        for line in self.lines.by_ref() {
            let line = line.expect("read helper output");
            if let Some(rest) = line.trim().strip_prefix(&marker) {
                return rest.trim().to_string();
            }
        }
        panic!("the helper process ended before printing `{marker}`");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll helper").is_none()
    }

    /// SIGKILL the helper and reap it (a zombie would still look alive).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.kill();
    }
}

fn new_store() -> (tempfile::TempDir, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(".tg/state.db");
    let store = SqliteStore::open(&path).expect("open state");
    store.create_session("s").expect("create session");
    (dir, path, store)
}

#[test]
fn a_lock_held_by_another_process_is_refused_until_that_process_dies() {
    let (_dir, path, store) = new_store();
    let mut holder = Helper::start("hold", &path, &[]);
    let id = holder.expect("HELD");

    let started = Instant::now();
    let err = store
        .lock(
            LockInfo::for_this_process("s", "plan"),
            Duration::from_millis(500),
        )
        .err()
        .expect("the lock is held by the helper");
    assert!(started.elapsed() >= Duration::from_millis(500));
    let StateError::Locked { holder: info, .. } = &err else {
        panic!("expected a lock error, got {err}");
    };
    assert_eq!(info.id, id);
    assert_eq!(info.pid, holder.pid());
    let message = err.to_string();
    assert!(message.contains(&id), "{message}");
    assert!(
        message.contains(&format!("pid {}", holder.pid())),
        "{message}"
    );
    assert_eq!(
        store.lock_holder("s").unwrap().map(|h| h.id),
        Some(id.clone())
    );

    // Other sessions are not blocked by it.
    drop(
        store
            .lock(LockInfo::for_this_process("t", "plan"), Duration::ZERO)
            .expect("another session"),
    );

    holder.kill();
    let lock = store
        .lock(LockInfo::for_this_process("s", "apply"), Duration::ZERO)
        .expect("a dead holder's lock is taken over");
    let now = store.lock_holder("s").unwrap().expect("a holder");
    assert_eq!(&now, lock.info());
    assert_ne!(now.id, id);
}

#[test]
fn waiting_for_a_lock_succeeds_when_the_other_process_releases_it() {
    let (_dir, path, store) = new_store();
    let mut holder = Helper::start("release", &path, &[(ARG_ENV, "1500")]);
    holder.expect("HELD");

    // Held now: a request that does not wait is refused.
    assert!(matches!(
        store.lock(LockInfo::for_this_process("s", "apply"), Duration::ZERO),
        Err(StateError::Locked { .. })
    ));
    let started = Instant::now();
    let lock = store
        .lock(
            LockInfo::for_this_process("s", "apply"),
            Duration::from_secs(30),
        )
        .expect("the lock is released during the wait");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(20), "waited {waited:?}");
    // Released, not taken over from a dead holder.
    assert!(holder.is_running());
    holder.expect("RELEASED");
    assert_eq!(store.lock_holder("s").unwrap().as_ref(), Some(lock.info()));
}

#[test]
fn a_writer_killed_mid_write_loses_nothing_it_committed() {
    let (_dir, path, store) = new_store();
    drop(store);
    let mut writer = Helper::start("write", &path, &[]);
    let mut acknowledged = 0;
    while acknowledged < 150 {
        let line = writer.expect("WROTE");
        let (i, serial) = line.split_once(' ').expect("`i serial`");
        let (i, serial): (u64, u64) = (i.parse().unwrap(), serial.parse().unwrap());
        assert_eq!(serial, i + 1);
        acknowledged = i + 1;
    }
    writer.kill();

    let store = SqliteStore::open(&path).expect("reopen after the kill");
    let snap = store.load("s").expect("load");
    let n = snap.instances.len() as u64;
    assert!(
        n >= acknowledged,
        "{n} instances, {acknowledged} acknowledged"
    );
    assert_eq!(snap.serial, n, "the serial counts exactly the writes kept");
    let expected: std::collections::BTreeMap<_, _> =
        (0..n).map(record).map(|r| (r.address.clone(), r)).collect();
    assert_eq!(snap.instances, expected, "a prefix of the writes, whole");
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_too_new_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    drop(SqliteStore::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations VALUES (1000, '2030-01-01T00:00:00Z', '9.0.0')",
            [],
        )
        .unwrap();
    let before = std::fs::read(&newer).unwrap();
    let err = SqliteStore::open(&newer).unwrap_err();
    assert!(
        matches!(err, StateError::TooNew { found: 1000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade tg"), "{err}");
    assert_eq!(std::fs::read(&newer).unwrap(), before);
}

/// A damaged state file in place of `.tg/state.db`.
#[derive(Debug, Clone, Copy)]
enum Bad {
    ZeroBytes,
    RandomBytes,
    /// A real state, cut in half.
    Truncated,
    Directory,
    /// Immutable (`chattr +i`): not writable even for root.
    ReadOnly,
}

/// Clears the immutable flag again, so the temporary folder can go.
struct Mutable(PathBuf);

impl Drop for Mutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// Put `bad` in place of `path` (which may hold a real state already).
fn spoil(path: &Path, bad: Bad) -> Option<Mutable> {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    match bad {
        Bad::ZeroBytes => std::fs::write(path, b"").unwrap(),
        Bad::RandomBytes => {
            let bytes: Vec<u8> = (0..20_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
                .collect();
            std::fs::write(path, bytes).unwrap();
        }
        Bad::Truncated => {
            if !path.exists() {
                let store = SqliteStore::open(path).unwrap();
                store.create_session("s").unwrap();
                let writes: Vec<_> = (0..300)
                    .map(|i| tg::state::StateWrite::Put(record(i)))
                    .collect();
                store.write_batch("s", &writes).unwrap();
            }
            let len = std::fs::metadata(path).unwrap().len();
            assert!(len > 8192, "a state of several pages ({len} bytes)");
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(len / 2).unwrap();
        }
        Bad::Directory => std::fs::create_dir(path).unwrap(),
        Bad::ReadOnly => {
            if !path.exists() {
                drop(SqliteStore::open(path).unwrap());
            }
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None;
            }
            return Some(Mutable(path.to_path_buf()));
        }
    }
    None
}

/// What is at `path`: its bytes, or `None` for a directory.
fn contents(path: &Path) -> Option<Vec<u8>> {
    if path.is_dir() {
        None
    } else {
        Some(std::fs::read(path).unwrap())
    }
}

fn journal_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

#[test]
fn damaged_files_are_refused_untouched_and_only_a_missing_file_is_new() {
    for bad in [
        Bad::ZeroBytes,
        Bad::RandomBytes,
        Bad::Truncated,
        Bad::Directory,
        Bad::ReadOnly,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".tg/state.db");
        let _guard = spoil(&path, bad);
        if matches!(bad, Bad::ReadOnly) && _guard.is_none() {
            eprintln!("skipped {bad:?}: `chattr +i` is not available here");
            continue;
        }
        let before = contents(&path);
        // A real state keeps its write-ahead log when it is closed: a
        // truncated file is refused with its log there too, and the log
        // is left as it was.
        let journal_before = journal_of(&path)
            .exists()
            .then(|| contents(&journal_of(&path)));
        if matches!(bad, Bad::Truncated) {
            assert!(journal_before.is_some(), "the state's log is there");
        }
        let err = SqliteStore::open(&path).unwrap_err();
        let text = err.to_string();
        match bad {
            Bad::ReadOnly => assert!(text.contains("not writable"), "{bad:?}: {text}"),
            _ => assert!(matches!(err, StateError::Damaged { .. }), "{bad:?}: {text}"),
        }
        assert!(
            text.contains(&path.display().to_string()),
            "{bad:?}: {text}"
        );
        assert!(text.contains("not touched"), "{bad:?}: {text}");
        assert_eq!(contents(&path), before, "{bad:?}: the file was changed");
        assert_eq!(
            journal_of(&path)
                .exists()
                .then(|| contents(&journal_of(&path))),
            journal_before,
            "{bad:?}: a journal was made or changed"
        );
    }
    // Only a missing file is a new state.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join(".tg/state.db")).unwrap();
    assert!(store.list_sessions().unwrap().is_empty());
}

const BED: &str = r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "n" {
  count    = 2
  image    = "host"
  network  = network.lab
  platform = "double"
}
"#;

/// Commands that only read leave a folder without state as they found it
/// (no `.tg/`) and answer as for an empty store; `tg session new` and
/// `tg init` make the file.
#[test]
fn read_only_commands_in_a_folder_without_state_make_no_state_file() {
    let bed = crate::engine::Bed::new(BED);
    let tg_dir = bed.tb.path().join(".tg");
    // (arguments, exit code, what stdout or stderr says)
    let cases: &[(&[&str], i32, &str)] = &[
        (&["session", "list"], 0, "No sessions yet"),
        (&["session", "list", "-json"], 0, "[]"),
        (&["session", "show", "nope"], 1, "nope"),
        (
            &["session", "export", "alice/nope", "-data-dir", "srv"],
            1,
            "no `tg serve` session",
        ),
        (&["session", "delete", "nope"], 1, "nope"),
        (&["show"], 0, ""),
        (&["output"], 1, "does not exist"),
        (&["state", "list"], 1, "does not exist"),
        (&["state", "rm", "node.n[0]"], 1, "does not exist"),
        (
            &["state", "mv", "node.n[0]", "node.m[0]"],
            1,
            "is not recorded",
        ),
        (
            &[
                "force-unlock",
                "-force",
                "00000000-0000-0000-0000-000000000000",
            ],
            1,
            "",
        ),
        (&["exec", "n-0", "--", "true"], 1, "does not exist"),
    ];
    for (args, code, says) in cases {
        let r = bed.tg(args);
        assert_eq!(r.code(), *code, "{args:?}: {}{}", r.stdout(), r.stderr());
        let all = format!("{}{}", r.stdout(), r.stderr());
        assert!(all.contains(says), "{args:?} should say {says:?}: {all}");
        assert!(!all.contains("panicked"), "{args:?}: {all}");
        assert!(
            !tg_dir.exists(),
            "{args:?} made {}: {all}",
            tg_dir.display()
        );
    }
    bed.tg(&["session", "new", "ci-1"]).expect_code(0);
    assert!(tg_dir.join("state.db").is_file());
    let listed = bed.tg(&["session", "list"]);
    listed.expect_code(0);
    assert!(listed.stdout().contains("ci-1"), "{}", listed.stdout());

    let other = crate::engine::Bed::new(BED);
    other.tg(&["init"]).expect_code(0);
    assert!(other.tb.path().join(".tg/state.db").is_file());
}

/// Through the CLI: an apply over a damaged state makes nothing (no new
/// lineage, no orphaned objects) and says which file and what to do.
#[test]
fn apply_over_a_damaged_state_file_makes_nothing_and_names_the_file() {
    for bad in [
        Bad::ZeroBytes,
        Bad::RandomBytes,
        Bad::Truncated,
        Bad::Directory,
        Bad::ReadOnly,
    ] {
        let bed = crate::engine::Bed::new(BED);
        let path = bed.tb.path().join(".tg/state.db");
        if matches!(bad, Bad::Truncated | Bad::ReadOnly) {
            // A real session first, with objects the double made.
            bed.tg(&["apply", "-auto-approve"]).expect_code(0);
        }
        let objects = bed.objects();
        let _guard = spoil(&path, bad);
        if matches!(bad, Bad::ReadOnly) && _guard.is_none() {
            continue;
        }
        let before = contents(&path);
        for args in [
            &["apply", "-auto-approve"][..],
            &["plan"],
            &["state", "list"],
        ] {
            let r = bed.tg(args);
            r.expect_code(1);
            let err = r.stderr();
            assert!(err.contains(".tg/state.db"), "{bad:?} {args:?}: {err}");
            assert!(err.contains("not touched"), "{bad:?} {args:?}: {err}");
        }
        assert_eq!(contents(&path), before, "{bad:?}: the state was changed");
        assert_eq!(bed.objects(), objects, "{bad:?}: objects were made");
    }
}

/// Through the CLI: the state file moved away without its write-ahead log
/// (which tg keeps between commands) is not taken for a new state. Every
/// command that opens the store refuses and names the log, nothing is made
/// next to it, and the file put back has the session as it was.
#[test]
fn a_state_file_moved_away_without_its_log_is_not_a_new_state() {
    let bed = crate::engine::Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let path = bed.tb.path().join(".tg/state.db");
    let log = journal_of(&path);
    assert!(log.is_file(), "the log is kept after the command");
    let objects = bed.objects();
    let moved = bed.tb.path().join("state.db.bak");
    std::fs::rename(&path, &moved).unwrap();
    for args in [
        &["apply", "-auto-approve"][..],
        &["plan"],
        &["session", "list"],
        &["state", "list"],
    ] {
        let r = bed.tg(args);
        r.expect_code(1);
        let err = r.stderr();
        assert!(err.contains("write-ahead log"), "{args:?}: {err}");
        assert!(err.contains(".tg/state.db-wal"), "{args:?}: {err}");
        assert!(!path.exists(), "{args:?} made a new state next to the log");
    }
    assert_eq!(bed.objects(), objects, "objects were made");
    std::fs::rename(&moved, &path).unwrap();
    let listed = bed.tg(&["state", "list"]);
    listed.expect_code(0);
    assert!(listed.stdout().contains("node.n[1]"), "{}", listed.stdout());
    bed.tg(&["destroy", "-auto-approve"]).expect_code(0);
}

#[test]
fn processes_opening_a_new_file_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".tg/state.db");
    // Far enough ahead for every helper to be started and waiting.
    let at = (std::time::UNIX_EPOCH.elapsed().unwrap() + Duration::from_millis(1500))
        .as_millis()
        .to_string();
    let mut helpers: Vec<Helper> = (0..4)
        .map(|i| {
            Helper::start(
                "open",
                &path,
                &[(ARG_ENV, &i.to_string()), (START_AT_ENV, &at)],
            )
        })
        .collect();
    for helper in &mut helpers {
        helper.expect("DONE");
    }

    let store = SqliteStore::open(&path).unwrap();
    let snap = store.load("s").unwrap();
    assert_eq!(snap.instances.len(), 4);
    assert_eq!(snap.serial, 4);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        (1..=tg::state::SCHEMA_VERSION).collect::<Vec<_>>()
    );
}
