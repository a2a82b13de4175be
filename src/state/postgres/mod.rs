//! The PostgreSQL state store, shared by teams and CI agents.
//!
//! This module owns the store itself: sessions, loading a session, batched
//! writes and `import`, each one transaction on the store's connection, with
//! records going through [`crate::state::codec`] (a row that does not decode
//! is damage, never a panic). It keeps no cache: every call reads or writes
//! the database. Semantics match [`super::sqlite`]. The parts around it:
//! [`target`] parses the URL, [`tls`] makes the TLS connector, [`conn`]
//! owns connections and their errors, [`schema`] the migrations in
//! `state/postgres/`, and [`locks`] the session locks. It does not decide
//! what to write: the engine does.
//!
//! - Writes: one transaction each, which also bumps the session's serial.
//!   A connection found dead before COMMIT is replaced and the call runs
//!   once more (nothing was applied); one lost during COMMIT is reported as
//!   [`StateError::ConnectionLost`] (applied whole or not at all). A server
//!   restart or `force_unlock` ends a session lock this store held: later
//!   writes to that session fail instead of going on unlocked.
//! - Threads: the `postgres` client runs a runtime of its own, which cannot
//!   start on a tokio thread; every call runs off such threads
//!   ([`conn::off_runtime`]), and dropping the store or a lock inside async
//!   code is safe.

// `StateError` is the shared error type of every store (it carries a lock
// holder); boxing it is not this module's call.
#![allow(clippy::result_large_err)]

mod conn;
mod files;
mod leases;
mod locks;
mod schema;
pub mod target;
mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::{Config, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use self::conn::{
    column, describe, is_connection_error, is_stale_statement, off_runtime, prepared, relock, Conn,
    Fail,
};
pub use self::locks::session_lock_key;
use self::locks::{key_parts, Held};
pub use self::target::{parse_target, Target, TlsMode};
use super::codec::{self, InstanceRow, OutputRow};
use super::{
    in_async_context, now_rfc3339, LockInfo, SessionInfo, SessionLock, Snapshot, StateError,
    StateResult, StateStore, StateWrite, SyncClock,
};

/// State in a PostgreSQL database.
pub struct PostgresStore {
    config: Config,
    tls: MakeRustlsConnect,
    location: String,
    conn: Mutex<Option<Conn>>,
    held: Held,
    clock: Mutex<SyncClock>,
}

const SQL_BUMP: &str = "UPDATE sessions SET serial = serial + 1, updated_at = $2 WHERE name = $1 \
     RETURNING serial, ($3::int4 = 0 OR EXISTS (SELECT 1 FROM pg_locks \
       WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid = $4 AND objid = $5 AND objsubid = 1 AND granted AND pid = $3))";
/// Every instance of a batch in one statement (one round trip): the
/// addresses, platforms, statuses and records as parallel arrays.
const SQL_PUT_INSTANCES: &str = "INSERT INTO instances (session, address, platform, status, record) \
     SELECT $1, a, p, s, r::json FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS t(a, p, s, r) \
     ON CONFLICT (session, address) DO UPDATE SET platform = excluded.platform, \
       status = excluded.status, record = excluded.record";
const SQL_REMOVE_INSTANCES: &str =
    "DELETE FROM instances WHERE session = $1 AND address = ANY($2::text[])";
const SQL_DELETE_OUTPUTS: &str = "DELETE FROM outputs WHERE session = $1";
const SQL_PUT_OUTPUTS: &str = "INSERT INTO outputs (session, name, value, sensitive) \
     SELECT $1, n, v::json, s FROM unnest($2::text[], $3::text[], $4::bool[]) AS t(n, v, s)";
const SQL_SESSION: &str = "SELECT name, lineage, serial, created_at, updated_at, \
     (SELECT count(*) FROM instances i WHERE i.session = s.name) \
     FROM sessions s WHERE name = $1";
const SQL_SESSIONS: &str = "SELECT name, lineage, serial, created_at, updated_at, \
     (SELECT count(*) FROM instances i WHERE i.session = s.name) \
     FROM sessions s ORDER BY name";

fn session_info(location: &str, row: &postgres::Row) -> StateResult<SessionInfo> {
    let name: String = column(location, row, 0, "sessions.name", "a session")?;
    let which = format!("session `{name}`");
    let serial: i64 = column(location, row, 2, "sessions.serial", &which)?;
    let count: i64 = column(location, row, 5, "the instance count", &which)?;
    Ok(SessionInfo {
        lineage: column(location, row, 1, "sessions.lineage", &which)?,
        serial: codec::serial_from_db(location, &name, serial)?,
        created_at: column(location, row, 3, "sessions.created_at", &which)?,
        updated_at: column(location, row, 4, "sessions.updated_at", &which)?,
        instances: codec::count_from_db(
            location,
            &format!("the instance count of {which}"),
            count,
        )?,
        name,
    })
}

/// Write `rows` in `tx`, one statement for all of them.
fn put_instances(
    statements: &mut HashMap<&'static str, Statement>,
    tx: &mut postgres::Transaction<'_>,
    session: &str,
    rows: &[InstanceRow],
) -> Result<(), postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&InstanceRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let st = prepared(statements, tx, SQL_PUT_INSTANCES)?;
    tx.execute(
        &st,
        &[
            &session,
            &column(|r| &r.address),
            &column(|r| &r.platform),
            &column(|r| r.status),
            &column(|r| &r.record),
        ],
    )
    .map(drop)
}

