//! `tg pool list [-json]`, `tg pool quarantine HOST -reason TEXT`,
//! `tg pool release HOST [-force]`: the hosts of the testbed's `ssh` pools
//! and their leases in the state store.

use std::sync::Arc;

use serde_json::json;

use crate::cli::args::PoolCommand;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::pool::{self, PoolEntry};
use crate::ops::StoreAccess;
use crate::state::{Lease, StateStore};

pub fn run(ctx: &Ctx, cmd: &PoolCommand) -> i32 {
    match run_inner(ctx, cmd) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

/// The store of each pool's leases, by pool name.
type Stores = std::collections::BTreeMap<String, Arc<dyn StateStore>>;

/// Every host of every `ssh` pool of the testbed: (pool, host, key), the
/// store each pool keeps its leases in (its own `state`, else the
/// testbed's), and the testbed's store.
fn pool_hosts(
    ctx: &Ctx,
    access: StoreAccess,
) -> CmdResult<(Vec<PoolEntry>, Stores, Arc<dyn StateStore>)> {
    let (ws, settings) = engine::settings(ctx);
    let settings = settings.map_err(|e| {
        report::fail(format!(
            "the testbed does not load ({} error(s)): run `tg validate`",
            e.diagnostics.error_count()
        ))
    })?;
    let own = engine::store_for(ctx, access)?;
    let stores =
        pool::lease_stores(ws.leases_dir(), &settings, &own, access).map_err(report::fail)?;
    Ok((pool::hosts(&settings), stores, own))
}

/// The lease key of `host` (a host name or `address:port`).
fn key_of(hosts: &[PoolEntry], host: &str) -> CmdResult<String> {
    pool::key_of(hosts, host).map_err(report::fail)
}

fn status(l: Option<&Lease>) -> String {
    match l {
        Some(Lease {
            quarantined: Some(r),
            ..
        }) => format!("quarantined: {r}"),
        Some(Lease {
            session: Some(s),
            since,
            ..
        }) => format!(
            "leased by session `{s}` since {}",
            since.as_deref().unwrap_or("?")
        ),
        _ => "free".into(),
    }
}

fn run_inner(ctx: &Ctx, cmd: &PoolCommand) -> CmdResult<i32> {
    // A quarantine is recorded even before the testbed's first apply.
    let access = match cmd {
        PoolCommand::Quarantine { .. } => StoreAccess::Write,
        _ => StoreAccess::Read,
    };
    let (hosts, stores, own) = pool_hosts(ctx, access)?;
    match cmd {
        PoolCommand::List { json } => list(&hosts, &stores, &own, *json),
        PoolCommand::Quarantine { host, reason } => {
            let key = key_of(&hosts, host)?;
            let store = pool::store_of(&hosts, &stores, &own, &key);
            if reason.trim().is_empty() {
                return Err(report::fail(
                    "`-reason` is empty: say why the host is out of placement",
                ));
            }
            store.quarantine_host(&key, reason).map_err(report::fail)?;
            println!("Host {key} is quarantined: no new session is placed on it.");
            Ok(0)
        }
        PoolCommand::Release { host, force } => {
            let key = key_of(&hosts, host)?;
            let store = pool::store_of(&hosts, &stores, &own, &key);
            let rows = store.leases().map_err(report::fail)?;
            let Some(row) = rows.iter().find(|r| r.host == key) else {
                println!("Host {key} is free already.");
                return Ok(0);
            };
            if let Some(s) = &row.session {
                // The session is in the pool's store or in this testbed's.
                let holder = match store.lock_holder(s).map_err(report::fail)? {
                    Some(h) => Some(h),
                    None => own.lock_holder(s).map_err(report::fail)?,
                };
                if let Some(h) = holder {
                    return Err(report::fail(format!(
                        "host {key} is leased by session `{s}`, whose lock is held ({} by {}@{} pid {}): let it finish, or `tg destroy` it",
                        h.operation, h.user, h.host, h.pid
                    )));
                }
            }
            if !force {
                let ok = crate::cli::prompt::confirm(
                    &format!("\nRelease host {key} ({})?", status(Some(row))),
                    "The session that leased it may still have work on it; its reset does not run.",
                    "`tg pool release`",
                )?;
                if !ok {
                    println!("\nRelease cancelled.");
                    return Ok(1);
                }
            }
            store.free_host(&key).map_err(report::fail)?;
            println!("Host {key} is free.");
            Ok(0)
        }
    }
}

fn list(
    hosts: &[PoolEntry],
    stores: &Stores,
    own: &Arc<dyn StateStore>,
    as_json: bool,
) -> CmdResult<i32> {
    // Each pool's rows, from the store that keeps them.
    let mut rows: std::collections::BTreeMap<&str, Vec<Lease>> = Default::default();
    for (pool, _, _) in hosts {
        if !rows.contains_key(pool.as_str()) {
            let store = stores.get(pool).unwrap_or(own);
            rows.insert(pool, store.leases().map_err(report::fail)?);
        }
    }
    let find = |pool: &str, k: &str| {
        rows.get(pool)
            .and_then(|rs| rs.iter().find(|r| r.host == k))
    };
    if as_json {
        let doc = json!({
            "format_version": "1.0",
            "hosts": hosts.iter().map(|(pool, h, key)| {
                let l = find(pool, key);
                json!({
                    "pool": pool,
                    "name": h.name,
                    "host": key,
                    "state": pool::state(l),
                    "session": l.and_then(|l| l.session.clone()),
                    "since": l.and_then(|l| l.since.clone()),
                    "quarantined": l.and_then(|l| l.quarantined.clone()),
                    "profile": h.profile,
                    "image": h.image,
                    "labels": h.labels,
                    "cpus": h.cpus,
                    "memory_mib": h.memory_mib,
                })
            }).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(0);
    }
    if hosts.is_empty() {
        println!("The testbed declares no ssh pool hosts.");
        return Ok(0);
    }
    for (pool, h, key) in hosts {
        let mut attrs = Vec::new();
        if let Some(p) = &h.profile {
            attrs.push(format!("profile={p}"));
        }
        if let Some(i) = &h.image {
            attrs.push(format!("image={i}"));
        }
        attrs.extend(h.labels.iter().map(|(k, v)| format!("{k}={v}")));
        println!(
            "{pool}/{:<12} {key:<21} {:<50} {}",
            h.name,
            status(find(pool, key)),
            attrs.join(" ")
        );
    }
    Ok(0)
}
