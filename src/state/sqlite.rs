//! The SQLite state store: the embedded default, one file (`.tg/state.db`)
//! next to the testbed.
//!
//! This module owns opening that file safely (a damaged file, a file that is
//! not a tg state and a file written by a newer tg are all refused without a
//! single byte written to them), applying the schema migrations in
//! `state/sqlite/`, the per-instance writes that bump a session's serial, and
//! the per-session lock table. It does not decide when to lock or what to
//! record: the engine does. The schema and migration rules are described in
//! `state/README.md`.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a write is on disk when
//! its call returns and a process killed at any moment leaves exactly the
//! writes that returned (plus possibly the one in flight, whole or not at all).

// `StateError` is large (a lock error carries the holder's details); its
// shape is shared by every store and fixed in `state/mod.rs`.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use super::{
    hostname, now_rfc3339, pid_alive, InstanceRecord, InstanceStatus, LockInfo, OutputRecord,
    SessionInfo, SessionLock, Snapshot, StateError, StateResult, StateStore, SCHEMA_VERSION,
};
use crate::addrs::InstanceAddr;

/// The schema migrations, in order: `(version, SQL)`. Version N is the file
/// `state/sqlite/000N_*.sql`; the last version is [`SCHEMA_VERSION`].
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../state/sqlite/0001_init.sql"))];

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The size of a SQLite database header; a non-empty file shorter than this
/// cannot be a database.
const SQLITE_HEADER_LEN: usize = 100;

/// How long one statement waits for another process's write transaction.
/// Every transaction tg runs is short, so this is only reached when something
/// outside tg holds the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a waiting [`StateStore::lock`] looks at the lock again.
const LOCK_POLL: Duration = Duration::from_millis(150);

