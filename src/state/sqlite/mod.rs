//! The SQLite state store: the embedded default, one file (`.tg/state.db`)
//! next to the testbed.
//!
//! This module owns the store itself: sessions, loading a session, the
//! batched writes that bump a session's serial, and `import`. Records go
//! through [`crate::state::codec`], so a row that does not decode is
//! reported as damage, never a panic. [`open`] owns opening the file safely
//! and its schema; [`locks`] owns the session locks. It does not decide
//! when to lock or what to record: the engine does. The schema and
//! migration rules are described in `state/README.md`.
//!
//! Durability: WAL journal. Every commit survives a killed process when it
//! returns (`synchronous=NORMAL`: the commit is in the WAL). Session
//! changes, `import`, and the first batch after
//! [`SYNC_INTERVAL`](super::SYNC_INTERVAL) since the last sync are
//! committed with `synchronous=FULL` (an fsync of the WAL, which makes every
//! earlier commit survive a power loss too); [`StateStore::sync`] syncs on
//! demand (an fsync of the WAL). A power loss therefore loses at most the
//! batches of the last interval, and the file stays whole. The WAL outlives
//! the connection (no checkpoint at close, see `open::keep_wal_on_close`):
//! `state.db` and `state.db-wal` are one state. See `docs/state.md`.

// `StateError` is large (a lock error carries the holder's details); its
// shape is shared by every store and fixed in `state/mod.rs`.
#![allow(clippy::result_large_err)]

mod files;
mod leases;
mod locks;
mod open;

pub(crate) use open::has_wal;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::FromSql;
use rusqlite::{params, Connection, ErrorCode, Transaction, TransactionBehavior};

use super::codec::{self, damaged, InstanceRow, OutputRow};
use super::{
    now_rfc3339, LockInfo, SessionInfo, SessionLock, Snapshot, StateError, StateResult, StateStore,
    StateWrite, SyncClock,
};

