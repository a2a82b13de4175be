//! Changing impairments of a running session (`tg impair`), without
//! editing the testbed: the platform changes the links in place and state
//! records the new impairment, so the next plan shows the way back to what
//! the file says as an update.
//!
//! Not here: how a platform impairs a link (`platform::netns::impair`).

use std::collections::BTreeMap;

use super::{exec::select_nodes, on_store, parse_addresses, Locked, OpsError, OpsResult};
use crate::addrs::InstanceAddr;
use crate::platform::{Cancel, Impairment, Spec, UpdateRequest};
use crate::state::InstanceRecord;

/// What `tg impair` does to the links it targets.
#[derive(Debug, Clone, PartialEq)]
pub enum ImpairChange {
    /// Set these keys (the others stay as they are).
    Set(Impairment),
    /// Remove every impairment.
    Clear,
}

/// One node link changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpairedLink {
    pub node: InstanceAddr,
    pub network: String,
    pub impair: Impairment,
}

/// Parse `delay=100ms,loss=5%` (what `-set` takes); `Err(why)`.
pub fn parse_set(text: &str) -> Result<Impairment, String> {
    let mut imp = Impairment::default();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE such as `delay=100ms`, found `{item}`"))?;
        imp.set(k.trim(), v.trim())
            .map_err(|why| format!("`{item}`: {why}"))?;
    }
    if imp.is_none() {
        return Err("expected at least one KEY=VALUE, such as `delay=100ms,loss=5%`".into());
    }
    Ok(imp)
}

/// Change the impairments of `target`'s links: `node.X`, `node.X[0]`
/// (every link of the nodes) or `network.Y` (every node link on it);
/// `network`: only the links to the network of that instance name.
pub async fn impair(
    locked: &Locked,
    target: &str,
    network: Option<&str>,
    change: &ImpairChange,
) -> OpsResult<Vec<ImpairedLink>> {
    let ctx = &locked.context;
    let snap = &locked.snapshot;
    if !locked.existed {
        return Err(OpsError::Usage(format!(
            "session `{}` does not exist: run `tg apply` first",
            ctx.session
        )));
    }
    let target = target.trim();
    // Each node record and the networks of its links to change (`None`: all).
    let picked: Vec<(&InstanceRecord, Option<Vec<String>>)> = if target.starts_with("network.") {
        let t = parse_addresses("impair", &[target.to_string()])?.remove(0);
        let nets: Vec<String> = snap
            .instances
            .values()
            .filter(|r| r.address.matches(&t))
            .filter_map(|r| match &r.spec {
                Spec::Network(n) => Some(n.name.clone()),
                _ => None,
            })
            .collect();
        if nets.is_empty() {
            return Err(OpsError::Usage(format!(
                "`{target}` matches no network recorded in session `{}`: see `tg state list`",
                ctx.session
            )));
        }
        snap.instances
            .values()
            .filter_map(|r| match &r.spec {
                Spec::Node(n) if n.interfaces.iter().any(|i| nets.contains(&i.network)) => {
                    Some((r, Some(nets.clone())))
                }
                _ => None,
            })
            .collect()
    } else {
        select_nodes(snap, ctx.session.as_str(), target)?
            .into_iter()
            .map(|r| (r, None))
            .collect()
    };
    let picked: Vec<_> = match network {
        None => picked,
        Some(only) => picked
            .into_iter()
            .filter(|(r, nets)| {
                nets.as_ref().is_none_or(|n| n.iter().any(|n| n == only))
                    && matches!(&r.spec, Spec::Node(n) if n.interfaces.iter().any(|i| i.network == only))
            })
            .map(|(r, _)| (r, Some(vec![only.to_string()])))
            .collect(),
    };
    if picked.is_empty() {
        return Err(OpsError::Usage(match network {
            Some(n) => format!("`{target}` has no node links to network `{n}`"),
            None => format!("`{target}` has no node links to impair"),
        }));
    }
    // Every link's result is checked as a file's `impair` is (`jitter`
    // needs `delay`, ...) before any link changes.
    for (rec, nets) in &picked {
        let Spec::Node(n) = &rec.spec else { continue };
        for iface in &n.interfaces {
            if nets.as_ref().is_some_and(|n| !n.contains(&iface.network)) {
                continue;
            }
            let result = match change {
                ImpairChange::Set(set) => iface.impair.overridden_by(set),
                ImpairChange::Clear => Impairment::default(),
            };
            if let Some(why) = result.problem() {
                return Err(OpsError::Usage(format!(
                    "`{}`'s link to `{}` would be {}: {why}",
                    rec.address,
                    iface.network,
                    serde_json::to_string(&result).unwrap_or_default()
                )));
            }
        }
    }
    let session = ctx.session_ref(&snap.lineage);
    let mut done = Vec::new();
    for (rec, nets) in picked {
        let Spec::Node(before) = &rec.spec else {
            continue;
        };
        let mut after = before.clone();
        for iface in &mut after.interfaces {
            if nets.as_ref().is_some_and(|n| !n.contains(&iface.network)) {
                continue;
            }
            iface.impair = match change {
                ImpairChange::Set(set) => iface.impair.overridden_by(set),
                ImpairChange::Clear => Impairment::default(),
            };
            done.push(ImpairedLink {
                node: rec.address.clone(),
                network: iface.network.clone(),
                impair: iface.impair,
            });
        }
        if after.interfaces.is_empty() {
            continue;
        }
        let platform = ctx.registry.get(&rec.platform).cloned().ok_or_else(|| {
            OpsError::Usage(format!("platform `{}` is not available here", rec.platform))
        })?;
        if let Some(problem) = platform.host_problem() {
            return Err(OpsError::Usage(problem));
        }
        let resp = platform
            .update(UpdateRequest {
                session: session.clone(),
                address: rec.address.to_string(),
                before: rec.spec.clone(),
                after: Spec::Node(after.clone()),
                private: rec.private.clone(),
                deps: BTreeMap::new(),
                cancel: Cancel::new(),
                trace: Default::default(),
            })
            .await
            .map_err(|e| OpsError::Usage(format!("`{}`: {}", rec.address, e.full())))?;
        let record = InstanceRecord {
            spec: Spec::Node(after),
            private: resp.private,
            ..rec.clone()
        };
        let name = ctx.session.to_string();
        on_store(&ctx.store, move |s| s.put_instance(&name, &record)).await?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_lists() {
        let i = parse_set("delay=100ms, loss=5%").unwrap();
        assert_eq!(i.summary(), "delay=100ms,loss=5%");
        assert!(parse_set("delay").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_set("").unwrap_err().contains("at least one"));
        assert!(parse_set("loss=5")
            .unwrap_err()
            .starts_with("`loss=5`: expected a percentage"));
        assert!(parse_set("speed=1")
            .unwrap_err()
            .contains("unknown impairment"));
    }
}
