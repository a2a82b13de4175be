//! Session locks in a SQLite store: one row of the `locks` table per held
//! lock.
//!
//! Owns taking a lock (waiting for a live holder, taking over a stale one),
//! reading who holds it, `force_unlock`, and letting go ([`SqliteLock`]).
//! A holder is stale only when it is provably gone: on this host (same host
//! name) with a pid that is not running. A holder on another host is never
//! judged. It does not decide when to lock: the engine does.
//!
//! Lock rows are committed unsynced and are not counted for the store's
//! sync: after a power loss no process holds a lock, and a row that
//! survives it names a process that is gone (taken over as stale, or
//! `force-unlock`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};

use super::{checked, SqliteStore};
use crate::state::codec::pid_from_db;
use crate::state::{
    hostname, in_async_context, pid_alive, LockInfo, SessionLock, StateError, StateResult,
    StateStore,
};

/// How often a waiting lock looks at the lock again.
const LOCK_POLL: Duration = Duration::from_millis(150);

impl SqliteStore {
    /// Take `request.session`'s lock, waiting up to `timeout`.
    pub(super) fn take_lock(
        &self,
        request: LockInfo,
        timeout: Duration,
    ) -> StateResult<Box<dyn SessionLock>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let Some(holder) = self.try_lock(&request)? else {
                return Ok(Box::new(SqliteLock {
                    conn: Arc::clone(&self.conn),
                    location: self.location(),
                    info: request,
                    released: false,
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

    /// One attempt at taking a lock: `None` when taken, else the live holder.
    pub(super) fn try_lock(&self, request: &LockInfo) -> StateResult<Option<LockInfo>> {
        let location = self.location();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        if let Some(holder) = read_lock(&tx, &location, &request.session)? {
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

    pub(super) fn holder(&self, session: &str) -> StateResult<Option<LockInfo>> {
        read_lock(&self.conn(), &self.location(), session)
    }

    pub(super) fn remove_lock(&self, session: &str, id: &str) -> StateResult<()> {
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

/// A held session lock in a SQLite store. Letting go deletes its row, only
/// while the row is still this lock's (a lock taken over after
/// `force-unlock` stays its new holder's).
struct SqliteLock {
    conn: Arc<Mutex<Connection>>,
    location: String,
    info: LockInfo,
    released: bool,
}

impl SqliteLock {
    fn delete_row(conn: &Mutex<Connection>, info: &LockInfo) -> rusqlite::Result<usize> {
        conn.lock().unwrap_or_else(PoisonError::into_inner).execute(
            "DELETE FROM locks WHERE session = ?1 AND id = ?2",
            params![info.session, info.id],
        )
    }
}

impl SessionLock for SqliteLock {
    fn info(&self) -> &LockInfo {
        &self.info
    }

    fn release(mut self: Box<Self>) -> StateResult<()> {
        self.released = true;
        Self::delete_row(&self.conn, &self.info)
            .map(drop)
            .map_err(|e| super::db_err(&self.location, e))
    }
}

impl Drop for SqliteLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Nothing to report to: a row left behind names this process, and
        // the next `lock` on this host sees it as stale once the process is
        // gone. On a runtime thread the write (an fsync, or a wait for a
        // busy file) happens on a thread of its own.
        if in_async_context() {
            let (conn, info) = (Arc::clone(&self.conn), self.info.clone());
            let _ = std::thread::Builder::new()
                .name("tg-sqlite-unlock".into())
                .spawn(move || {
                    let _ = Self::delete_row(&conn, &info);
                });
        } else {
            let _ = Self::delete_row(&self.conn, &self.info);
        }
    }
}

fn read_lock(conn: &Connection, location: &str, session: &str) -> StateResult<Option<LockInfo>> {
    let mut stmt = conn
        .prepare_cached(
            r#"SELECT session, id, operation, "user", host, pid, created_at
               FROM locks WHERE session = ?1"#,
        )
        .map_err(|e| super::db_err(location, e))?;
    let mut rows = stmt
        .query([session])
        .map_err(|e| super::db_err(location, e))?;
    let Some(r) = rows.next().map_err(|e| super::db_err(location, e))? else {
        return Ok(None);
    };
    let row = format!("the lock row of session `{session}`");
    let pid: i64 = checked(location, r, 5, "locks.pid", &row)?;
    Ok(Some(LockInfo {
        session: checked(location, r, 0, "locks.session", &row)?,
        id: checked(location, r, 1, "locks.id", &row)?,
        operation: checked(location, r, 2, "locks.operation", &row)?,
        user: checked(location, r, 3, "locks.user", &row)?,
        host: checked(location, r, 4, "locks.host", &row)?,
        pid: pid_from_db(pid),
        created_at: checked(location, r, 6, "locks.created_at", &row)?,
    }))
}

/// Is this lock's holder known to be gone? Only provable on this host.
fn is_stale(holder: &LockInfo) -> bool {
    holder.host == hostname() && !pid_alive(holder.pid)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{lock_request, store};
    use super::*;
    use crate::state::StateStore;

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
        taken.release().unwrap();

        // The same dead pid on another host cannot be judged: it stays.
        let mut remote = stale.clone();
        remote.host = format!("{}-elsewhere", hostname());
        store.try_lock(&remote).unwrap();
        assert!(matches!(
            store.lock(lock_request("s"), Duration::ZERO),
            Err(StateError::Locked { holder, .. }) if holder == remote
        ));
    }
}