/// The state of all sessions in one SQLite file.
///
/// One connection, shared behind a mutex by the store and the lock guards it
/// hands out, so the store is `Send + Sync` and a guard can release its lock
/// on drop even after the store itself is gone.
pub struct SqliteStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open the state file at `path`, creating it (and its parent folder,
    /// mode 0700; the file itself mode 0600) when missing, and migrating it
    /// to [`SCHEMA_VERSION`].
    ///
    /// Refused without writing to the file: a file that is not a SQLite
    /// database or is damaged ([`StateError::Damaged`]), a SQLite database
    /// that is not a tg state (also `Damaged`), and a state written by a
    /// newer tg ([`StateError::TooNew`]). Safe when several processes open
    /// the same new file at once: migrations run in one `BEGIN IMMEDIATE`
    /// transaction and the version is read again inside it.
    pub fn open(path: &Path) -> StateResult<SqliteStore> {
        let location = location_of(path);
        create_parent(path, &location)?;
        create_file(path, &location)?;
        check_header(path, &location)?;

        // Nothing below writes to the file until the version is known to be
        // one this tg understands: opening, the busy timeout and reading the
        // catalog are all read-only.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|e| db_err(&location, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| db_err(&location, e))?;
        let found = schema_version(&conn, &location)?;
        if found > SCHEMA_VERSION {
            return Err(too_new(&location, found));
        }

        enable_wal(&conn, &location)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| db_err(&location, e))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| db_err(&location, e))?;
        if found < SCHEMA_VERSION {
            migrate(&mut conn, &location)?;
        }

        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection cannot leave a transaction
        // open (rusqlite rolls back on drop), so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(&self, e: rusqlite::Error) -> StateError {
        db_err(&self.location(), e)
    }

    /// Run `f` in one write transaction that also bumps `session`'s serial
    /// and `updated_at`; returns the new serial.
    fn write<F>(&self, session: &str, f: F) -> StateResult<u64>
    where
        F: FnOnce(&Transaction<'_>) -> StateResult<()>,
    {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let serial: Option<i64> = tx
            .query_row(
                "UPDATE sessions SET serial = serial + 1, updated_at = ?2
                 WHERE name = ?1 RETURNING serial",
                params![session, now_rfc3339()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(serial) = serial else {
            return Err(StateError::NoSuchSession(session.to_string()));
        };
        f(&tx)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(to_u64(serial))
    }

    /// One attempt at taking a lock: `None` when taken, else the live holder.
    fn try_lock(&self, request: &LockInfo) -> StateResult<Option<LockInfo>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        if let Some(holder) = read_lock(&tx, &request.session).map_err(|e| self.err(e))? {
            if !is_stale(&holder) {
                return Ok(Some(holder));
            }
            tx.execute(
                "DELETE FROM locks WHERE session = ?1 AND id = ?2",
                params![holder.session, holder.id],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.execute(
            r#"INSERT INTO locks (session, id, operation, "user", host, pid, created_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"#,
            params![
                request.session,
                request.id,
                request.operation,
                request.user,
                request.host,
                i64::from(request.pid),
                request.created_at,
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(None)
    }
}

impl StateStore for SqliteStore {
    fn location(&self) -> String {
        location_of(&self.path)
    }

    fn list_sessions(&self) -> StateResult<Vec<SessionInfo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("{SESSION_SELECT} ORDER BY s.name"))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], session_from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn get_session(&self, name: &str) -> StateResult<Option<SessionInfo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("{SESSION_SELECT} WHERE s.name = ?1"))
            .map_err(|e| self.err(e))?;
        stmt.query_row([name], session_from_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    fn create_session(&self, name: &str) -> StateResult<SessionInfo> {
        let now = now_rfc3339();
        let info = SessionInfo {
            name: name.to_string(),
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            created_at: now.clone(),
            updated_at: now,
            instances: 0,
        };
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO sessions (name, lineage, serial, created_at, updated_at)
             VALUES (?1, ?2, 0, ?3, ?4) ON CONFLICT (name) DO NOTHING",
            params![info.name, info.lineage, info.created_at, info.updated_at],
        );
        match inserted {
            Ok(0) => Err(StateError::SessionExists(name.to_string())),
            Ok(_) => Ok(info),
            Err(e) => Err(self.err(e)),
        }
    }

    fn delete_session(&self, name: &str) -> StateResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        // The foreign keys cascade too; deleting explicitly keeps the file
        // consistent even for a connection that has them off.
        for sql in [
            "DELETE FROM instances WHERE session = ?1",
            "DELETE FROM outputs WHERE session = ?1",
        ] {
            tx.execute(sql, [name]).map_err(|e| self.err(e))?;
        }
        let deleted = tx
            .execute("DELETE FROM sessions WHERE name = ?1", [name])
            .map_err(|e| self.err(e))?;
        if deleted == 0 {
            return Err(StateError::NoSuchSession(name.to_string()));
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn load(&self, session: &str) -> StateResult<Snapshot> {
        let location = self.location();
        let mut conn = self.conn();
        // One read transaction: the three reads see the same moment.
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let head: Option<(String, i64)> = tx
            .query_row(
                "SELECT lineage, serial FROM sessions WHERE name = ?1",
                [session],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((lineage, serial)) = head else {
            return Err(StateError::NoSuchSession(session.to_string()));
        };

        let mut instances = BTreeMap::new();
        {
            let mut stmt = tx
                .prepare_cached("SELECT address, record FROM instances WHERE session = ?1")
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([session]).map_err(|e| self.err(e))?;
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                let address = row
                    .get_ref(0)
                    .and_then(|v| Ok(v.as_str()?))
                    .map_err(|e| self.err(e))?;
                let text = row
                    .get_ref(1)
                    .and_then(|v| Ok(v.as_str()?))
                    .map_err(|e| self.err(e))?;
                let record: InstanceRecord = serde_json::from_str(text).map_err(|e| {
                    damaged(
                        &location,
                        format!(
                            "the record of `{address}` in session `{session}` cannot be read ({e})"
                        ),
                    )
                })?;
                if record.address.to_string() != address {
                    return Err(damaged(
                        &location,
                        format!(
                            "the record stored under `{address}` in session `{session}` is for `{}`",
                            record.address
                        ),
                    ));
                }
                instances.insert(record.address.clone(), record);
            }
        }

        let mut outputs = BTreeMap::new();
        {
            let mut stmt = tx
                .prepare_cached("SELECT name, value, sensitive FROM outputs WHERE session = ?1")
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([session]).map_err(|e| self.err(e))?;
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                let name: String = row.get(0).map_err(|e| self.err(e))?;
                let text = row
                    .get_ref(1)
                    .and_then(|v| Ok(v.as_str()?))
                    .map_err(|e| self.err(e))?;
                let sensitive: bool = row.get(2).map_err(|e| self.err(e))?;
                let value = serde_json::from_str(text).map_err(|e| {
                    damaged(
                        &location,
                        format!("output `{name}` of session `{session}` cannot be read ({e})"),
                    )
                })?;
                outputs.insert(name, OutputRecord { value, sensitive });
            }
        }
        tx.commit().map_err(|e| self.err(e))?;

        Ok(Snapshot {
            lineage,
            serial: to_u64(serial),
            instances,
            outputs,
        })
    }

    fn put_instance(&self, session: &str, record: &InstanceRecord) -> StateResult<u64> {
        let location = self.location();
        let json = encode(&location, &record.address.to_string(), record)?;
        self.write(session, |tx| {
            insert_instance(tx, session, record, &json).map_err(|e| db_err(&location, e))
        })
    }

    /// Forgetting an address that is not recorded is not an error; the
    /// serial is bumped all the same (every write call bumps it).
    fn remove_instance(&self, session: &str, address: &InstanceAddr) -> StateResult<u64> {
        let location = self.location();
        self.write(session, |tx| {
            tx.execute(
                "DELETE FROM instances WHERE session = ?1 AND address = ?2",
                params![session, address.to_string()],
            )
            .map(drop)
            .map_err(|e| db_err(&location, e))
        })
    }

    fn put_outputs(
        &self,
        session: &str,
        outputs: &BTreeMap<String, OutputRecord>,
    ) -> StateResult<u64> {
        let location = self.location();
        let encoded = outputs
            .iter()
            .map(|(name, o)| Ok((name, encode(&location, name, &o.value)?, o.sensitive)))
            .collect::<StateResult<Vec<_>>>()?;
        self.write(session, |tx| {
            replace_outputs(tx, session, &encoded).map_err(|e| db_err(&location, e))
        })
    }

    /// The session is created when missing. An empty `snapshot.lineage`
    /// keeps the session's lineage (or makes a fresh one). The new serial is
    /// one more than both the session's and the snapshot's, so a saved plan
    /// made against either is seen as stale.
    fn import(&self, session: &str, snapshot: &Snapshot) -> StateResult<u64> {
        let location = self.location();
        let instances = snapshot
            .instances
            .values()
            .map(|r| Ok((r, encode(&location, &r.address.to_string(), r)?)))
            .collect::<StateResult<Vec<_>>>()?;
        let outputs = snapshot
            .outputs
            .iter()
            .map(|(name, o)| Ok((name, encode(&location, name, &o.value)?, o.sensitive)))
            .collect::<StateResult<Vec<_>>>()?;
        let incoming = i64::try_from(snapshot.serial).map_err(|_| StateError::Backend {
            location: location.clone(),
            message: format!("the snapshot's serial {} is too large", snapshot.serial),
        })?;

        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let current: Option<(String, i64)> = tx
            .query_row(
                "SELECT lineage, serial FROM sessions WHERE name = ?1",
                [session],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let lineage = match (&current, snapshot.lineage.is_empty()) {
            (_, false) => snapshot.lineage.clone(),
            (Some((kept, _)), true) => kept.clone(),
            (None, true) => uuid::Uuid::new_v4().to_string(),
        };
        let serial = current
            .as_ref()
            .map_or(0, |(_, s)| *s)
            .max(incoming)
            .saturating_add(1);
        let now = now_rfc3339();
        tx.execute(
            "INSERT INTO sessions (name, lineage, serial, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (name) DO UPDATE SET
               lineage = excluded.lineage, serial = excluded.serial,
               updated_at = excluded.updated_at",
            params![session, lineage, serial, now],
        )
        .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM instances WHERE session = ?1", [session])
            .map_err(|e| self.err(e))?;
        for (record, json) in &instances {
            insert_instance(&tx, session, record, json).map_err(|e| self.err(e))?;
        }
        replace_outputs(&tx, session, &outputs).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(to_u64(serial))
    }

    /// A holder on this host whose process is gone is stale and taken over.
    /// A holder on another host is never judged: only `force_unlock` (or the
    /// holder) removes it.
    fn lock(&self, request: LockInfo, timeout: Duration) -> StateResult<Box<dyn SessionLock>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let Some(holder) = self.try_lock(&request)? else {
                return Ok(Box::new(SqliteLock {
                    conn: Arc::clone(&self.conn),
                    info: request,
                }));
            };
            let left = deadline.map_or(LOCK_POLL, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(StateError::Locked {
                    session: request.session,
                    holder,
                });
            }
            std::thread::sleep(left.min(LOCK_POLL));
        }
    }

    fn lock_holder(&self, session: &str) -> StateResult<Option<LockInfo>> {
        read_lock(&self.conn(), session).map_err(|e| self.err(e))
    }

    fn force_unlock(&self, session: &str, id: &str) -> StateResult<()> {
        let deleted = self
            .conn()
            .execute(
                "DELETE FROM locks WHERE session = ?1 AND id = ?2",
                params![session, id],
            )
            .map_err(|e| self.err(e))?;
        if deleted == 0 {
            return Err(StateError::NoSuchLock {
                session: session.to_string(),
                id: id.to_string(),
            });
        }
        Ok(())
    }
}

/// A held session lock in a SQLite store; its row is deleted on drop (only
/// while the row is still this lock's: a lock taken over by `force-unlock`
/// and someone else stays theirs).
struct SqliteLock {
    conn: Arc<Mutex<Connection>>,
    info: LockInfo,
}

impl SessionLock for SqliteLock {
    fn info(&self) -> &LockInfo {
        &self.info
    }
}

impl Drop for SqliteLock {
    fn drop(&mut self) {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        // Nothing to report to: a row left behind names this process, which
        // is about to end or is still alive, and the next `lock` on this
        // host sees it as stale once the process is gone.
        let _ = conn.execute(
            "DELETE FROM locks WHERE session = ?1 AND id = ?2",
            params![self.info.session, self.info.id],
        );
    }
}

const SESSION_SELECT: &str = "SELECT s.name, s.lineage, s.serial, s.created_at, s.updated_at,
        (SELECT COUNT(*) FROM instances i WHERE i.session = s.name)
    FROM sessions s";

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionInfo> {
    Ok(SessionInfo {
        name: r.get(0)?,
        lineage: r.get(1)?,
        serial: to_u64(r.get(2)?),
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        instances: usize::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
    })
}

fn read_lock(conn: &Connection, session: &str) -> rusqlite::Result<Option<LockInfo>> {
    conn.prepare_cached(
        r#"SELECT session, id, operation, "user", host, pid, created_at
           FROM locks WHERE session = ?1"#,
    )?
    .query_row([session], |r| {
        Ok(LockInfo {
            session: r.get(0)?,
            id: r.get(1)?,
            operation: r.get(2)?,
            user: r.get(3)?,
            host: r.get(4)?,
            // A pid that does not fit is no live process of ours.
            pid: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
            created_at: r.get(6)?,
        })
    })
    .optional()
}

/// Is this lock's holder known to be gone? Only provable on this host.
fn is_stale(holder: &LockInfo) -> bool {
    holder.host == hostname() && !pid_alive(holder.pid)
}

fn insert_instance(
    tx: &Transaction<'_>,
    session: &str,
    record: &InstanceRecord,
    json: &str,
) -> rusqlite::Result<()> {
    let status = match record.status {
        InstanceStatus::Ready => "ready",
        InstanceStatus::Tainted => "tainted",
    };
    tx.prepare_cached(
        "INSERT INTO instances (session, address, platform, status, record)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (session, address) DO UPDATE SET
           platform = excluded.platform, status = excluded.status, record = excluded.record",
    )?
    .execute(params![
        session,
        record.address.to_string(),
        record.platform,
        status,
        json
    ])
    .map(drop)
}

fn replace_outputs(
    tx: &Transaction<'_>,
    session: &str,
    outputs: &[(&String, String, bool)],
) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM outputs WHERE session = ?1", [session])?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO outputs (session, name, value, sensitive) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (name, value, sensitive) in outputs {
        stmt.execute(params![session, name, value, sensitive])?;
    }
    Ok(())
}