/// Replace every output of `session` with `rows` in `tx`.
fn replace_outputs(
    statements: &mut HashMap<&'static str, Statement>,
    tx: &mut postgres::Transaction<'_>,
    session: &str,
    rows: &[OutputRow],
) -> Result<(), postgres::Error> {
    let st = prepared(statements, tx, SQL_DELETE_OUTPUTS)?;
    tx.execute(&st, &[&session])?;
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = rows.iter().map(|o| o.name.as_str()).collect();
    let values: Vec<&str> = rows.iter().map(|o| o.value.as_str()).collect();
    let sensitive: Vec<bool> = rows.iter().map(|o| o.sensitive).collect();
    let st = prepared(statements, tx, SQL_PUT_OUTPUTS)?;
    tx.execute(&st, &[&session, &names, &values, &sensitive])
        .map(drop)
}

impl PostgresStore {
    /// Connect to the database at `url` (see [`parse_target`]) and bring
    /// its schema up to date.
    pub fn connect(url: &str) -> StateResult<PostgresStore> {
        Self::connect_with_env(url, &|k| std::env::var(k).ok())
    }

    /// [`PostgresStore::connect`] with the environment given explicitly.
    pub fn connect_with_env(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> StateResult<PostgresStore> {
        let target = parse_target(url, env)?;
        let store = PostgresStore {
            config: target.config,
            tls: tls::tls_connector()?,
            location: target.location,
            conn: Mutex::new(None),
            held: Arc::new(Mutex::new(HashMap::new())),
            clock: Mutex::new(SyncClock::new()),
        };
        off_runtime(|| {
            let mut conn = store.open().map_err(|e| match e {
                StateError::ConnectionLost { location, message } => StateError::Backend {
                    location,
                    message: format!(
                        "{message}; check the state URL and that the server is running"
                    ),
                },
                other => other,
            })?;
            schema::migrate(&store.location, &mut conn.client).map_err(|f| store.fail(f, false))?;
            *relock(&store.conn) = Some(conn);
            Ok(())
        })?;
        Ok(store)
    }

    /// A new connection. Blocking: only off runtime threads.
    fn open(&self) -> StateResult<Conn> {
        match self.config.connect(self.tls.clone()) {
            Ok(client) => Ok(Conn::new(client)),
            Err(e) if is_connection_error(&e) => Err(StateError::ConnectionLost {
                location: self.location.clone(),
                message: format!("cannot connect: {}", describe(&e)),
            }),
            Err(e) => Err(StateError::Backend {
                location: self.location.clone(),
                message: format!("cannot connect: {}", describe(&e)),
            }),
        }
    }

    /// Turn a failure into a state error.
    fn fail(&self, f: Fail, write: bool) -> StateError {
        match f {
            Fail::State(e) => e,
            Fail::Pg(e) if is_connection_error(&e) => StateError::ConnectionLost {
                location: self.location.clone(),
                message: if write {
                    format!(
                        "{}; nothing was written, tg reconnects on the next call",
                        describe(&e)
                    )
                } else {
                    format!("{}; tg reconnects on the next call", describe(&e))
                },
            },
            Fail::Commit(e) if is_connection_error(&e) => StateError::ConnectionLost {
                location: self.location.clone(),
                message: format!(
                    "{} while committing; the write may or may not have been recorded (it was not half-applied); check with `tg show` before going on",
                    describe(&e)
                ),
            },
            Fail::Pg(e) | Fail::Commit(e) => StateError::Backend {
                location: self.location.clone(),
                message: describe(&e),
            },
        }
    }

    /// Run `op` on the store's connection, connecting first when there is
    /// none. A connection that turns out dead before anything was committed
    /// is replaced and `op` runs once more.
    fn run<T: Send>(
        &self,
        write: bool,
        mut op: impl FnMut(&mut Conn) -> Result<T, Fail> + Send,
    ) -> StateResult<T> {
        off_runtime(|| {
            let mut guard = relock(&self.conn);
            let mut attempt = 0;
            loop {
                attempt += 1;
                let conn = match guard.as_mut() {
                    Some(c) if !c.client.is_closed() => c,
                    _ => {
                        *guard = None;
                        guard.insert(self.open()?)
                    }
                };
                match op(conn) {
                    Ok(v) => return Ok(v),
                    Err(Fail::Pg(e)) if is_connection_error(&e) && attempt < 2 => {
                        *guard = None;
                    }
                    // The schema changed under a prepared statement (someone
                    // altered a table): prepare again, once. Nothing was
                    // committed.
                    Err(Fail::Pg(e)) if is_stale_statement(&e) && attempt < 2 => {
                        if let Some(c) = guard.as_mut() {
                            c.statements.clear();
                        }
                    }
                    Err(f) => {
                        let lost = match &f {
                            Fail::Pg(e) | Fail::Commit(e) => is_connection_error(e),
                            Fail::State(_) => false,
                        };
                        if lost {
                            *guard = None;
                        }
                        return Err(self.fail(f, write));
                    }
                }
            }
        })
    }

    /// In `tx`, bump the session's serial (refusing when this store held
    /// its lock and lost it); returns the new serial.
    fn bump(
        &self,
        statements: &mut HashMap<&'static str, Statement>,
        tx: &mut postgres::Transaction<'_>,
        session: &str,
    ) -> Result<u64, Fail> {
        let pid = relock(&self.held).get(session).copied().unwrap_or(0);
        let (classid, objid) = key_parts(session_lock_key(session));
        let st = prepared(statements, tx, SQL_BUMP)?;
        let row = tx.query_opt(&st, &[&session, &now_rfc3339(), &pid, &classid, &objid])?;
        let Some(row) = row else {
            return Err(StateError::NoSuchSession(session.to_string()).into());
        };
        let held: bool = row.try_get(1)?;
        if !held {
            return Err(StateError::ConnectionLost {
                location: self.location.clone(),
                message: format!(
                    "the lock on session `{session}` was lost with its connection (a server restart or `tg force-unlock`); nothing was written, run the command again"
                ),
            }
            .into());
        }
        let which = format!("session `{session}`");
        let serial: i64 = column(&self.location, &row, 0, "sessions.serial", &which)?;
        Ok(codec::serial_from_db(&self.location, session, serial)?)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing the client runs its own runtime: not on a tokio thread.
        let conn = relock(&self.conn).take();
        if let Some(conn) = conn {
            if in_async_context() {
                let _ = std::thread::Builder::new()
                    .name("tg-pg-close".into())
                    .spawn(move || drop(conn));
            } else {
                drop(conn);
            }
        }
    }
}

impl StateStore for PostgresStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_sessions(&self) -> StateResult<Vec<SessionInfo>> {
        self.run(false, |c| {
            let st = prepared(&mut c.statements, &mut c.client, SQL_SESSIONS)?;
            let rows = c.client.query(&st, &[])?;
            Ok(rows
                .iter()
                .map(|r| session_info(&self.location, r))
                .collect::<StateResult<Vec<_>>>()?)
        })
    }

