//! Group commit: writes that arrive together share one transaction.
//!
//! A [`BatchWriter`] owns a thread that writes one session's state through
//! [`StateStore::write_batch`]. A write is committed with every write that
//! arrives right after it (while they keep coming, up to 2 ms), and every
//! write that arrives while that commit is in flight waits and goes into
//! the next one, in arrival order. Each caller's future
//! resolves only when the transaction holding its write has committed (is
//! durable), so an operation is reported done only once its state is
//! recorded, and a killed process loses only the writes in flight. When
//! the writer ends it syncs the store, so what a walk wrote survives a power
//! loss once the walk is over. It does not decide what to write or when:
//! the apply walk does.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{StateError, StateResult, StateStore, StateWrite};

/// The most writes in one transaction: bounds how long one commit takes.
const MAX_BATCH: usize = 1024;

/// After the first write of a batch arrives, more are taken while they keep
/// coming: until none came for this long...
const LINGER_GAP: Duration = Duration::from_micros(200);

/// ...or this long after the first (so a steady stream is still committed).
const LINGER_MAX: Duration = Duration::from_millis(2);

struct Pending {
    write: StateWrite,
    done: oneshot::Sender<StateResult<u64>>,
}

/// A handle to one session's writer thread; clones share it. The thread
/// ends when every handle is gone and the writes already sent are
/// committed ([`BatchWriter::finish`] waits for that).
#[derive(Clone)]
pub struct BatchWriter {
    location: String,
    queue: mpsc::Sender<Pending>,
    ended: Arc<std::sync::Mutex<Option<oneshot::Receiver<Summary>>>>,
}

/// What a writer did, reported when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Transactions committed.
    pub commits: u64,
    /// Writes committed.
    pub writes: u64,
    /// The serial after the last commit (0 when nothing was committed).
    pub serial: u64,
    /// The final sync failed: the last writes survive a killed process but
    /// maybe not a power loss (the message).
    pub sync_error: Option<String>,
}

impl BatchWriter {
    /// Start a writer for `session` of `store`.
    pub fn new(store: Arc<dyn StateStore>, session: &str) -> StateResult<BatchWriter> {
        let (queue, rx) = mpsc::channel::<Pending>();
        let (ended_tx, ended_rx) = oneshot::channel();
        let location = store.location();
        let session = session.to_string();
        std::thread::Builder::new()
            .name("tg-state-writer".into())
            .spawn(move || {
                let summary = run(&*store, &session, &rx);
                let _ = ended_tx.send(summary);
            })
            .map_err(|e| StateError::Backend {
                location: location.clone(),
                message: format!("cannot start the state writer thread: {e}"),
            })?;
        Ok(BatchWriter {
            location,
            queue,
            ended: Arc::new(std::sync::Mutex::new(Some(ended_rx))),
        })
    }

    /// Record `write`; resolves with the serial of the transaction that
    /// holds it once that transaction has committed.
    pub async fn write(&self, write: StateWrite) -> StateResult<u64> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Pending { write, done })
            .map_err(|_| self.stopped())?;
        wait.await.unwrap_or_else(|_| Err(self.stopped()))
    }

    /// Drop this handle and wait until the writer has committed everything
    /// sent to it by any handle (the others must be gone too, or this waits
    /// for them) and synced it ([`StateStore::sync`]).
    pub async fn finish(self) -> Summary {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(self);
        match ended {
            Some(rx) => rx.await.unwrap_or_default(),
            None => Summary::default(),
        }
    }

    fn stopped(&self) -> StateError {
        StateError::Backend {
            location: self.location.clone(),
            message: "the state writer stopped unexpectedly; nothing more is recorded".into(),
        }
    }
}

