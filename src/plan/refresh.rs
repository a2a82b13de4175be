//! Refresh: what became of the recorded objects, read through their platforms.
//!
//! Read only: nothing is created, changed or written to state. A platform
//! that is not available, or a failing read, is an error diagnostic (a plan
//! made from unchecked state cannot be trusted); `-refresh=false` skips
//! this step.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::addrs::InstanceAddr;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::platform::registry::Registry;
use crate::platform::{ReadRequest, ReadResponse, SessionRef, Spec};
use crate::state::Snapshot;

/// What refresh found for one recorded instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Refreshed {
    Present(Spec),
    Gone,
}

/// What a refresh found.
#[derive(Debug, Clone, Default)]
pub struct Refresh {
    /// Every instance read, with what its platform sees.
    pub found: BTreeMap<InstanceAddr, Refreshed>,
    /// Instances not read (their platform cannot work here), one line per
    /// platform: shown in the plan.
    pub warnings: Vec<String>,
}

/// Progress of a refresh, for the reporter.
pub trait RefreshHook: Send + Sync {
    fn refreshing(&self, _addr: &InstanceAddr) {}
    fn refreshed(&self, _addr: &InstanceAddr, _result: &Refreshed) {}
}

/// A refresh hook that reports nothing.
pub struct NoRefreshHook;
impl RefreshHook for NoRefreshHook {}

/// Read every recorded instance through its platform, `parallelism` at a
/// time. A platform that is not available, or a failing read, is an error
/// diagnostic (the plan cannot be trusted without it).
pub async fn refresh(
    snapshot: &Snapshot,
    registry: &Registry,
    session: &SessionRef,
    parallelism: usize,
    hook: &dyn RefreshHook,
) -> Result<Refresh, Diagnostics> {
    let sem = Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let mut diags = Diagnostics::default();
    let mut out = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut unreadable: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for rec in snapshot.instances.values() {
        if let Some(problem) = registry.get(&rec.platform).and_then(|p| p.host_problem()) {
            // Taken as recorded, like `-refresh=false`, and said so once.
            unreadable
                .entry(rec.platform.clone())
                .or_insert((problem, 0))
                .1 += 1;
            continue;
        }
        let Some(platform) = registry.get(&rec.platform).cloned() else {
            diags.push(
                Diagnostic::error(format!(
                    "`{}` was made by platform `{}`, which is not available here",
                    rec.address, rec.platform
                ))
                .help("run tg where that platform is available, or forget the instance with `tg state rm`"),
            );
            continue;
        };
        hook.refreshing(&rec.address);
        let req = ReadRequest {
            session: session.clone(),
            address: rec.address.to_string(),
            spec: rec.spec.clone(),
            private: rec.private.clone(),
        };
        let addr = rec.address.clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (addr, platform.read(req).await)
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((addr, Ok(resp))) => {
                let r = match resp {
                    ReadResponse::Present { spec } => Refreshed::Present(spec),
                    ReadResponse::Gone => Refreshed::Gone,
                };
                hook.refreshed(&addr, &r);
                out.insert(addr, r);
            }
            Ok((addr, Err(e))) => {
                let mut d = Diagnostic::error(format!("refreshing `{addr}` failed: {}", e.message))
                    .help("fix the platform problem, or plan with `-refresh=false`");
                if let Some(detail) = e.detail {
                    d = d.detail(detail);
                }
                diags.push(d);
            }
            Err(e) => diags.push(Diagnostic::error(format!("a refresh task failed: {e}"))),
        }
    }
    for (platform, (problem, n)) in unreadable {
        warnings.push(format!(
            "{n} instance(s) of platform `{platform}` were not refreshed (taken as recorded): {problem}"
        ));
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(Refresh {
            found: out,
            warnings,
        })
    }
}
