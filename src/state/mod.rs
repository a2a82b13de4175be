//! State: what tg has made, per session, and who is working on it.
//!
//! A [`StateStore`] keeps sessions, each with a `lineage` (UUID, set once)
//! and a `serial` (bumped on every write), the instances recorded in it and
//! its outputs, plus one lock per session. Writes are per instance, grouped
//! into one transaction when they arrive together ([`StateStore::write_batch`],
//! [`batch::BatchWriter`]), so an apply that dies loses at most the work in
//! flight.
//!
//! This module owns the store contract (the trait, its types and errors);
//! [`codec`] owns how records look in a database row, shared by the SQL
//! stores. Backends: [`memory`] (library users and tests), [`sqlite`] (the
//! embedded default, `.tg/state.db`) and [`postgres`] (shared by teams and CI
//! agents). Only `sqlite` and `postgres` know SQL; the schema and migrations
//! are in the top-level `state/` folder. One contract test suite
//! (`tests/it/state_contract.rs`) runs against all three.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::addrs::InstanceAddr;
use crate::platform::Spec;
pub use files::{Expect, StoredFile};
pub use leases::Lease;

pub mod batch;
pub mod codec;
pub mod files;
pub mod leases;
pub mod memory;
pub mod moves;
pub mod postgres;
pub mod sqlite;

/// The state schema version this tg writes and reads.
pub const SCHEMA_VERSION: i64 = 3;

/// How long a batched write may stay safe from a killed process only: the
/// SQL stores sync (fsync, or a synchronous PostgreSQL commit) the first
/// batch after this much time since the last sync, so a power loss loses at
/// most the writes of this last stretch. See `docs/state.md`.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(250);

/// When a store last made its writes survive a power loss, and whether it
/// wrote anything since (shared by the SQL stores).
#[derive(Debug)]
pub(crate) struct SyncClock {
    synced_at: std::time::Instant,
    unsynced: bool,
}

impl SyncClock {
    /// A clock whose first batch is synced.
    pub(crate) fn new() -> SyncClock {
        let now = std::time::Instant::now();
        SyncClock {
            synced_at: now.checked_sub(SYNC_INTERVAL).unwrap_or(now),
            unsynced: false,
        }
    }

    /// Must the next batch be synced?
    pub(crate) fn due(&self) -> bool {
        self.synced_at.elapsed() >= SYNC_INTERVAL
    }

    /// A commit was made, synced or not.
    pub(crate) fn committed(&mut self, synced: bool) {
        if synced {
            self.synced_at = std::time::Instant::now();
            self.unsynced = false;
        } else {
            self.unsynced = true;
        }
    }

    /// Is there a commit that a power loss could still take?
    pub(crate) fn unsynced(&self) -> bool {
        self.unsynced
    }
}

/// One session's identity and counters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionInfo {
    pub name: String,
    pub lineage: String,
    pub serial: u64,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub updated_at: String,
    /// The number of instances recorded.
    pub instances: usize,
}

/// The status of a recorded instance.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    /// Made as recorded.
    Ready,
    /// A create or update that did not finish: replaced on the next apply.
    Tainted,
}

/// One instance as recorded in state.
///
/// Stored as JSON (see [`codec`]). Fields added later carry
/// `#[serde(default)]`, so records written by an older tg still load.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstanceRecord {
    pub address: InstanceAddr,
    /// The platform that made it.
    pub platform: String,
    pub status: InstanceStatus,
    /// The spec it was made from.
    pub spec: Spec,
    /// The platform's private data.
    #[serde(default)]
    pub private: serde_json::Value,
    /// Addresses of what it depends on (for destroy order when the config is gone).
    #[serde(default)]
    pub dependencies: Vec<InstanceAddr>,
    /// Attributes shown to users and expressions (`name`, `address`, ...).
    #[serde(default)]
    pub attributes: serde_json::Value,
    /// Dotted paths into `spec` and `attributes` whose values are sensitive
    /// (from the plan's `ResourceChange::sensitive`): what shows the
    /// instance hides them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
}

/// A recorded output value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputRecord {
    pub value: serde_json::Value,
    pub sensitive: bool,
}

/// One change to a session's state, for [`StateStore::write_batch`].
// Nearly every write is a `Put`: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum StateWrite {
    /// Insert or replace one instance.
    Put(InstanceRecord),
    /// Forget one instance (forgetting one that is not recorded is no error).
    Remove(InstanceAddr),
    /// Replace all outputs.
    Outputs(BTreeMap<String, OutputRecord>),
}

/// A whole session's state as read at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub lineage: String,
    pub serial: u64,
    pub instances: BTreeMap<InstanceAddr, InstanceRecord>,
    pub outputs: BTreeMap<String, OutputRecord>,
}