/// The writer thread: take what is queued, commit it, answer, repeat.
fn run(store: &dyn StateStore, session: &str, rx: &mpsc::Receiver<Pending>) -> Summary {
    let mut summary = Summary::default();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + LINGER_MAX;
        while batch.len() < MAX_BATCH {
            // Whatever is queued, then whatever arrives while writes keep
            // coming: a commit per write would rewrite the same pages (the
            // session's serial, the table's last leaf) over and over.
            let wait = LINGER_GAP.min(deadline.saturating_duration_since(Instant::now()));
            match rx.try_recv().or_else(|_| rx.recv_timeout(wait)) {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (writes, waiting): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.write, p.done)).unzip();
        let result = store.write_batch(session, &writes);
        if let Ok(serial) = &result {
            summary.commits += 1;
            summary.writes += writes.len() as u64;
            summary.serial = *serial;
        }
        for done in waiting {
            // A caller that went away (an aborted task) needs no answer.
            let _ = done.send(result.clone());
        }
    }
    if summary.commits > 0 {
        summary.sync_error = store.sync().err().map(|e| e.to_string());
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addrs::{InstanceAddr, InstanceKey, ResourceKind};
    use crate::platform::{NetworkSpec, Spec};
    use crate::state::memory::MemoryStore;
    use crate::state::{InstanceRecord, InstanceStatus, Snapshot};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    fn record(i: u64) -> InstanceRecord {
        InstanceRecord {
            sensitive: Vec::new(),
            address: InstanceAddr::new(ResourceKind::Network, "n", InstanceKey::Int(i)),
            platform: "x".into(),
            status: InstanceStatus::Ready,
            spec: Spec::Network(NetworkSpec {
                name: "n".into(),
                cidr: "10.0.0.0/24".parse().unwrap(),
                gateway: "10.0.0.1".parse().unwrap(),
                nat: false,
                hosts: Vec::new(),
            }),
            private: serde_json::Value::Null,
            dependencies: vec![],
            attributes: serde_json::Value::Null,
        }
    }

    /// A memory store whose commits take a while and are counted.
    struct Slow {
        inner: MemoryStore,
        batches: Mutex<Vec<usize>>,
    }

    impl StateStore for Slow {
        fn location(&self) -> String {
            "slow".into()
        }
        fn list_sessions(&self) -> StateResult<Vec<crate::state::SessionInfo>> {
            self.inner.list_sessions()
        }
        fn get_session(&self, name: &str) -> StateResult<Option<crate::state::SessionInfo>> {
            self.inner.get_session(name)
        }
        fn create_session(&self, name: &str) -> StateResult<crate::state::SessionInfo> {
            self.inner.create_session(name)
        }
        fn delete_session(&self, name: &str) -> StateResult<()> {
            self.inner.delete_session(name)
        }
        fn load(&self, session: &str) -> StateResult<Snapshot> {
            self.inner.load(session)
        }
        fn write_batch(&self, session: &str, writes: &[StateWrite]) -> StateResult<u64> {
            std::thread::sleep(Duration::from_millis(30));
            self.batches.lock().unwrap().push(writes.len());
            self.inner.write_batch(session, writes)
        }
        fn import(&self, session: &str, snapshot: &Snapshot) -> StateResult<u64> {
            self.inner.import(session, snapshot)
        }
        fn lock(
            &self,
            request: crate::state::LockInfo,
            timeout: Duration,
        ) -> StateResult<Box<dyn crate::state::SessionLock>> {
            self.inner.lock(request, timeout)
        }
        fn lock_holder(&self, session: &str) -> StateResult<Option<crate::state::LockInfo>> {
            self.inner.lock_holder(session)
        }
        fn force_unlock(&self, session: &str, id: &str) -> StateResult<()> {
            self.inner.force_unlock(session, id)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_arrive_during_a_commit_share_the_next_one() {
        let store = Arc::new(Slow {
            inner: MemoryStore::new(),
            batches: Mutex::new(Vec::new()),
        });
        store.create_session("s").unwrap();
        let writer = BatchWriter::new(store.clone(), "s").unwrap();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let w = writer.clone();
                tokio::spawn(async move { w.write(StateWrite::Put(record(i))).await })
            })
            .collect();
        let mut serials = Vec::new();
        for t in tasks {
            serials.push(t.await.unwrap().unwrap());
        }
        let summary = writer.finish().await;
        let batches = store.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 100);
        assert!(batches.len() < 20, "{batches:?}");
        assert_eq!(summary.commits, batches.len() as u64);
        assert_eq!(summary.writes, 100);
        assert_eq!(summary.serial, *serials.iter().max().unwrap());
        let snap = store.load("s").unwrap();
        assert_eq!(snap.instances.len(), 100);
        assert_eq!(snap.serial, batches.len() as u64);
    }

    #[tokio::test]
    async fn writes_keep_their_order_and_errors_reach_every_waiter() {
        let store = Arc::new(MemoryStore::new());
        store.create_session("s").unwrap();
        let writer = BatchWriter::new(store.clone(), "s").unwrap();
        writer.write(StateWrite::Put(record(1))).await.unwrap();
        let mut tainted = record(1);
        tainted.status = InstanceStatus::Tainted;
        let (a, b, c) = tokio::join!(
            writer.write(StateWrite::Put(tainted.clone())),
            writer.write(StateWrite::Remove(record(1).address)),
            writer.write(StateWrite::Outputs(BTreeMap::new())),
        );
        a.unwrap();
        b.unwrap();
        c.unwrap();
        assert!(store.load("s").unwrap().instances.is_empty());

        let missing = BatchWriter::new(store.clone(), "nope").unwrap();
        let (a, b) = tokio::join!(
            missing.write(StateWrite::Put(record(2))),
            missing.write(StateWrite::Put(record(3))),
        );
        assert!(matches!(a, Err(StateError::NoSuchSession(_))));
        assert!(matches!(b, Err(StateError::NoSuchSession(_))));
        assert_eq!(missing.finish().await.commits, 0);
    }
}
