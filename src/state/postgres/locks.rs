//! Session locks in a PostgreSQL store.
//!
//! A session lock is a session-level advisory lock keyed by a hash of the
//! session name ([`session_lock_key`]), held by a connection of its own, so
//! a holder that dies (SIGKILL, a lost CI agent, a dropped connection)
//! releases it with its connection. The `locks` table only says who holds
//! it, and counts only while `pg_locks` shows the advisory lock held.
//!
//! Owns taking a lock, reading its holder, `force_unlock` (which ends the
//! holder's connection), and the held lock itself ([`PgSessionLock`]): its
//! connection lives on a thread of its own, so releasing or dropping the
//! lock never runs the blocking client on the caller's thread (dropping it
//! inside async code neither panics nor blocks). It does not decide when to
//! lock: the engine does.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::Client;
use sha2::{Digest, Sha256};

use super::conn::{column, describe, is_connection_error, relock, Fail};
use super::PostgresStore;
use crate::state::codec::pid_from_db;
use crate::state::{in_async_context, LockInfo, SessionLock, StateError, StateResult};

/// How often `lock` asks again while another holder has the session.
const LOCK_POLL: Duration = Duration::from_millis(200);

/// How long a sync drop waits for the lock's thread to let go, so the next
/// locker finds the lock free.
const DROP_WAIT: Duration = Duration::from_secs(10);

/// How long [`SessionLock::release`] waits for the lock's thread.
const RELEASE_WAIT: Duration = Duration::from_secs(30);

/// The backend pid that holds an advisory lock, by (classid, objid).
pub(super) const SQL_LOCK_PID: &str = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
     AND classid = $1 AND objid = $2 AND objsubid = 1 AND granted LIMIT 1";
const SQL_LOCK_ROW: &str =
    "SELECT id, operation, \"user\", host, pid, created_at FROM locks WHERE session = $1";