fn encode<T: serde::Serialize>(location: &str, what: &str, value: &T) -> StateResult<String> {
    serde_json::to_string(value).map_err(|e| StateError::Backend {
        location: location.to_string(),
        message: format!("cannot encode `{what}` as JSON: {e}"),
    })
}

/// Serials are written by this module only and never negative.
fn to_u64(serial: i64) -> u64 {
    u64::try_from(serial).unwrap_or(0)
}

fn location_of(path: &Path) -> String {
    format!("sqlite {}", path.display())
}

fn damaged(location: &str, reason: impl Into<String>) -> StateError {
    StateError::Damaged {
        location: location.to_string(),
        reason: reason.into(),
    }
}

fn too_new(location: &str, found: i64) -> StateError {
    StateError::TooNew {
        location: location.to_string(),
        found,
        known: SCHEMA_VERSION,
    }
}

fn io_err(location: &str, what: &str, e: io::Error) -> StateError {
    StateError::Backend {
        location: location.to_string(),
        message: format!("{what}: {e}"),
    }
}

/// Map a SQLite error: damage is reported as such, a database that stayed
/// busy says so, anything else is a backend error.
fn db_err(location: &str, e: rusqlite::Error) -> StateError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            damaged(location, e.to_string())
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StateError::Backend {
            location: location.to_string(),
            message: format!(
                "the database stayed busy for more than {}s ({e}); another process holds it",
                BUSY_TIMEOUT.as_secs()
            ),
        },
        _ => StateError::Backend {
            location: location.to_string(),
            message: e.to_string(),
        },
    }
}