/// How long one statement waits for another process's write transaction.
/// Every transaction tg runs is short, so this is only reached when something
/// outside tg holds the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The state of all sessions in one SQLite file.
///
/// One connection, shared behind a mutex by the store and the lock guards it
/// hands out, so the store is `Send + Sync` and a guard can release its lock
/// even after the store itself is gone.
pub struct SqliteStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// In WAL mode; otherwise every commit is synced.
    wal: bool,
    clock: Mutex<SyncClock>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open the state file at `path`, making a new store (and its parent
    /// folder, mode 0700; the file itself mode 0600) only when the file is
    /// missing, and migrating it to [`super::SCHEMA_VERSION`].
    ///
    /// Refused without writing to the file: an existing file that is empty,
    /// not a SQLite database, truncated or damaged, a directory, a dangling
    /// symlink, or a SQLite database that is not a tg state
    /// ([`StateError::Damaged`]); a file that is not writable
    /// ([`StateError::Backend`]); a state written by a newer tg
    /// ([`StateError::TooNew`]). Safe when several processes open the same
    /// missing file at once: one of them makes it, the others use it.
    pub fn open(path: &Path) -> StateResult<SqliteStore> {
        let location = location_of(path);
        let (conn, wal) = open::open(path, &location)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            wal,
            clock: Mutex::new(SyncClock::new()),
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

    fn clock(&self) -> MutexGuard<'_, SyncClock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `commit` (which commits one transaction on `conn`) synced
    /// (`synchronous=FULL`: an fsync, after which every earlier commit
    /// survives a power loss too) or not, and note which.
    fn committing<T>(
        &self,
        conn: &mut Connection,
        synced: bool,
        commit: impl FnOnce(&mut Connection) -> StateResult<T>,
    ) -> StateResult<T> {
        let switch = synced && self.wal;
        if switch {
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(|e| self.err(e))?;
        }
        let result = commit(conn);
        if switch {
            // Back to the default, also when the commit failed.
            let reset = conn
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| self.err(e));
            if result.is_ok() {
                reset?;
            }
        }
        if result.is_ok() {
            self.clock().committed(synced || !self.wal);
        }
        result
    }

    /// A commit made outside [`Self::committing`] (leases, session files):
    /// unsynced until the next sync (in WAL mode; otherwise every commit is).
    fn wrote(&self) {
        self.clock().committed(!self.wal);
    }

    /// Bump `session`'s serial and `updated_at` in `tx`; the new serial.
    fn bump(&self, tx: &Transaction<'_>, session: &str) -> StateResult<u64> {
        let location = self.location();
        let mut stmt = tx
            .prepare_cached(
                "UPDATE sessions SET serial = serial + 1, updated_at = ?2
                 WHERE name = ?1 RETURNING serial",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![session, now_rfc3339()])
            .map_err(|e| self.err(e))?;
        let Some(row) = rows.next().map_err(|e| self.err(e))? else {
            return Err(StateError::NoSuchSession(session.to_string()));
        };
        let serial = checked(
            &location,
            row,
            0,
            "sessions.serial",
            &format!("session `{session}`"),
        )?;
        codec::serial_from_db(&location, session, serial)
    }
}

impl Drop for SqliteStore {
    /// Sync what the last batches left unsynced: closing the connection
    /// does not (it keeps the log, see `open::keep_wal_on_close`). Also on a
    /// runtime thread: it is one fsync of a file, no runtime is involved,
    /// and lease and session-file writes made after the walk's own sync
    /// rely on it.
    fn drop(&mut self) {
        let _ = StateStore::sync(self);
    }
}

impl StateStore for SqliteStore {
    fn location(&self) -> String {
        location_of(&self.path)
    }

    fn list_sessions(&self) -> StateResult<Vec<SessionInfo>> {
        let location = self.location();
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("{SESSION_SELECT} ORDER BY s.name"))
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            out.push(session_from_row(&location, row)?);
        }
        Ok(out)
    }

    fn get_session(&self, name: &str) -> StateResult<Option<SessionInfo>> {
        let location = self.location();
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("{SESSION_SELECT} WHERE s.name = ?1"))
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([name]).map_err(|e| self.err(e))?;
        match rows.next().map_err(|e| self.err(e))? {
            Some(row) => session_from_row(&location, row).map(Some),
            None => Ok(None),
        }
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
        let mut conn = self.conn();
        self.committing(&mut conn, true, |conn| {
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
        })
    }

    fn delete_session(&self, name: &str) -> StateResult<()> {
        let mut conn = self.conn();
        self.committing(&mut conn, true, |conn| {
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
        })
    }

    fn load(&self, session: &str) -> StateResult<Snapshot> {
        let location = self.location();
        let mut conn = self.conn();
        // One read transaction: the three reads see the same moment.
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let which = format!("session `{session}`");
        let (lineage, serial) = {
            let mut stmt = tx
                .prepare_cached("SELECT lineage, serial FROM sessions WHERE name = ?1")
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([session]).map_err(|e| self.err(e))?;
            let Some(row) = rows.next().map_err(|e| self.err(e))? else {
                return Err(StateError::NoSuchSession(session.to_string()));
            };
            let lineage: String = checked(&location, row, 0, "sessions.lineage", &which)?;
            let serial: i64 = checked(&location, row, 1, "sessions.serial", &which)?;
            (lineage, codec::serial_from_db(&location, session, serial)?)
        };

        let mut instances = BTreeMap::new();
        {
            let mut stmt = tx
                .prepare_cached("SELECT address, record FROM instances WHERE session = ?1")
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([session]).map_err(|e| self.err(e))?;
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                let address: String = checked(
                    &location,
                    row,
                    0,
                    "instances.address",
                    &format!("an instance of {which}"),
                )?;
                let text: String = checked(
                    &location,
                    row,
                    1,
                    "instances.record",
                    &format!("instance `{address}` of {which}"),
                )?;
                let record = codec::decode_instance(&location, session, &address, &text)?;
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
                let name: String = checked(
                    &location,
                    row,
                    0,
                    "outputs.name",
                    &format!("an output of {which}"),
                )?;
                let what = format!("output `{name}` of {which}");
                let text: String = checked(&location, row, 1, "outputs.value", &what)?;
                let sensitive: bool = checked(&location, row, 2, "outputs.sensitive", &what)?;
                let output = codec::decode_output(&location, session, &name, &text, sensitive)?;
                outputs.insert(name, output);
            }
        }
        tx.commit().map_err(|e| self.err(e))?;

        Ok(Snapshot {
            lineage,
            serial,
            instances,
            outputs,
        })
    }

    fn write_batch(&self, session: &str, writes: &[StateWrite]) -> StateResult<u64> {
        let batch = codec::encode_batch(&self.location(), writes)?;
        let synced = self.clock().due();
        let mut conn = self.conn();
        self.committing(&mut conn, synced, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            let serial = self.bump(&tx, session)?;
            let apply = || -> rusqlite::Result<()> {
                let mut remove =
                    tx.prepare_cached("DELETE FROM instances WHERE session = ?1 AND address = ?2")?;
                for address in &batch.removes {
                    remove.execute(params![session, address])?;
                }
                for row in &batch.puts {
                    insert_instance(&tx, session, row)?;
                }
                if let Some(outputs) = &batch.outputs {
                    replace_outputs(&tx, session, outputs)?;
                }
                Ok(())
            };
            apply().map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))?;
            Ok(serial)
        })
    }

    fn sync(&self) -> StateResult<()> {
        if !self.clock().unsynced() {
            return Ok(());
        }
        // The fsync a `synchronous=FULL` commit makes: of the log, here
        // through a descriptor of tg's own (an fsync covers the file,
        // whichever descriptor wrote it). No checkpoint: the log stays for
        // the next process (see `open::keep_wal_on_close`). SQLite names the
        // log after the file it opened (symbolic links resolved).
        // Under the connection: no commit comes between the fsync and
        // the clock (it would be taken for synced).
        let conn = self.conn();
        let wal = open::wal_path(
            conn.path()
                .filter(|p| !p.is_empty())
                .map_or(self.path.as_path(), Path::new),
        );
        match std::fs::File::open(&wal).and_then(|f| f.sync_all()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io_err(
                    &self.location(),
                    &format!("cannot sync `{}`", wal.display()),
                    e,
                ))
            }
        }
        self.clock().committed(true);
        drop(conn);
        Ok(())
    }

    /// The session is created when missing. An empty `snapshot.lineage`
    /// keeps the session's lineage (or makes a fresh one). The new serial is
    /// one more than both the session's and the snapshot's, so a saved plan
    /// made against either is seen as stale. Leaves the file whole on its
    /// own (the write-ahead log copied into it).
    fn import(&self, session: &str, snapshot: &Snapshot) -> StateResult<u64> {
        let location = self.location();
        let instances = snapshot
            .instances
            .values()
            .map(|r| codec::encode_instance(&location, r))
            .collect::<StateResult<Vec<_>>>()?;
        let outputs = codec::encode_outputs(&location, &snapshot.outputs)?;
        let incoming = codec::serial_to_db(&location, snapshot.serial)?;

        let mut conn = self.conn();
        let serial = self.committing(&mut conn, true, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.err(e))?;
            let which = format!("session `{session}`");
            let current: Option<(String, i64)> = {
                let mut stmt = tx
                    .prepare_cached("SELECT lineage, serial FROM sessions WHERE name = ?1")
                    .map_err(|e| self.err(e))?;
                let mut rows = stmt.query([session]).map_err(|e| self.err(e))?;
                match rows.next().map_err(|e| self.err(e))? {
                    Some(row) => Some((
                        checked(&location, row, 0, "sessions.lineage", &which)?,
                        checked(&location, row, 1, "sessions.serial", &which)?,
                    )),
                    None => None,
                }
            };
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
            for row in &instances {
                insert_instance(&tx, session, row).map_err(|e| self.err(e))?;
            }
            replace_outputs(&tx, session, &outputs).map_err(|e| self.err(e))?;
            tx.commit().map_err(|e| self.err(e))?;
            codec::serial_from_db(&location, session, serial)
        })?;
        // The log copied into the file: a state made by `tg state migrate
        // -to FILE` is whole in FILE alone. Passive: it waits for no reader
        // and blocks no writer (a reader in another process may hold part
        // of the copy back; the log still has it).
        if self.wal {
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
        Ok(serial)
    }

    /// A holder on this host whose process is gone is stale and taken over.
    /// A holder on another host is never judged: only `force_unlock` (or the
    /// holder) removes it.
    fn lock(&self, request: LockInfo, timeout: Duration) -> StateResult<Box<dyn SessionLock>> {
        self.take_lock(request, timeout)
    }

    fn lock_holder(&self, session: &str) -> StateResult<Option<LockInfo>> {
        self.holder(session)
    }

    fn leases(&self) -> StateResult<Vec<super::Lease>> {
        self.sql_leases()
    }
    fn session_files(&self, session: &str) -> StateResult<Vec<super::StoredFile>> {
        self.sql_session_files(session)
    }
    fn read_session_file(
        &self,
        session: &str,
        name: &str,
    ) -> StateResult<Option<(super::StoredFile, Vec<u8>)>> {
        self.sql_read_session_file(session, name)
    }
    fn write_session_file(
        &self,
        session: &str,
        name: &str,
        content: &[u8],
        expect: super::Expect,
    ) -> StateResult<super::StoredFile> {
        self.sql_write_session_file(session, name, content, expect)
    }
    fn remove_session_files(&self, session: &str, name: Option<&str>) -> StateResult<()> {
        self.sql_remove_session_files(session, name)
    }
    fn sessions_with_file(&self, name: &str) -> StateResult<Vec<String>> {
        self.sql_sessions_with_file(name)
    }
    fn take_leases(&self, name: &str, lineage: &str, hosts: &[String]) -> StateResult<Vec<String>> {
        self.sql_take_leases(name, lineage, hosts)
    }
    fn release_leases(&self, lineage: &str, hosts: &[String]) -> StateResult<()> {
        self.sql_release_leases(lineage, hosts)
    }
    fn quarantine_host(&self, host: &str, reason: &str) -> StateResult<()> {
        self.sql_quarantine_host(host, reason)
    }
    fn free_host(&self, host: &str) -> StateResult<Option<super::Lease>> {
        self.sql_free_host(host)
    }
    fn force_unlock(&self, session: &str, id: &str) -> StateResult<()> {
        self.remove_lock(session, id)
    }
}

