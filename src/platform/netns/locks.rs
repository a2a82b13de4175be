//! Per-session locks of one netns platform instance.
//!
//! Work on one session's shared objects (its router namespace, its run
//! folder, a network's bridges) is serialized by that session's lock; work
//! on different sessions runs in parallel. A lock lives while someone
//! holds or waits for it, so a long-running server does not collect one
//! per session it ever saw. Two tg processes never work on one session at
//! once (the state store's session lock sees to that), so these locks are
//! per process.
//!
//! Not here: the host-wide lock between processes (`net::host`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// The locks of every session this platform instance works on.
#[derive(Debug, Default)]
pub struct SessionLocks {
    locks: Mutex<HashMap<String, Weak<Mutex<()>>>>,
}

/// One session's lock (take it with [`SessionLock::lock`]).
#[derive(Debug, Clone)]
pub struct SessionLock(Arc<Mutex<()>>);

/// Proof that the session's lock is held, for functions that need it.
pub struct SessionHeld<'a>(#[allow(dead_code)] MutexGuard<'a, ()>);

impl SessionLocks {
    /// The lock of session `sid`.
    pub fn session(&self, sid: &str) -> SessionLock {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lock) = map.get(sid).and_then(Weak::upgrade) {
            return SessionLock(lock);
        }
        map.retain(|_, w| w.strong_count() > 0);
        let lock = Arc::new(Mutex::new(()));
        map.insert(sid.to_string(), Arc::downgrade(&lock));
        SessionLock(lock)
    }

    /// How many sessions have a live lock (for tests).
    pub fn live(&self) -> usize {
        let map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|w| w.strong_count() > 0).count()
    }
}

impl SessionLock {
    /// Wait for the lock and hold it until the result is dropped.
    pub fn lock(&self) -> SessionHeld<'_> {
        SessionHeld(self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_session_at_a_time_others_in_parallel() {
        let locks = Arc::new(SessionLocks::default());
        let inside = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let most = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    let k = i % 2;
                    for _ in 0..50 {
                        let lock = locks.session(if k == 0 { "aaaa0000" } else { "bbbb1111" });
                        let _held = lock.lock();
                        let n = inside[k].fetch_add(1, Ordering::SeqCst) + 1;
                        most[k].fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside[k].fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most[0].load(Ordering::SeqCst), 1);
        assert_eq!(most[1].load(Ordering::SeqCst), 1);
        // Nobody holds a lock any more: the map keeps nothing alive.
        assert_eq!(locks.live(), 0);
    }

    #[test]
    fn holders_of_one_session_share_its_lock() {
        let locks = SessionLocks::default();
        let a = locks.session("s");
        let b = locks.session("s");
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert!(!Arc::ptr_eq(&a.0, &locks.session("t").0));
        drop((a, b));
        assert_eq!(locks.live(), 0);
    }
}