/// Who holds (or asks for) a session's lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockInfo {
    /// A UUID; what `tg force-unlock` takes.
    pub id: String,
    pub session: String,
    pub operation: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl LockInfo {
    /// A lock request for `operation` by `caller`.
    pub fn new(session: &str, operation: &str, caller: &crate::environment::Caller) -> LockInfo {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            session: session.to_string(),
            operation: operation.to_string(),
            user: caller.user.clone(),
            host: caller.host.clone(),
            pid: caller.pid,
            created_at: now_rfc3339(),
        }
    }

    /// A lock request for `operation` by this process (tests).
    pub fn for_this_process(session: &str, operation: &str) -> LockInfo {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            session: session.to_string(),
            operation: operation.to_string(),
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into()),
            host: hostname(),
            pid: std::process::id(),
            created_at: now_rfc3339(),
        }
    }
}

/// A held session lock.
///
/// [`SessionLock::release`] lets go and says whether that worked; it blocks,
/// so async code calls it through `spawn_blocking` (or
/// [`release_lock`]). Dropping a lock without releasing it is safe anywhere,
/// also on a runtime thread: it never panics and never blocks async code
/// (outside async code it waits briefly for the release, so the next locker
/// finds the lock free; inside, the release finishes in the background and a
/// holder that dies loses its lock anyway, see the stores).
pub trait SessionLock: Send {
    fn info(&self) -> &LockInfo;
    /// Let go of the lock. Blocking.
    fn release(self: Box<Self>) -> StateResult<()>;
}

/// [`SessionLock::release`] from async code: on the blocking pool.
pub async fn release_lock(lock: Box<dyn SessionLock>) -> StateResult<()> {
    let session = lock.info().session.clone();
    tokio::task::spawn_blocking(move || lock.release())
        .await
        .unwrap_or_else(|e| {
            Err(StateError::Backend {
                location: format!("the lock of session `{session}`"),
                message: format!("releasing it stopped unexpectedly: {e}"),
            })
        })
}

/// Is this thread inside a tokio runtime, where blocking (and the
/// `postgres` client's own runtime) must not happen?
pub(crate) fn in_async_context() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// State store errors.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    #[error(
        "session `{0}` does not exist: `tg apply` creates it; `tg session list` shows the others"
    )]
    NoSuchSession(String),
    #[error("session `{0}` already exists: use it with `-session {0}`, or pick another name")]
    SessionExists(String),
    #[error("session `{session}` is locked by {} (lock id `{}`, {}@{} pid {}, since {}): wait for it to finish, or run `tg force-unlock {}` if that process is gone", .holder.operation, .holder.id, .holder.user, .holder.host, .holder.pid, .holder.created_at, .holder.id)]
    Locked { session: String, holder: LockInfo },
    #[error("no lock with id `{id}` on session `{session}`: it was released already, or the id is mistyped (a refusal shows the id)")]
    NoSuchLock { session: String, id: String },
    #[error("the state at {location} was written by a newer tg (schema version {found}, this tg knows up to {known}); upgrade tg, the state was not touched")]
    TooNew {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("the state at {location} is damaged: {reason}; it was not touched (restore it from a backup or move it away, with its `-wal` and `-shm` files: see docs/state.md)")]
    Damaged { location: String, reason: String },
    #[error("`{name}` of session `{session}` changed meanwhile (another server or client wrote it): read it again and retry")]
    FileChanged { session: String, name: String },
    #[error("state backend error at {location}: {message}")]
    Backend { location: String, message: String },
    #[error("lost the connection to the state backend at {location}: {message}")]
    ConnectionLost { location: String, message: String },
}

pub type StateResult<T> = Result<T, StateError>;

/// A place where sessions' state lives.
///
/// Implementations are blocking and `Send + Sync`; the engine calls them from
/// a blocking thread. Every write call bumps the session's serial by one.
/// When it returns the write survives the tg process being killed; it
/// survives a power loss (or a crash of the PostgreSQL server) too, except a
/// [`StateStore::write_batch`] made less than [`SYNC_INTERVAL`] after the
/// store's last sync, which is synced by a later batch or by
/// [`StateStore::sync`]. See `docs/state.md`.
pub trait StateStore: Send + Sync {
    /// A short human description (`sqlite .tg/state.db`).
    fn location(&self) -> String;

    fn list_sessions(&self) -> StateResult<Vec<SessionInfo>>;
    fn get_session(&self, name: &str) -> StateResult<Option<SessionInfo>>;
    /// Create a new, empty session with a fresh lineage.
    fn create_session(&self, name: &str) -> StateResult<SessionInfo>;
    /// The session, created when missing.
    fn ensure_session(&self, name: &str) -> StateResult<SessionInfo> {
        match self.get_session(name)? {
            Some(s) => Ok(s),
            None => match self.create_session(name) {
                Err(StateError::SessionExists(_)) => self
                    .get_session(name)?
                    .ok_or_else(|| StateError::NoSuchSession(name.to_string())),
                other => other,
            },
        }
    }
    /// Remove a session and all it records (the caller checks it is empty
    /// or was asked to force).
    fn delete_session(&self, name: &str) -> StateResult<()>;