const SESSION_SELECT: &str = "SELECT s.name, s.lineage, s.serial, s.created_at, s.updated_at,
        (SELECT COUNT(*) FROM instances i WHERE i.session = s.name)
    FROM sessions s";

fn session_from_row(location: &str, r: &rusqlite::Row<'_>) -> StateResult<SessionInfo> {
    let name: String = checked(location, r, 0, "sessions.name", "a session")?;
    let which = format!("session `{name}`");
    let serial = checked(location, r, 2, "sessions.serial", &which)?;
    let count = checked(location, r, 5, "the instance count", &which)?;
    Ok(SessionInfo {
        lineage: checked(location, r, 1, "sessions.lineage", &which)?,
        serial: codec::serial_from_db(location, &name, serial)?,
        created_at: checked(location, r, 3, "sessions.created_at", &which)?,
        updated_at: checked(location, r, 4, "sessions.updated_at", &which)?,
        instances: codec::count_from_db(
            location,
            &format!("the instance count of {which}"),
            count,
        )?,
        name,
    })
}

/// Column `i` of `row` as `T`; a value of another type (a hand-edited row
/// or schema) is damage naming `column` and `which` row.
fn checked<T: FromSql>(
    location: &str,
    row: &rusqlite::Row<'_>,
    i: usize,
    column: &str,
    which: &str,
) -> StateResult<T> {
    row.get(i).map_err(|e| match e {
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnIndex(..)
        | rusqlite::Error::Utf8Error(..) => codec::bad_column(location, column, which, e),
        e => db_err(location, e),
    })
}