    fn get_session(&self, name: &str) -> StateResult<Option<SessionInfo>> {
        self.run(false, |c| {
            let st = prepared(&mut c.statements, &mut c.client, SQL_SESSION)?;
            match c.client.query_opt(&st, &[&name])? {
                Some(r) => Ok(Some(session_info(&self.location, &r)?)),
                None => Ok(None),
            }
        })
    }

    fn create_session(&self, name: &str) -> StateResult<SessionInfo> {
        self.run(true, |c| {
            let now = now_rfc3339();
            let lineage = uuid::Uuid::new_v4().to_string();
            let n = c.client.execute(
                "INSERT INTO sessions (name, lineage, serial, created_at, updated_at) \
                 VALUES ($1, $2, 0, $3, $3) ON CONFLICT (name) DO NOTHING",
                &[&name, &lineage, &now],
            )?;
            if n == 0 {
                return Err(StateError::SessionExists(name.to_string()).into());
            }
            Ok(SessionInfo {
                name: name.to_string(),
                lineage,
                serial: 0,
                created_at: now.clone(),
                updated_at: now,
                instances: 0,
            })
        })
    }

    fn delete_session(&self, name: &str) -> StateResult<()> {
        self.run(true, |c| {
            let n = c
                .client
                .execute("DELETE FROM sessions WHERE name = $1", &[&name])?;
            if n == 0 {
                return Err(StateError::NoSuchSession(name.to_string()).into());
            }
            Ok(())
        })
    }

