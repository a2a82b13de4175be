//! Opening a session and holding its lock.
//!
//! [`open`] evaluates the testbed's settings, opens the state store they
//! (or `TG_STATE_URL`) name and builds the platforms; [`lock`] takes the
//! session's lock and reads its state under it. A [`Locked`] session is
//! the only way to [`apply`](super::apply): the type system keeps unlocked
//! writes out. Neither creates the session: `apply` does when it has
//! something to record.

use std::time::Duration;

use super::store::{open_store_for, StoreAccess, ENV_STATE_URL};
use super::{Context, OpsError, OpsResult, Workspace};
use crate::apply::on_store;
use crate::config::{LoadOptions, Prior, Settings};
use crate::names::SessionName;
use crate::state::{LockInfo, SessionLock, Snapshot, StateError};

/// The session's [`Context`] from the workspace's settings.
pub async fn open(ws: &Workspace, session: &SessionName) -> OpsResult<Context> {
    open_for(ws, session, StoreAccess::Write).await
}

/// [`open`] for `access` (see [`StoreAccess`]).
pub async fn open_for(
    ws: &Workspace,
    session: &SessionName,
    access: StoreAccess,
) -> OpsResult<Context> {
    let opts: LoadOptions = ws.load_options(Prior::default());
    let (ws, session) = (ws.clone(), session.clone());
    // Loading is CPU work and store clients may block (the PostgreSQL
    // client runs its own runtime): neither belongs on an async thread.
    tokio::task::spawn_blocking(move || {
        let parsed = crate::config::parse(&opts)?;
        let settings = parsed.settings()?;
        let mut context = open_with(&ws, &session, &settings, access)?;
        context.parsed = Some(std::sync::Arc::new(parsed));
        Ok(context)
    })
    .await
    .map_err(|e| OpsError::Usage(format!("opening the session stopped unexpectedly: {e}")))?
}

/// The session's [`Context`] from `settings` (the CLI's read-only commands
/// fall back to the default settings when the testbed does not load).
/// Blocking: opening a store may connect to a server.
pub fn open_with(
    ws: &Workspace,
    session: &SessionName,
    settings: &Settings,
    access: StoreAccess,
) -> OpsResult<Context> {
    let store = open_store_for(
        &ws.dir,
        &settings.state,
        ws.env.non_empty(ENV_STATE_URL),
        access,
    )?;
    let registry = ws
        .factory
        .registry(&settings.platforms, &ws.env)
        .map_err(|errs| OpsError::Platforms(errs.iter().map(ToString::to_string).collect()))?;
    // A pool with its own `state` URL keeps its leases there, shared by
    // every user of the pool; the rest use the testbed's store.
    super::pool::use_lease_stores(ws.leases_dir(), settings, &store, &registry, access)?;
    Ok(Context {
        store,
        registry,
        session: session.clone(),
        testbed_dir: ws.dir.clone(),
        hook: ws.hook.clone(),
        caller: ws.caller.clone(),
        parsed: None,
    })
}

/// A session with its lock held, and its state as read under the lock.
pub struct Locked {
    pub context: Context,
    pub guard: SessionGuard,
    /// The state when the lock was taken (empty, with no lineage, when the
    /// session does not exist yet).
    pub snapshot: Snapshot,
    /// The session existed when the lock was taken.
    pub existed: bool,
}

impl Locked {
    /// Release the lock now (the store's release may block: it runs off
    /// the async threads). Dropping a `Locked` releases it too.
    pub async fn release(self) -> OpsResult<()> {
        let Locked { context, guard, .. } = self;
        // The store goes with the lock, off the async threads too: a store
        // client may block when it closes.
        tokio::task::spawn_blocking(move || {
            let released = guard.release_blocking();
            drop(context);
            released
        })
        .await
        .map_err(|e| OpsError::Usage(format!("releasing the lock stopped unexpectedly: {e}")))?
    }
}

/// A held session lock.
pub struct SessionGuard {
    lock: Option<Box<dyn SessionLock>>,
}

impl SessionGuard {
    /// Who holds it: this caller.
    pub fn info(&self) -> Option<&LockInfo> {
        self.lock.as_ref().map(|l| l.info())
    }

    /// Release the lock, off the async threads.
    pub async fn release(self) -> OpsResult<()> {
        tokio::task::spawn_blocking(move || self.release_blocking())
            .await
            .map_err(|e| OpsError::Usage(format!("releasing the lock stopped unexpectedly: {e}")))?
    }

    /// Release the lock now (blocking).
    pub fn release_blocking(mut self) -> OpsResult<()> {
        match self.lock.take() {
            Some(lock) => Ok(lock.release()?),
            None => Ok(()),
        }
    }
}

/// Take `context`'s session lock for `operation`, waiting up to `timeout`,
/// and read the session's state under it.
pub async fn lock(context: Context, operation: &str, timeout: Duration) -> OpsResult<Locked> {
    let info = LockInfo::new(context.session.as_str(), operation, &context.caller);
    let name = context.session.clone();
    let taken: Result<_, StateError> = on_store(&context.store, move |s| {
        let lock = s.lock(info, timeout)?;
        let (snap, existed) = match s.get_session(name.as_str())? {
            Some(_) => (s.load(name.as_str())?, true),
            None => (Snapshot::default(), false),
        };
        Ok((lock, snap, existed))
    })
    .await;
    let (lock, snapshot, existed) = match taken {
        Ok(t) => t,
        Err(e) => {
            discard(context).await;
            return Err(OpsError::from(e));
        }
    };
    Ok(Locked {
        context,
        guard: SessionGuard { lock: Some(lock) },
        snapshot,
        existed,
    })
}

/// Drop `value` off the async threads: a store client or lock may block
/// when it closes.
pub(super) async fn discard<T: Send + 'static>(value: T) {
    let _ = tokio::task::spawn_blocking(move || drop(value)).await;
}