/// Create the state file's folder (mode 0700: state may hold secrets) when
/// missing. An existing folder is left as it is.
fn create_parent(path: &Path, location: &str) -> StateResult<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| {
            io_err(
                location,
                &format!("cannot create the folder `{}`", parent.display()),
                e,
            )
        })
}

/// Create the state file, empty and mode 0600, when missing (SQLite gives
/// its journal files the same mode). An existing file is not opened for
/// writing here.
fn create_file(path: &Path, location: &str) -> StateResult<()> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(
            location,
            &format!("cannot create `{}`", path.display()),
            e,
        )),
    }
}

/// Refuse a file that cannot be a SQLite database before SQLite sees it.
/// An empty file is a new database.
fn check_header(path: &Path, location: &str) -> StateResult<()> {
    let mut header = Vec::with_capacity(SQLITE_HEADER_LEN);
    fs::File::open(path)
        .and_then(|f| f.take(SQLITE_HEADER_LEN as u64).read_to_end(&mut header))
        .map_err(|e| io_err(location, &format!("cannot read `{}`", path.display()), e))?;
    if header.is_empty() {
        return Ok(());
    }
    if !header.starts_with(SQLITE_MAGIC) {
        return Err(damaged(location, "it is not a SQLite database"));
    }
    if header.len() < SQLITE_HEADER_LEN {
        return Err(damaged(
            location,
            "the file is shorter than a SQLite database header",
        ));
    }
    Ok(())
}