/// The advisory lock key of a session: a stable 64-bit hash of its name.
pub fn session_lock_key(session: &str) -> i64 {
    let digest = Sha256::digest(format!("tg/session-lock/{session}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The `pg_locks` (classid, objid) pair of a 64-bit advisory lock key.
pub(super) fn key_parts(key: i64) -> (u32, u32) {
    let k = key as u64;
    ((k >> 32) as u32, k as u32)
}

/// Session locks this store holds now: session → backend pid of the lock
/// connection. Writes to such a session check the lock is still held.
pub(super) type Held = Arc<Mutex<HashMap<String, i32>>>;

impl PostgresStore {
    pub(super) fn take_lock(
        &self,
        request: LockInfo,
        timeout: Duration,
    ) -> StateResult<Box<dyn SessionLock>> {
        let key = session_lock_key(&request.session);
        let mut conn = self.open()?;
        let client = &mut conn.client;
        let deadline = Instant::now() + timeout;
        let lock_err = |e: postgres::Error| self.fail(Fail::Pg(e), false);
        loop {
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .and_then(|r| r.try_get(0))
                .map_err(lock_err)?;
            if got {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                // The holder writes its row right after it gets the lock:
                // give it a moment before reporting an anonymous holder.
                let mut holder = None;
                for _ in 0..5 {
                    match self.holder_on(client, &request.session) {
                        Ok(Some(h)) if h.id != "unknown" => {
                            holder = Some(h);
                            break;
                        }
                        Ok(h) => holder = h,
                        Err(f) => return Err(self.fail(f, false)),
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                match holder {
                    Some(holder) => {
                        return Err(StateError::Locked {
                            session: request.session.clone(),
                            holder,
                        })
                    }
                    // Let go in the meantime: try once more.
                    None => continue,
                }
            }
            std::thread::sleep(LOCK_POLL.min(deadline - now));
        }
        let pid = i64::from(request.pid);
        let written = client
            .execute(
                "INSERT INTO locks (session, id, operation, \"user\", host, pid, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (session) DO UPDATE SET id = excluded.id, \
                   operation = excluded.operation, \"user\" = excluded.\"user\", \
                   host = excluded.host, pid = excluded.pid, created_at = excluded.created_at",
                &[
                    &request.session,
                    &request.id,
                    &request.operation,
                    &request.user,
                    &request.host,
                    &pid,
                    &request.created_at,
                ],
            )
            .and_then(|_| client.query_one("SELECT pg_backend_pid()", &[]))
            .and_then(|row| row.try_get::<_, i32>(0));
        // On failure, dropping the connection releases the advisory lock.
        let backend_pid = written.map_err(|e| self.fail(Fail::Pg(e), false))?;
        let keeper =
            Keeper::start(conn.client, key, request.clone()).map_err(|e| StateError::Backend {
                location: self.location.clone(),
                message: format!("cannot start the thread that holds the lock: {e}"),
            })?;
        relock(&self.held).insert(request.session.clone(), backend_pid);
        Ok(Box::new(PgSessionLock {
            keeper: Some(keeper),
            backend_pid,
            info: request,
            held: Arc::clone(&self.held),
        }))
    }

    /// Who holds `session`'s lock, read on `client`.
    pub(super) fn holder_on(
        &self,
        client: &mut Client,
        session: &str,
    ) -> Result<Option<LockInfo>, Fail> {
        let (classid, objid) = key_parts(session_lock_key(session));
        let Some(pid_row) = client.query_opt(SQL_LOCK_PID, &[&classid, &objid])? else {
            return Ok(None);
        };
        let backend_pid: i32 = pid_row.try_get(0)?;
        if let Some(row) = client.query_opt(SQL_LOCK_ROW, &[&session])? {
            let which = format!("the lock row of session `{session}`");
            let loc = self.location.as_str();
            let pid: i64 = column(loc, &row, 4, "locks.pid", &which)?;
            return Ok(Some(LockInfo {
                id: column(loc, &row, 0, "locks.id", &which)?,
                session: session.to_string(),
                operation: column(loc, &row, 1, "locks.operation", &which)?,
                user: column(loc, &row, 2, "locks.user", &which)?,
                host: column(loc, &row, 3, "locks.host", &which)?,
                pid: pid_from_db(pid),
                created_at: column(loc, &row, 5, "locks.created_at", &which)?,
            }));
        }
        // Held, but the holder has not written who it is (yet, or it is not
        // tg): say what the server knows.
        let who = client.query_opt(
            "SELECT usename::text, coalesce(host(client_addr), 'local') FROM pg_stat_activity WHERE pid = $1",
            &[&backend_pid],
        )?;
        let (user, host) = match who {
            Some(r) => (
                r.try_get::<_, Option<String>>(0)?
                    .unwrap_or_else(|| "unknown".into()),
                r.try_get::<_, String>(1)?,
            ),
            None => ("unknown".into(), "unknown".into()),
        };
        Ok(Some(LockInfo {
            id: "unknown".into(),
            session: session.to_string(),
            operation: "unknown".into(),
            user,
            host,
            pid: 0,
            created_at: "unknown".into(),
        }))
    }

    /// Remove lock `id` of `session`: end the connection that holds it
    /// and wait until the advisory lock is free.
    pub(super) fn end_lock(&self, session: &str, id: &str) -> StateResult<()> {
        let key = session_lock_key(session);
        let (classid, objid) = key_parts(key);
        let no_such = || StateError::NoSuchLock {
            session: session.to_string(),
            id: id.to_string(),
        };
        let which = format!("the lock row of session `{session}`");
        let pid = self.run(true, |c| {
            let row_id: Option<String> = match c
                .client
                .query_opt("SELECT id FROM locks WHERE session = $1", &[&session])?
            {
                Some(r) => Some(column(&self.location, &r, 0, "locks.id", &which)?),
                None => None,
            };
            if row_id.as_deref() != Some(id) {
                return Err(no_such().into());
            }
            let pid: Option<i32> = match c.client.query_opt(SQL_LOCK_PID, &[&classid, &objid])? {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            };
            let Some(pid) = pid else {
                // The holder is gone already: only its row is left.
                c.client.execute(
                    "DELETE FROM locks WHERE session = $1 AND id = $2",
                    &[&session, &id],
                )?;
                return Ok(None);
            };
            let ended: bool = c
                .client
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])?
                .try_get(0)?;
            if !ended {
                return Err(StateError::Backend {
                    location: self.location.clone(),
                    message: format!(
                        "could not end the connection (backend pid {pid}) holding the lock on session `{session}`; the PostgreSQL user needs the holder's role or `pg_signal_backend`"
                    ),
                }
                .into());
            }
            Ok(Some(pid))
        })?;
        let Some(pid) = pid else { return Ok(()) };
        // The backend exits asynchronously; wait until the lock is free.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let still = self.run(false, |c| {
                Ok(
                    match c.client.query_opt(SQL_LOCK_PID, &[&classid, &objid])? {
                        Some(r) => r.try_get::<_, i32>(0)? == pid,
                        None => false,
                    },
                )
            })?;
            if !still {
                break;
            }
            if Instant::now() >= deadline {
                return Err(StateError::Backend {
                    location: self.location.clone(),
                    message: format!(
                        "the connection (backend pid {pid}) holding the lock on session `{session}` was told to end but still holds it after 10s; try again"
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.run(true, |c| {
            c.client.execute(
                "DELETE FROM locks WHERE session = $1 AND id = $2",
                &[&session, &id],
            )?;
            Ok(())
        })
    }
}

/// The thread that owns a held lock's connection. It waits for one
/// message: a release (with where to send the outcome), or the channel
/// closing (the lock was dropped); then it deletes the lock's row, lets go
/// of the advisory lock and closes the connection.
struct Keeper {
    release: mpsc::Sender<mpsc::Sender<StateResult<()>>>,
}

impl Keeper {
    fn start(client: Client, key: i64, info: LockInfo) -> std::io::Result<Keeper> {
        let (tx, rx) = mpsc::channel::<mpsc::Sender<StateResult<()>>>();
        std::thread::Builder::new()
            .name("tg-pg-lock".into())
            .spawn(move || {
                let reply = rx.recv().ok();
                let result = let_go(client, key, &info);
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            })?;
        Ok(Keeper { release: tx })
    }

    /// Ask the thread to let go; the receiver gets the outcome.
    fn ask(self) -> Option<mpsc::Receiver<StateResult<()>>> {
        let (tx, rx) = mpsc::channel();
        self.release.send(tx).ok().map(|()| rx)
    }
}

/// Delete the lock's row, unlock, close. A connection that is gone has let
/// go already (the server ends its locks with it): that is no error.
fn let_go(mut client: Client, key: i64, info: &LockInfo) -> StateResult<()> {
    let result = client
        .execute(
            "DELETE FROM locks WHERE session = $1 AND id = $2",
            &[&info.session, &info.id],
        )
        .and_then(|_| client.execute("SELECT pg_advisory_unlock($1)", &[&key]));
    let _ = client.close();
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_connection_error(&e) => Ok(()),
        Err(e) => Err(StateError::Backend {
            location: format!("the lock of session `{}`", info.session),
            message: format!("{}; the lock ended with its connection", describe(&e)),
        }),
    }
}

/// A held session lock: an advisory lock on a connection owned by a
/// [`Keeper`] thread.
struct PgSessionLock {
    keeper: Option<Keeper>,
    backend_pid: i32,
    info: LockInfo,
    held: Held,
}

impl PgSessionLock {
    /// This store's writes to the session stop checking the lock.
    fn forget(&self) {
        let mut held = relock(&self.held);
        if held.get(&self.info.session) == Some(&self.backend_pid) {
            held.remove(&self.info.session);
        }
    }
}

impl SessionLock for PgSessionLock {
    fn info(&self) -> &LockInfo {
        &self.info
    }

    fn release(mut self: Box<Self>) -> StateResult<()> {
        self.forget();
        let Some(reply) = self.keeper.take().and_then(Keeper::ask) else {
            // The thread is gone, and its connection with it.
            return Ok(());
        };
        match reply.recv_timeout(RELEASE_WAIT) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(StateError::ConnectionLost {
                location: format!("the lock of session `{}`", self.info.session),
                message: format!(
                    "the lock's connection did not let go within {}s; it ends when that connection does",
                    RELEASE_WAIT.as_secs()
                ),
            }),
        }
    }
}

impl Drop for PgSessionLock {
    fn drop(&mut self) {
        self.forget();
        let Some(reply) = self.keeper.take().and_then(Keeper::ask) else {
            return;
        };
        // Outside async code, wait (briefly) so the next locker finds the
        // lock free; inside, never block: the thread finishes on its own.
        if !in_async_context() {
            let _ = reply.recv_timeout(DROP_WAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(session_lock_key("default"), session_lock_key("default"));
        assert_ne!(session_lock_key("default"), session_lock_key("ci-1"));
        let (hi, lo) = key_parts(-2);
        assert_eq!((hi, lo), (u32::MAX, u32::MAX - 1));
    }
}