    fn load(&self, session: &str) -> StateResult<Snapshot> {
        let loc = self.location.as_str();
        let which = format!("session `{session}`");
        self.run(false, |c| {
            let mut tx = c
                .client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let Some(head) = tx.query_opt(
                "SELECT lineage, serial FROM sessions WHERE name = $1",
                &[&session],
            )?
            else {
                return Err(StateError::NoSuchSession(session.to_string()).into());
            };
            let serial: i64 = column(loc, &head, 1, "sessions.serial", &which)?;
            let mut snapshot = Snapshot {
                lineage: column(loc, &head, 0, "sessions.lineage", &which)?,
                serial: codec::serial_from_db(loc, session, serial)?,
                ..Snapshot::default()
            };
            for row in tx.query(
                "SELECT address, record::text FROM instances WHERE session = $1",
                &[&session],
            )? {
                let address: String = column(
                    loc,
                    &row,
                    0,
                    "instances.address",
                    &format!("an instance of {which}"),
                )?;
                let text: String = column(
                    loc,
                    &row,
                    1,
                    "instances.record",
                    &format!("instance `{address}` of {which}"),
                )?;
                let record = codec::decode_instance(loc, session, &address, &text)?;
                snapshot.instances.insert(record.address.clone(), record);
            }
            for row in tx.query(
                "SELECT name, value::text, sensitive FROM outputs WHERE session = $1",
                &[&session],
            )? {
                let name: String = column(
                    loc,
                    &row,
                    0,
                    "outputs.name",
                    &format!("an output of {which}"),
                )?;
                let what = format!("output `{name}` of {which}");
                let text: String = column(loc, &row, 1, "outputs.value", &what)?;
                let sensitive: bool = column(loc, &row, 2, "outputs.sensitive", &what)?;
                let output = codec::decode_output(loc, session, &name, &text, sensitive)?;
                snapshot.outputs.insert(name, output);
            }
            // Read only: a failed commit loses nothing, so it may be retried.
            tx.commit()?;
            Ok(snapshot)
        })
    }

