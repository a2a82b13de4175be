//! The hosts of a testbed's `ssh` pools and what their leases say, shared
//! by `tg pool` and `tg serve`'s pool routes.
//!
//! Settings and lease rows in, hosts and their lease keys out; and which
//! store keeps each pool's leases ([`lease_stores`]: the pool's own `state`
//! URL, shared by every user of the pool, else the testbed's store). Not
//! here: changing leases (the state store's `quarantine_host`, `free_host`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::store::StoreAccess;
use crate::config::model::{PoolHost, StateBackendConfig};
use crate::config::Settings;
use crate::state::{Lease, StateStore};

/// One pool host: its pool (the `platform` block), itself, and its lease
/// key (`address:port`).
pub type PoolEntry = (String, PoolHost, String);

/// Every host of every `ssh` pool of `settings`.
pub fn hosts(settings: &Settings) -> Vec<PoolEntry> {
    settings
        .platforms
        .iter()
        .filter(|p| p.driver == "ssh")
        .flat_map(|p| {
            let port = p
                .attributes
                .get("port")
                .and_then(|v| v.as_u64())
                .unwrap_or(22);
            p.hosts.iter().map(move |h| {
                let key = format!("{}:{}", h.address, h.port.map_or(port, u64::from));
                (p.name.clone(), h.clone(), key)
            })
        })
        .collect()
}

/// The lease key of `host` (a host name, an address or `address:port`);
/// the error says what to give instead.
pub fn key_of(hosts: &[PoolEntry], host: &str) -> Result<String, String> {
    let found: Vec<&String> = hosts
        .iter()
        .filter(|(_, h, k)| h.name == host || k == host || h.address == host)
        .map(|(_, _, k)| k)
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] if host.contains(':') => Ok(host.to_string()),
        [] => Err(format!(
            "no pool host `{host}`: `tg pool list` shows the hosts (a name, or `address:port`)"
        )),
        _ => Err(format!(
            "`{host}` names several pool hosts: give `address:port`"
        )),
    }
}

/// `free`, `leased` or `quarantined`.
pub fn state(lease: Option<&Lease>) -> &'static str {
    match lease {
        Some(Lease {
            quarantined: Some(_),
            ..
        }) => "quarantined",
        Some(Lease {
            session: Some(_), ..
        }) => "leased",
        _ => "free",
    }
}

/// The `state` URL of `ssh` pool `pool` (where its leases live), if it
/// names one.
pub fn state_url<'a>(settings: &'a Settings, pool: &str) -> Option<&'a str> {
    settings
        .platforms
        .iter()
        .find(|p| p.driver == "ssh" && p.name == pool)
        .and_then(|p| p.attributes.get("state"))
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
}

/// The store of each `ssh` pool's leases, by pool name: the store its
/// `state` URL names (a `postgres://` URL or a SQLite path under the
/// testbed directory; one store per distinct URL), else `own`, the
/// testbed's store. With [`StoreAccess::Read`], a pool's SQLite file that
/// does not exist is read as an empty store, not created. Blocking:
/// opening a store may connect to a server.
pub fn lease_stores(
    testbed_dir: &Path,
    settings: &Settings,
    own: &Arc<dyn StateStore>,
    access: StoreAccess,
) -> super::OpsResult<BTreeMap<String, Arc<dyn StateStore>>> {
    let mut by_url: BTreeMap<&str, Arc<dyn StateStore>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for p in settings.platforms.iter().filter(|p| p.driver == "ssh") {
        let store = match state_url(settings, &p.name) {
            None => own.clone(),
            Some(url) => match by_url.get(url) {
                Some(s) => s.clone(),
                None => {
                    let s = super::store::open_store_for(
                        testbed_dir,
                        &StateBackendConfig::Sqlite,
                        Some(url),
                        access,
                    )?;
                    by_url.insert(url, s.clone());
                    s
                }
            },
        };
        out.insert(p.name.clone(), store);
    }
    Ok(out)
}

/// Give every platform of `registry` the store its leases live in
/// ([`lease_stores`]: a pool's own `state`, else `own`). Blocking.
pub fn use_lease_stores(
    leases_dir: &Path,
    settings: &Settings,
    own: &Arc<dyn StateStore>,
    registry: &crate::platform::registry::Registry,
    access: StoreAccess,
) -> super::OpsResult<()> {
    let stores = lease_stores(leases_dir, settings, own, access)?;
    for p in registry.all() {
        p.use_store(stores.get(p.name()).unwrap_or(own).clone());
    }
    Ok(())
}

/// The store that keeps the lease of `key`: its pool's (from
/// [`lease_stores`]), else `own` (a key no pool names).
pub fn store_of(
    hosts: &[PoolEntry],
    stores: &BTreeMap<String, Arc<dyn StateStore>>,
    own: &Arc<dyn StateStore>,
    key: &str,
) -> Arc<dyn StateStore> {
    hosts
        .iter()
        .find(|(_, _, k)| k == key)
        .and_then(|(p, _, _)| stores.get(p))
        .unwrap_or(own)
        .clone()
}
