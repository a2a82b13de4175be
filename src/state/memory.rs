//! An in-memory [`StateStore`]: for tests, benchmarks and library users who
//! drive tg from Rust and keep state themselves.
//!
//! Behaves like the durable stores (serials, lineages, one lock per session
//! with the holder's identity, lock waits) but forgets everything when
//! dropped. Clones share the same data.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::codec::check_address;
use super::{
    now_rfc3339, LockInfo, SessionInfo, SessionLock, Snapshot, StateError, StateResult, StateStore,
    StateWrite,
};

#[derive(Debug, Default)]
struct Inner {
    sessions: BTreeMap<String, (SessionInfo, Snapshot)>,
    locks: BTreeMap<String, LockInfo>,
    leases: BTreeMap<String, super::Lease>,
    /// `(session, name)`: the row and its content.
    files: BTreeMap<(String, String), (super::StoredFile, Vec<u8>)>,
}

/// The in-memory store.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    /// What [`StateStore::location`] says; `memory` when `None`.
    label: Option<String>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store that stands for a store not made yet, named by its
    /// `location` in messages (a read-only command on a testbed that has
    /// no state file reads this instead of creating the file).
    pub fn standing_for(location: String) -> MemoryStore {
        MemoryStore {
            label: Some(location),
            ..MemoryStore::default()
        }
    }

    fn guard(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere; the data is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[allow(clippy::result_large_err)] // StateError is the trait's error type
    /// Change a session and bump its serial; returns the new serial.
    fn with_session(
        &self,
        name: &str,
        f: impl FnOnce(&mut SessionInfo, &mut Snapshot),
    ) -> StateResult<u64> {
        let mut g = self.guard();
        let (info, snap) = g
            .sessions
            .get_mut(name)
            .ok_or_else(|| StateError::NoSuchSession(name.to_string()))?;
        f(info, snap);
        info.serial += 1;
        snap.serial = info.serial;
        info.instances = snap.instances.len();
        info.updated_at = now_rfc3339();
        Ok(info.serial)
    }
}

struct MemoryLock {
    info: LockInfo,
    inner: Arc<Mutex<Inner>>,
}

impl MemoryLock {
    fn let_go(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.locks.get(&self.info.session).map(|l| &l.id) == Some(&self.info.id) {
            g.locks.remove(&self.info.session);
        }
    }
}

impl SessionLock for MemoryLock {
    fn info(&self) -> &LockInfo {
        &self.info
    }

    fn release(self: Box<Self>) -> StateResult<()> {
        // Drop lets go: a short critical section, fine on any thread.
        Ok(())
    }
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.let_go();
    }
}

impl StateStore for MemoryStore {
    fn session_files(&self, session: &str) -> StateResult<Vec<super::StoredFile>> {
        Ok(self
            .guard()
            .files
            .iter()
            .filter(|((s, _), _)| s == session)
            .map(|(_, (row, _))| row.clone())
            .collect())
    }
    fn read_session_file(
        &self,
        session: &str,
        name: &str,
    ) -> StateResult<Option<(super::StoredFile, Vec<u8>)>> {
        let key = (session.to_string(), name.to_string());
        Ok(self.guard().files.get(&key).cloned())
    }
    fn write_session_file(
        &self,
        session: &str,
        name: &str,
        content: &[u8],
        expect: super::Expect,
    ) -> StateResult<super::StoredFile> {
        let mut g = self.guard();
        let key = (session.to_string(), name.to_string());
        let found = g.files.get(&key).map(|(row, _)| row.revision);
        if !expect.allows(found) {
            return Err(StateError::FileChanged {
                session: key.0,
                name: key.1,
            });
        }
        let row = super::StoredFile::describe(name, content, super::Expect::next(found));
        g.files.insert(key, (row.clone(), content.to_vec()));
        Ok(row)
    }
    fn remove_session_files(&self, session: &str, name: Option<&str>) -> StateResult<()> {
        self.guard()
            .files
            .retain(|(s, n), _| s != session || name.is_some_and(|x| x != n));
        Ok(())
    }
    fn sessions_with_file(&self, name: &str) -> StateResult<Vec<String>> {
        Ok(self
            .guard()
            .files
            .keys()
            .filter(|(_, n)| n == name)
            .map(|(s, _)| s.clone())
            .collect())
    }
    fn leases(&self) -> StateResult<Vec<super::Lease>> {
        Ok(self.guard().leases.values().cloned().collect())
    }
    fn take_leases(&self, name: &str, lineage: &str, hosts: &[String]) -> StateResult<Vec<String>> {
        let mut g = self.guard();
        let rows: Vec<super::Lease> = g.leases.values().cloned().collect();
        let refused = super::leases::conflicts(&rows, lineage, hosts);
        if !refused.is_empty() {
            return Ok(refused);
        }
        for h in hosts {
            let row = g.leases.entry(h.clone()).or_insert_with(|| super::Lease {
                host: h.clone(),
                ..Default::default()
            });
            if !row.held_by(lineage) {
                row.session = Some(name.to_string());
                row.lineage = Some(lineage.to_string());
                row.since = Some(super::now_rfc3339());
            }
        }
        Ok(Vec::new())
    }
    fn release_leases(&self, lineage: &str, hosts: &[String]) -> StateResult<()> {
        let mut g = self.guard();
        for h in hosts {
            if let Some(row) = g.leases.get_mut(h).filter(|r| r.held_by(lineage)) {
                row.session = None;
                row.lineage = None;
                row.since = None;
            }
        }
        g.leases
            .retain(|_, r| r.lineage.is_some() || r.quarantined.is_some());
        Ok(())
    }
    fn quarantine_host(&self, host: &str, reason: &str) -> StateResult<()> {
        let mut g = self.guard();
        let row = g
            .leases
            .entry(host.to_string())
            .or_insert_with(|| super::Lease {
                host: host.to_string(),
                ..Default::default()
            });
        row.quarantined = Some(reason.to_string());
        Ok(())
    }
    fn free_host(&self, host: &str) -> StateResult<Option<super::Lease>> {
        Ok(self.guard().leases.remove(host))
    }
    fn location(&self) -> String {
        self.label.clone().unwrap_or_else(|| "memory".to_string())
    }