    /// A fixed number of round trips whatever the batch's size: the
    /// serial, the removals, the puts and the outputs, one statement each.
    ///
    /// Committed asynchronously (`synchronous_commit = off`: the server
    /// has it, a server crash may lose it) unless a sync is due.
    fn write_batch(&self, session: &str, writes: &[StateWrite]) -> StateResult<u64> {
        let batch = codec::encode_batch(&self.location, writes)?;
        let synced = relock(&self.clock).due();
        let serial = self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            if !synced {
                tx.batch_execute("SET LOCAL synchronous_commit TO off")?;
            }
            let serial = self.bump(&mut c.statements, &mut tx, session)?;
            if !batch.removes.is_empty() {
                let st = prepared(&mut c.statements, &mut tx, SQL_REMOVE_INSTANCES)?;
                tx.execute(&st, &[&session, &batch.removes])?;
            }
            put_instances(&mut c.statements, &mut tx, session, &batch.puts)?;
            if let Some(outputs) = &batch.outputs {
                replace_outputs(&mut c.statements, &mut tx, session, outputs)?;
            }
            tx.commit().map_err(Fail::Commit)?;
            Ok(serial)
        })?;
        relock(&self.clock).committed(synced);
        Ok(serial)
    }

    /// A synchronous commit waits until the server's WAL is flushed up to
    /// it, which covers every asynchronous commit before it.
    fn sync(&self) -> StateResult<()> {
        if !relock(&self.clock).unsynced() {
            return Ok(());
        }
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            tx.batch_execute("SET LOCAL synchronous_commit TO on; SELECT txid_current()")?;
            tx.commit().map_err(Fail::Commit)?;
            Ok(())
        })?;
        relock(&self.clock).committed(true);
        Ok(())
    }

    fn import(&self, session: &str, snapshot: &Snapshot) -> StateResult<u64> {
        let outputs = codec::encode_outputs(&self.location, &snapshot.outputs)?;
        let instances = snapshot
            .instances
            .values()
            .map(|r| codec::encode_instance(&self.location, r))
            .collect::<StateResult<Vec<_>>>()?;
        let serial_floor = codec::serial_to_db(&self.location, snapshot.serial)?;
        // An empty lineage keeps the session's (or makes a fresh one).
        let lineage = Some(snapshot.lineage.as_str()).filter(|l| !l.is_empty());
        let fresh_lineage = uuid::Uuid::new_v4().to_string();
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            let now = now_rfc3339();
            // The serial moves past both the imported one and the current one.
            tx.execute(
                "INSERT INTO sessions (name, lineage, serial, created_at, updated_at) \
                 VALUES ($1, coalesce($2, $3), $4, $5, $5) \
                 ON CONFLICT (name) DO UPDATE SET \
                   lineage = coalesce($2, sessions.lineage), \
                   serial = GREATEST(sessions.serial, excluded.serial)",
                &[&session, &lineage, &fresh_lineage, &serial_floor, &now],
            )?;
            let serial = self.bump(&mut c.statements, &mut tx, session)?;
            tx.execute("DELETE FROM instances WHERE session = $1", &[&session])?;
            put_instances(&mut c.statements, &mut tx, session, &instances)?;
            replace_outputs(&mut c.statements, &mut tx, session, &outputs)?;
            tx.commit().map_err(Fail::Commit)?;
            Ok(serial)
        })
    }

    fn lock(&self, request: LockInfo, timeout: Duration) -> StateResult<Box<dyn SessionLock>> {
        off_runtime(|| self.take_lock(request, timeout))
    }

    fn lock_holder(&self, session: &str) -> StateResult<Option<LockInfo>> {
        self.run(false, |c| self.holder_on(&mut c.client, session))
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
        self.end_lock(session, id)
    }
}