/// The schema version recorded in the file (0 for a new, empty database).
/// Read-only.
fn schema_version(conn: &Connection, location: &str) -> StateResult<i64> {
    let err = |e| db_err(location, e);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(err)?;
    if !tables.iter().any(|t| t == "schema_migrations") {
        if tables.is_empty() {
            return Ok(0);
        }
        return Err(damaged(
            location,
            "it is a SQLite database but not a tg state (it has no `schema_migrations` table)",
        ));
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
    .map_err(err)
}

/// Switch to the WAL journal. Changing the journal mode needs the database
/// to itself for a moment, so retry while another process is opening it too.
fn enable_wal(conn: &Connection, location: &str) -> StateResult<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            // A file system without shared memory support keeps the rollback
            // journal, which is just as durable with `synchronous=FULL`.
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(db_err(location, e)),
        }
    }
}

/// Apply every migration newer than the file's version, all in one
/// `BEGIN IMMEDIATE` transaction. The version is read again inside it: a
/// process that opened the same new file a moment earlier may have migrated
/// it already (or a newer tg may have).
fn migrate(conn: &mut Connection, location: &str) -> StateResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| db_err(location, e))?;
    let found = schema_version(&tx, location)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(location, found));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let failed = |e: rusqlite::Error| StateError::Backend {
            location: location.to_string(),
            message: format!("migration {version:04} failed: {e}"),
        };
        tx.execute_batch(sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at, tg_version) VALUES (?1, ?2, ?3)",
            params![version, now_rfc3339(), env!("CARGO_PKG_VERSION")],
        )
        .map_err(failed)?;
    }
    tx.commit().map_err(|e| db_err(location, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addrs::{InstanceKey, ResourceKind};
    use crate::platform::{NetworkSpec, Spec};
    use std::os::unix::fs::PermissionsExt;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join(".tg/state.db")).unwrap();
        (dir, store)
    }

    fn record(i: u64) -> InstanceRecord {
        let address = InstanceAddr::new(ResourceKind::Network, "lab", InstanceKey::Int(i));
        InstanceRecord {
            platform: "netns".into(),
            status: if i % 7 == 3 {
                InstanceStatus::Tainted
            } else {
                InstanceStatus::Ready
            },
            spec: Spec::Network(NetworkSpec {
                name: address.host_name(),
                cidr: format!("10.{}.{}.0/24", (i / 256) % 256, i % 256)
                    .parse()
                    .unwrap(),
                gateway: format!("10.{}.{}.1", (i / 256) % 256, i % 256)
                    .parse()
                    .unwrap(),
                nat: i % 2 == 0,
            }),
            private: serde_json::json!({ "bridge": format!("tgbr{i}"), "n": i }),
            dependencies: vec![],
            attributes: serde_json::json!({ "name": address.host_name() }),
            sensitive: vec![],
            address,
        }
    }

    fn lock_request(session: &str) -> LockInfo {
        LockInfo::for_this_process(session, "apply")
    }

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, (version, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
            assert!(!sql.trim().is_empty());
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }

    #[test]
    fn open_creates_a_private_folder_and_file_and_records_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/.tg/state.db");
        let store = SqliteStore::open(&path).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("a/.tg")), 0o700);
        assert_eq!(mode(&path), 0o600);
        let conn = store.conn();
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: bool = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(fk);
        drop(conn);
        assert_eq!(store.location(), format!("sqlite {}", path.display()));
        drop(store);
        // Reopening an up-to-date file applies nothing again.
        let store = SqliteStore::open(&path).unwrap();
        let rows: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, MIGRATIONS.len() as i64);
    }

    #[test]
    fn sessions_create_list_get_delete() {
        let (_dir, store) = store();
        assert!(store.list_sessions().unwrap().is_empty());
        assert_eq!(store.get_session("a").unwrap(), None);
        let a = store.create_session("a").unwrap();
        assert_eq!(a.serial, 0);
        assert!(uuid::Uuid::parse_str(&a.lineage).is_ok());
        let b = store.create_session("b").unwrap();
        assert_ne!(a.lineage, b.lineage);
        assert_eq!(store.get_session("a").unwrap(), Some(a.clone()));
        let names: Vec<_> = store
            .list_sessions()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["a", "b"]);

        assert!(matches!(
            store.create_session("a"),
            Err(StateError::SessionExists(n)) if n == "a"
        ));
        assert_eq!(store.ensure_session("a").unwrap(), a);
        assert_eq!(store.ensure_session("c").unwrap().name, "c");

        store.put_instance("a", &record(1)).unwrap();
        store.delete_session("a").unwrap();
        assert_eq!(store.get_session("a").unwrap(), None);
        assert!(matches!(
            store.delete_session("a"),
            Err(StateError::NoSuchSession(_))
        ));
        // Its instances went with it: a new session of the same name is empty.
        store.create_session("a").unwrap();
        assert!(store.load("a").unwrap().instances.is_empty());
    }

    #[test]
    fn every_write_bumps_the_serial_and_keeps_the_lineage() {
        let (_dir, store) = store();
        let created = store.create_session("s").unwrap();
        let mut serials = vec![
            store.put_instance("s", &record(0)).unwrap(),
            store.put_instance("s", &record(0)).unwrap(),
            store.remove_instance("s", &record(0).address).unwrap(),
            store.put_outputs("s", &BTreeMap::new()).unwrap(),
        ];
        serials.push(store.get_session("s").unwrap().unwrap().serial);
        assert_eq!(serials, [1, 2, 3, 4, 4]);
        let snap = store.load("s").unwrap();
        assert_eq!(snap.serial, 4);
        assert_eq!(snap.lineage, created.lineage);
        assert_eq!(
            store.get_session("s").unwrap().unwrap().lineage,
            created.lineage
        );
    }

    #[test]
    fn writes_to_a_missing_session_are_refused() {
        let (_dir, store) = store();
        assert!(matches!(
            store.put_instance("nope", &record(0)),
            Err(StateError::NoSuchSession(s)) if s == "nope"
        ));
        assert!(matches!(
            store.load("nope"),
            Err(StateError::NoSuchSession(_))
        ));
        assert!(matches!(
            store.put_outputs("nope", &BTreeMap::new()),
            Err(StateError::NoSuchSession(_))
        ));
    }

    #[test]
    fn instances_round_trip() {
        let (_dir, store) = store();
        store.create_session("s").unwrap();
        store.create_session("other").unwrap();
        for i in 0..5 {
            store.put_instance("s", &record(i)).unwrap();
        }
        store.put_instance("other", &record(9)).unwrap();
        let mut changed = record(2);
        changed.status = InstanceStatus::Tainted;
        changed.private = serde_json::json!({ "changed": true });
        store.put_instance("s", &changed).unwrap();
        store.remove_instance("s", &record(4).address).unwrap();

        let snap = store.load("s").unwrap();
        let expected: BTreeMap<_, _> = [record(0), record(1), changed, record(3)]
            .into_iter()
            .map(|r| (r.address.clone(), r))
            .collect();
        assert_eq!(snap.instances, expected);
        assert_eq!(store.get_session("s").unwrap().unwrap().instances, 4);
        assert_eq!(store.load("other").unwrap().instances.len(), 1);
    }

    #[test]
    fn outputs_are_replaced_as_a_whole() {
        let (_dir, store) = store();
        store.create_session("s").unwrap();
        let first: BTreeMap<_, _> = [
            (
                "a".to_string(),
                OutputRecord {
                    value: serde_json::json!({"x": [1, 2]}),
                    sensitive: false,
                },
            ),
            (
                "b".to_string(),
                OutputRecord {
                    value: serde_json::json!("secret"),
                    sensitive: true,
                },
            ),
        ]
        .into();
        store.put_outputs("s", &first).unwrap();
        assert_eq!(store.load("s").unwrap().outputs, first);
        let second: BTreeMap<_, _> = [(
            "c".to_string(),
            OutputRecord {
                value: serde_json::Value::Null,
                sensitive: false,
            },
        )]
        .into();
        store.put_outputs("s", &second).unwrap();
        assert_eq!(store.load("s").unwrap().outputs, second);
    }

    #[test]
    fn import_replaces_content_and_keeps_the_lineage() {
        let (_dir, src) = store();
        src.create_session("s").unwrap();
        for i in 0..3 {
            src.put_instance("s", &record(i)).unwrap();
        }
        src.put_outputs(
            "s",
            &[(
                "o".to_string(),
                OutputRecord {
                    value: serde_json::json!(1),
                    sensitive: false,
                },
            )]
            .into(),
        )
        .unwrap();
        let snap = src.load("s").unwrap();
        assert_eq!(snap.serial, 4);

        // Into a new session: created with the snapshot's lineage.
        let (_dir2, dst) = store();
        let serial = dst.import("s", &snap).unwrap();
        assert_eq!(serial, 5);
        let got = dst.load("s").unwrap();
        assert_eq!(got.lineage, snap.lineage);
        assert_eq!(got.serial, 5);
        assert_eq!(got.instances, snap.instances);
        assert_eq!(got.outputs, snap.outputs);

        // Over an existing session with more writes: content replaced,
        // serial above both.
        dst.create_session("t").unwrap();
        for i in 10..20 {
            dst.put_instance("t", &record(i)).unwrap();
        }
        let serial = dst.import("t", &snap).unwrap();
        assert_eq!(serial, 11);
        let got = dst.load("t").unwrap();
        assert_eq!(got.lineage, snap.lineage);
        assert_eq!(got.instances, snap.instances);
    }

    #[test]
    fn ten_thousand_instances_load_correctly() {
        let (_dir, store) = store();
        let snap = Snapshot {
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            instances: (0..10_000)
                .map(record)
                .map(|r| (r.address.clone(), r))
                .collect(),
            outputs: BTreeMap::new(),
        };
        store.import("big", &snap).unwrap();
        let got = store.load("big").unwrap();
        assert_eq!(got.instances.len(), 10_000);
        assert_eq!(got.instances, snap.instances);
        assert_eq!(store.get_session("big").unwrap().unwrap().instances, 10_000);
    }

    /// By hand: `cargo test --release --lib state::sqlite -- --ignored --nocapture`.
    #[test]
    #[ignore = "a timing run, not a check"]
    fn time_loading_ten_thousand_instances() {
        let (_dir, store) = store();
        let snap = Snapshot {
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            instances: (0..10_000)
                .map(record)
                .map(|r| (r.address.clone(), r))
                .collect(),
            outputs: BTreeMap::new(),
        };
        let started = Instant::now();
        store.import("big", &snap).unwrap();
        eprintln!("import of 10000 instances: {:?}", started.elapsed());
        for _ in 0..5 {
            let started = Instant::now();
            let got = store.load("big").unwrap();
            eprintln!(
                "load of {} instances: {:?}",
                got.instances.len(),
                started.elapsed()
            );
        }
        let started = Instant::now();
        store.put_instance("big", &record(5)).unwrap();
        eprintln!("one put_instance: {:?}", started.elapsed());
    }

    #[test]
    fn unreadable_records_are_reported_as_damage() {
        let (_dir, store) = store();
        store.create_session("s").unwrap();
        store.put_instance("s", &record(0)).unwrap();
        store
            .conn()
            .execute("UPDATE instances SET record = '{not json'", [])
            .unwrap();
        let err = store.load("s").unwrap_err();
        assert!(matches!(err, StateError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("`network.lab[0]`"), "{err}");
    }

    #[test]
    fn a_held_lock_refuses_a_second_holder_with_its_details() {
        let (_dir, store) = store();
        let first = store.lock(lock_request("s"), Duration::ZERO).unwrap();
        assert_eq!(store.lock_holder("s").unwrap().as_ref(), Some(first.info()));

        let started = Instant::now();
        let err = store
            .lock(lock_request("s"), Duration::from_millis(400))
            .err()
            .expect("second lock must fail");
        assert!(started.elapsed() >= Duration::from_millis(400));
        let StateError::Locked { session, holder } = &err else {
            panic!("expected Locked, got {err}");
        };
        assert_eq!(session, "s");
        assert_eq!(holder, first.info());
        let message = err.to_string();
        assert!(message.contains(&first.info().id), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );

        // Other sessions are not blocked.
        let other = store.lock(lock_request("t"), Duration::ZERO).unwrap();
        drop(other);

        drop(first);
        assert_eq!(store.lock_holder("s").unwrap(), None);
        store.lock(lock_request("s"), Duration::ZERO).unwrap();
    }

    #[test]
    fn waiting_for_a_lock_succeeds_when_it_is_released() {
        let (_dir, store) = store();
        let store = Arc::new(store);
        let first = store.lock(lock_request("s"), Duration::ZERO).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let started = Instant::now();
        let second = store
            .lock(lock_request("s"), Duration::from_secs(10))
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(
            store.lock_holder("s").unwrap().as_ref(),
            Some(second.info())
        );
        releaser.join().unwrap();
    }

    #[test]
    fn force_unlock_removes_only_the_named_lock() {
        let (_dir, store) = store();
        let held = store.lock(lock_request("s"), Duration::ZERO).unwrap();
        let id = held.info().id.clone();
        assert!(matches!(
            store.force_unlock("s", "not-the-id"),
            Err(StateError::NoSuchLock { .. })
        ));
        assert!(matches!(
            store.force_unlock("t", &id),
            Err(StateError::NoSuchLock { .. })
        ));
        store.force_unlock("s", &id).unwrap();
        assert_eq!(store.lock_holder("s").unwrap(), None);

        // Someone else takes it; the old guard's drop leaves theirs alone.
        let next = store.lock(lock_request("s"), Duration::ZERO).unwrap();
        drop(held);
        assert_eq!(store.lock_holder("s").unwrap().as_ref(), Some(next.info()));
    }

    #[test]
    fn a_lock_of_a_dead_process_on_this_host_is_taken_over() {
        let (_dir, store) = store();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();

        let mut stale = lock_request("s");
        stale.pid = dead_pid;
        store.try_lock(&stale).unwrap();
        let taken = store.lock(lock_request("s"), Duration::ZERO).unwrap();
        assert_eq!(store.lock_holder("s").unwrap().as_ref(), Some(taken.info()));
        drop(taken);

        // The same dead pid on another host cannot be judged: it stays.
        let mut remote = stale.clone();
        remote.host = format!("{}-elsewhere", hostname());
        store.try_lock(&remote).unwrap();
        assert!(matches!(
            store.lock(lock_request("s"), Duration::ZERO),
            Err(StateError::Locked { holder, .. }) if holder == remote
        ));
    }

    fn assert_refused_untouched(path: &Path, check: impl Fn(&StateError) -> bool) {
        let before = fs::read(path).unwrap();
        let err = SqliteStore::open(path).unwrap_err();
        assert!(check(&err), "unexpected error: {err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(fs::read(path).unwrap(), before, "the file was written to");
    }

    #[test]
    fn damaged_files_are_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        fs::write(&garbage, b"this is not a database at all\n".repeat(300)).unwrap();
        assert_refused_untouched(&garbage, |e| matches!(e, StateError::Damaged { .. }));
        assert!(!dir.path().join("garbage.db-wal").exists());

        // The right magic, then garbage (rollback journal header bytes kept
        // so SQLite reads it in place).
        let fake = dir.path().join("fake.db");
        let mut bytes = SQLITE_MAGIC.to_vec();
        bytes.extend((0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        bytes[18] = 1;
        bytes[19] = 1;
        fs::write(&fake, &bytes).unwrap();
        assert_refused_untouched(&fake, |e| {
            // Refused by SQLite itself, not by the header check.
            matches!(e, StateError::Damaged { reason, .. } if !reason.contains("not a SQLite"))
        });

        let short = dir.path().join("short.db");
        fs::write(&short, SQLITE_MAGIC).unwrap();
        assert_refused_untouched(&short, |e| matches!(e, StateError::Damaged { .. }));
    }

    #[test]
    fn a_sqlite_database_that_is_not_a_tg_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY);")
                .unwrap();
        }
        assert_refused_untouched(
            &path,
            |e| matches!(e, StateError::Damaged { reason, .. } if reason.contains("not a tg state")),
        );
    }

    #[test]
    fn a_state_from_a_newer_tg_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        store.create_session("s").unwrap();
        drop(store);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (99, 'x', '9.9.9')",
                [],
            )
            .unwrap();
        }
        assert_refused_untouched(
            &path,
            |e| matches!(e, StateError::TooNew { found: 99, known, .. } if *known == SCHEMA_VERSION),
        );
    }

    #[test]
    fn concurrent_opens_of_a_new_file_migrate_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".tg/state.db");
        let barrier = Arc::new(std::sync::Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = SqliteStore::open(&path)?;
                    store.ensure_session("shared")?;
                    store.put_instance("shared", &record(i))
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let snap = store.load("shared").unwrap();
        assert_eq!(snap.instances.len(), 6);
        assert_eq!(snap.serial, 6);
        let rows: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, MIGRATIONS.len() as i64);
    }

    #[test]
    fn the_store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SqliteStore>();
    }
}