    fn load(&self, session: &str) -> StateResult<Snapshot>;
    /// Apply `writes` in order, in one transaction: all of them or none.
    /// Bumps the serial once, also for an empty batch; returns the new
    /// serial. A missing session is [`StateError::NoSuchSession`]. Synced
    /// (an fsync) when [`SYNC_INTERVAL`] has passed since the last sync.
    fn write_batch(&self, session: &str, writes: &[StateWrite]) -> StateResult<u64>;
    /// Make every write so far survive a power loss (a no-op when they do
    /// already). The batching writer calls it when it ends.
    fn sync(&self) -> StateResult<()> {
        Ok(())
    }
    /// Insert or replace one instance; returns the new serial.
    fn put_instance(&self, session: &str, record: &InstanceRecord) -> StateResult<u64> {
        self.write_batch(session, &[StateWrite::Put(record.clone())])
    }
    /// Forget one instance; returns the new serial.
    fn remove_instance(&self, session: &str, address: &InstanceAddr) -> StateResult<u64> {
        self.write_batch(session, &[StateWrite::Remove(address.clone())])
    }
    /// Replace all outputs; returns the new serial.
    fn put_outputs(
        &self,
        session: &str,
        outputs: &BTreeMap<String, OutputRecord>,
    ) -> StateResult<u64> {
        self.write_batch(session, &[StateWrite::Outputs(outputs.clone())])
    }
    /// Replace the whole session content (used by `tg state migrate`),
    /// keeping `snapshot.lineage`; returns the new serial.
    fn import(&self, session: &str, snapshot: &Snapshot) -> StateResult<u64>;

    /// Take the session's lock, waiting up to `timeout` for a holder to let
    /// go. A lock whose holder is known to be dead is taken over.
    fn lock(&self, request: LockInfo, timeout: Duration) -> StateResult<Box<dyn SessionLock>>;
    /// Who holds the session's lock now, if anyone.
    fn lock_holder(&self, session: &str) -> StateResult<Option<LockInfo>>;
    /// Remove a lock by id whoever holds it.
    fn force_unlock(&self, session: &str, id: &str) -> StateResult<()>;

    /// Every pool host lease row (see [`leases`]), by host.
    fn leases(&self) -> StateResult<Vec<Lease>> {
        Err(self.no_leases())
    }
    /// In one transaction: lease every host of `hosts` (`address:port`) to
    /// the session `name` of `lineage`, keeping the ones it holds already.
    /// Nothing is taken when one of them is leased by another session or
    /// quarantined: the answer is then one line per such host (empty when
    /// all were taken).
    fn take_leases(&self, name: &str, lineage: &str, hosts: &[String]) -> StateResult<Vec<String>> {
        let _ = (name, lineage, hosts);
        Err(self.no_leases())
    }
    /// Free the hosts of `hosts` that the session of `lineage` holds.
    fn release_leases(&self, lineage: &str, hosts: &[String]) -> StateResult<()> {
        let _ = (lineage, hosts);
        Err(self.no_leases())
    }
    /// Take `host` out of placement with `reason` (a lease on it stays).
    fn quarantine_host(&self, host: &str, reason: &str) -> StateResult<()> {
        let _ = (host, reason);
        Err(self.no_leases())
    }
    /// Free `host` whoever holds it and end its quarantine; returns the row
    /// as it was.
    fn free_host(&self, host: &str) -> StateResult<Option<Lease>> {
        let _ = host;
        Err(self.no_leases())
    }
    /// The files kept with `session` (see [`files`]), by name, without
    /// their content.
    fn session_files(&self, session: &str) -> StateResult<Vec<StoredFile>> {
        let _ = session;
        Err(self.no_files())
    }
    /// One file kept with `session` and its content (`None`: no such file).
    fn read_session_file(
        &self,
        session: &str,
        name: &str,
    ) -> StateResult<Option<(StoredFile, Vec<u8>)>> {
        let _ = (session, name);
        Err(self.no_files())
    }
    /// Write a file kept with `session` when `expect` holds for what is
    /// there (else [`StateError::FileChanged`], nothing written); returns
    /// it as written, its revision one more than before (1 when new).
    fn write_session_file(
        &self,
        session: &str,
        name: &str,
        content: &[u8],
        expect: Expect,
    ) -> StateResult<StoredFile> {
        let _ = (session, name, content, expect);
        Err(self.no_files())
    }
    /// Remove the file `name` kept with `session`, or all of them (`None`).
    fn remove_session_files(&self, session: &str, name: Option<&str>) -> StateResult<()> {
        let _ = (session, name);
        Err(self.no_files())
    }
    /// The sessions that keep a file `name`, sorted.
    fn sessions_with_file(&self, name: &str) -> StateResult<Vec<String>> {
        let _ = name;
        Err(self.no_files())
    }
    /// The error of a store that keeps no session files.
    fn no_files(&self) -> StateError {
        StateError::Backend {
            location: self.location(),
            message: "this store keeps no session files".into(),
        }
    }
    /// The error of a store that keeps no leases.
    fn no_leases(&self) -> StateError {
        StateError::Backend {
            location: self.location(),
            message: "this store keeps no pool leases".into(),
        }
    }
}

/// The machine's host name, for lock records.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Now as RFC 3339 UTC with seconds.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

/// Format Unix seconds as RFC 3339 UTC (civil-from-days, no time zone data needed).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// Is process `pid` alive on this machine?
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_651_200), "2026-11-26T00:00:00Z");
    }
}