fn insert_instance(tx: &Transaction<'_>, session: &str, row: &InstanceRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO instances (session, address, platform, status, record)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (session, address) DO UPDATE SET
           platform = excluded.platform, status = excluded.status, record = excluded.record",
    )?
    .execute(params![
        session,
        row.address,
        row.platform,
        row.status,
        row.record
    ])
    .map(drop)
}

fn replace_outputs(
    tx: &Transaction<'_>,
    session: &str,
    outputs: &[OutputRow],
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM outputs WHERE session = ?1")?
        .execute([session])?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO outputs (session, name, value, sensitive) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for o in outputs {
        stmt.execute(params![session, o.name, o.value, o.sensitive])?;
    }
    Ok(())
}

fn location_of(path: &Path) -> String {
    format!("sqlite {}", path.display())
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::addrs::{InstanceAddr, InstanceKey, ResourceKind};
    use crate::platform::{NetworkSpec, Spec};
    use crate::state::{InstanceRecord, InstanceStatus};
    use std::time::Instant;

    pub(crate) fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join(".tg/state.db")).unwrap();
        (dir, store)
    }

    pub(crate) fn record(i: u64) -> InstanceRecord {
        let address = InstanceAddr::new(ResourceKind::Network, "lab", InstanceKey::Int(i));
        InstanceRecord {
            sensitive: Vec::new(),
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
                hosts: Vec::new(),
            }),
            private: serde_json::json!({ "bridge": format!("tgbr{i}"), "n": i }),
            dependencies: vec![],
            attributes: serde_json::json!({ "name": address.host_name() }),
            address,
        }
    }

    pub(crate) fn lock_request(session: &str) -> LockInfo {
        LockInfo::for_this_process(session, "apply")
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
    fn a_batch_is_one_transaction_and_one_serial() {
        let (_dir, store) = store();
        store.create_session("s").unwrap();
        let writes: Vec<_> = (0..50).map(|i| StateWrite::Put(record(i))).collect();
        assert_eq!(store.write_batch("s", &writes).unwrap(), 1);
        // A batch that fails half way (the second write's session row is
        // gone by then: a bad address) changes nothing.
        let mut bad = record(99);
        bad.address = InstanceAddr::new(
            ResourceKind::Network,
            "lab",
            InstanceKey::Str("a\"b".into()),
        );
        let err = store
            .write_batch(
                "s",
                &[StateWrite::Remove(record(0).address), StateWrite::Put(bad)],
            )
            .unwrap_err();
        assert!(err.to_string().contains("nothing was written"), "{err}");
        let snap = store.load("s").unwrap();
        assert_eq!((snap.serial, snap.instances.len()), (1, 50));
    }

    #[test]
    fn batches_close_together_are_synced_once_per_interval() {
        let (_dir, store) = store();
        store.create_session("s").unwrap();
        assert!(!store.clock().unsynced(), "session changes are synced");
        // The first batch after a quiet interval is synced, the next one
        // right after it is not, until a sync.
        std::thread::sleep(crate::state::SYNC_INTERVAL);
        store.put_instance("s", &record(0)).unwrap();
        assert!(!store.clock().unsynced());
        store.put_instance("s", &record(1)).unwrap();
        assert!(store.clock().unsynced());
        let synchronous: i64 = store
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 1, "NORMAL between synced commits");
        store.sync().unwrap();
        assert!(!store.clock().unsynced());
        std::thread::sleep(crate::state::SYNC_INTERVAL);
        store.put_instance("s", &record(2)).unwrap();
        assert!(!store.clock().unsynced());
        assert_eq!(store.load("s").unwrap().instances.len(), 3);
    }

    /// A store closes without a checkpoint: its log stays, the next store
    /// reads it, and a sync fsyncs the log without copying it into the
    /// file (the file's bytes do not change).
    #[test]
    fn the_log_outlives_the_store_and_a_sync_leaves_it_in_place() {
        let (dir, store) = store();
        let path = store.path().to_path_buf();
        store.create_session("s").unwrap();
        let file_before = std::fs::read(&path).unwrap();
        std::thread::sleep(crate::state::SYNC_INTERVAL);
        store.put_instance("s", &record(0)).unwrap();
        store.put_instance("s", &record(1)).unwrap();
        assert!(store.clock().unsynced());
        store.sync().unwrap();
        assert!(!store.clock().unsynced());
        assert_eq!(std::fs::read(&path).unwrap(), file_before, "no checkpoint");
        drop(store);
        let wal = open::wal_path(&path);
        assert!(
            std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
            "the log is kept"
        );
        assert_eq!(std::fs::read(&path).unwrap(), file_before, "none at close");
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.load("s").unwrap().instances.len(), 2);
        let pages: i64 = again
            .conn()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pages, open::WAL_AUTOCHECKPOINT);
        drop(again);
        drop(dir);
    }

    /// A state file moved away without its log: no new state is made next
    /// to the log (it would be read through it), and the error names both.
    #[test]
    fn a_log_without_its_file_is_refused_and_nothing_is_made() {
        let (dir, store) = store();
        let path = store.path().to_path_buf();
        store.create_session("s").unwrap();
        drop(store);
        let moved = dir.path().join("moved.db");
        std::fs::rename(&path, &moved).unwrap();
        let err = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("write-ahead log"), "{err}");
        assert!(
            err.contains(&open::wal_path(&path).display().to_string()),
            "{err}"
        );
        assert!(!path.exists(), "a new state was made");
        // Put back with its log, it opens with what it had.
        std::fs::rename(&moved, &path).unwrap();
        let again = SqliteStore::open(&path).unwrap();
        assert!(again.get_session("s").unwrap().is_some());
    }

    #[test]
    fn the_store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SqliteStore>();
    }
}
