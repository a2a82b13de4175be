//! The hosts of a testbed's `ssh` pools and what their leases say, shared
//! by `tg pool` and `tg serve`'s pool routes.
//!
//! Pure: settings and lease rows in, hosts and their lease keys out. Not
//! here: changing leases (the state store's `quarantine_host`, `free_host`).

use crate::config::model::PoolHost;
use crate::config::Settings;
use crate::state::Lease;

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