    fn list_sessions(&self) -> StateResult<Vec<SessionInfo>> {
        Ok(self
            .guard()
            .sessions
            .values()
            .map(|(i, _)| i.clone())
            .collect())
    }

    fn get_session(&self, name: &str) -> StateResult<Option<SessionInfo>> {
        Ok(self.guard().sessions.get(name).map(|(i, _)| i.clone()))
    }

    fn create_session(&self, name: &str) -> StateResult<SessionInfo> {
        let mut g = self.guard();
        if g.sessions.contains_key(name) {
            return Err(StateError::SessionExists(name.to_string()));
        }
        let now = now_rfc3339();
        let info = SessionInfo {
            name: name.to_string(),
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            created_at: now.clone(),
            updated_at: now,
            instances: 0,
        };
        let snap = Snapshot {
            lineage: info.lineage.clone(),
            ..Snapshot::default()
        };
        g.sessions.insert(name.to_string(), (info.clone(), snap));
        Ok(info)
    }

    fn delete_session(&self, name: &str) -> StateResult<()> {
        let mut g = self.guard();
        g.sessions
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| StateError::NoSuchSession(name.to_string()))
    }

    fn load(&self, session: &str) -> StateResult<Snapshot> {
        self.guard()
            .sessions
            .get(session)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| StateError::NoSuchSession(session.to_string()))
    }

    fn write_batch(&self, session: &str, writes: &[StateWrite]) -> StateResult<u64> {
        // All or nothing: check every write before applying any.
        for w in writes {
            if let StateWrite::Put(r) = w {
                check_address(&self.location(), &r.address)?;
            }
        }
        self.with_session(session, |_, s| {
            for w in writes {
                match w {
                    StateWrite::Put(r) => {
                        s.instances.insert(r.address.clone(), r.clone());
                    }
                    StateWrite::Remove(a) => {
                        s.instances.remove(a);
                    }
                    StateWrite::Outputs(o) => s.outputs = o.clone(),
                }
            }
        })
    }

    /// Like the durable stores: the session is created when missing, an
    /// empty lineage keeps the session's (or makes a fresh one), and the
    /// serial moves past both the session's and the snapshot's.
    fn import(&self, session: &str, snapshot: &Snapshot) -> StateResult<u64> {
        for a in snapshot.instances.keys() {
            check_address(&self.location(), a)?;
        }
        self.ensure_session(session)?;
        self.with_session(session, |info, s| {
            if !snapshot.lineage.is_empty() {
                info.lineage = snapshot.lineage.clone();
            }
            s.lineage = info.lineage.clone();
            // `with_session` adds the one.
            info.serial = info.serial.max(snapshot.serial);
            s.instances = snapshot.instances.clone();
            s.outputs = snapshot.outputs.clone();
        })
    }

    fn lock(&self, request: LockInfo, timeout: Duration) -> StateResult<Box<dyn SessionLock>> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut g = self.guard();
                match g.locks.get(&request.session) {
                    None => {
                        g.locks.insert(request.session.clone(), request.clone());
                        return Ok(Box::new(MemoryLock {
                            info: request,
                            inner: self.inner.clone(),
                        }));
                    }
                    Some(holder) if Instant::now() >= deadline => {
                        return Err(StateError::Locked {
                            session: request.session.clone(),
                            holder: holder.clone(),
                        })
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lock_holder(&self, session: &str) -> StateResult<Option<LockInfo>> {
        Ok(self.guard().locks.get(session).cloned())
    }

    fn force_unlock(&self, session: &str, id: &str) -> StateResult<()> {
        let mut g = self.guard();
        match g.locks.get(session) {
            Some(l) if l.id == id => {
                g.locks.remove(session);
                Ok(())
            }
            _ => Err(StateError::NoSuchLock {
                session: session.to_string(),
                id: id.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_bumps_and_locks_exclude() {
        let s = MemoryStore::new();
        let info = s.create_session("default").unwrap();
        assert_eq!(info.serial, 0);
        assert!(matches!(
            s.create_session("default"),
            Err(StateError::SessionExists(_))
        ));
        s.put_outputs("default", &BTreeMap::new()).unwrap();
        assert_eq!(s.load("default").unwrap().serial, 1);
        let l = s
            .lock(
                LockInfo::for_this_process("default", "apply"),
                Duration::ZERO,
            )
            .unwrap();
        let e = s
            .lock(
                LockInfo::for_this_process("default", "plan"),
                Duration::from_millis(50),
            )
            .err()
            .unwrap();
        assert!(e.to_string().contains("is locked by apply"), "{e}");
        drop(l);
        s.lock(
            LockInfo::for_this_process("default", "plan"),
            Duration::ZERO,
        )
        .unwrap();
    }
}
