//! How the engine reports progress, and how it is told to stop.
//!
//! [`ApplyHook`] is implemented by whoever drives the engine (the CLI's
//! progress display, a test recorder); every method has an empty default.
//! [`Interrupt`] carries Ctrl-C into the walk: level 1 = start nothing new,
//! level 2 = abandon the work in flight.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::OpKind;
use crate::addrs::InstanceAddr;
use crate::plan::refresh::{RefreshHook, Refreshed};
use crate::platform::PlatformError;

/// Progress callbacks of plan (refresh) and apply.
pub trait ApplyHook: Send + Sync {
    /// Refresh of one recorded instance starts.
    fn refreshing(&self, _addr: &InstanceAddr) {}
    fn refreshed(&self, _addr: &InstanceAddr, _result: &Refreshed) {}
    /// An operation starts.
    fn pre_apply(&self, _addr: &InstanceAddr, _op: OpKind) {}
    /// An operation ended (`error` is `None` on success).
    fn post_apply(
        &self,
        _addr: &InstanceAddr,
        _op: OpKind,
        _error: Option<&PlatformError>,
        _elapsed: Duration,
    ) {
    }
    /// An operation will not run: a dependency failed, or the run was interrupted.
    fn skipped(&self, _addr: &InstanceAddr, _op: OpKind, _because: Option<&InstanceAddr>) {}
    /// An interrupt was seen: nothing new starts; `in_flight` operations finish.
    fn interrupted(&self, _in_flight: usize) {}
    /// A free-form progress note (`saving outputs`, `sweeping platform x`).
    fn note(&self, _message: &str) {}
}

/// A hook that reports nothing.
pub struct NoHook;
impl ApplyHook for NoHook {}

/// Adapts an [`ApplyHook`] to the refresh's [`RefreshHook`].
pub struct RefreshVia<'a>(pub &'a dyn ApplyHook);

impl RefreshHook for RefreshVia<'_> {
    fn refreshing(&self, addr: &InstanceAddr) {
        self.0.refreshing(addr)
    }
    fn refreshed(&self, addr: &InstanceAddr, result: &Refreshed) {
        self.0.refreshed(addr, result)
    }
}

/// A shareable interrupt level; clones share it.
#[derive(Clone, Default)]
pub struct Interrupt {
    level: Arc<AtomicU8>,
    notify: Arc<Notify>,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Raise the level by one (a Ctrl-C); returns the new level.
    pub fn raise(&self) -> u8 {
        let l = self.level.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        self.notify.notify_waiters();
        l
    }

    pub fn level(&self) -> u8 {
        self.level.load(Ordering::SeqCst)
    }

    /// Wait until the level is at least `at_least`.
    pub async fn wait_for(&self, at_least: u8) {
        loop {
            let notified = self.notify.notified();
            if self.level() >= at_least {
                return;
            }
            notified.await;
        }
    }
}
