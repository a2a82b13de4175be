//! Pool host leases: which session holds which shared host.
//!
//! A lease row is keyed by the host's `address:port` and says which session
//! (name and lineage) holds it since when, and whether the host is
//! quarantined (out of placement, with a reason). Every store that sessions
//! of one team share (SQLite for one user, PostgreSQL for a team) keeps the
//! same rows; taking leases is one transaction for all the hosts of an
//! apply, so two sessions never get the same host. The memory store keeps
//! them for tests and library users.
//!
//! This module owns the row type and the pure rule of a take; the SQL is in
//! the backends. It does not decide which host a node gets (the `ssh`
//! platform does).

use serde::{Deserialize, Serialize};

/// One host's lease row.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    /// `address:port`.
    pub host: String,
    /// The holding session's name, if leased.
    pub session: Option<String>,
    /// The holding session's lineage, if leased.
    pub lineage: Option<String>,
    /// RFC 3339 UTC: when the lease was taken.
    pub since: Option<String>,
    /// Why the host is out of placement, if it is.
    pub quarantined: Option<String>,
}

impl Lease {
    /// Why a session of `lineage` cannot take this host, if it cannot.
    pub fn refusal(&self, lineage: &str) -> Option<String> {
        if let Some(r) = &self.quarantined {
            return Some(format!("`{}` is quarantined: {r}", self.host));
        }
        match (&self.lineage, &self.session) {
            (Some(l), s) if l != lineage => Some(format!(
                "`{}` is leased by session `{}` since {}",
                self.host,
                s.as_deref().unwrap_or("?"),
                self.since.as_deref().unwrap_or("?")
            )),
            _ => None,
        }
    }

    /// Held by the session of `lineage`.
    pub fn held_by(&self, lineage: &str) -> bool {
        self.lineage.as_deref() == Some(lineage)
    }
}

/// The hosts of `wanted` that `rows` keep from a session of `lineage`, one
/// line each (empty: the take may go on). Shared by every backend.
pub fn conflicts(rows: &[Lease], lineage: &str, wanted: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter_map(|h| rows.iter().find(|r| &r.host == h))
        .filter_map(|r| r.refusal(lineage))
        .collect()
}
