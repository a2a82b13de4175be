//! Pool host leases in SQLite (the `leases` table, migration 0002).
//!
//! Takes are `BEGIN IMMEDIATE` transactions: two processes taking at once
//! are serialised by SQLite's write lock, and the second sees the first's
//! rows. Not here: which host a node gets (the `ssh` platform).

use rusqlite::{params, Connection, TransactionBehavior};

use super::SqliteStore;
use crate::state::leases::{conflicts, Lease};
use crate::state::{now_rfc3339, StateResult};

fn rows(conn: &Connection) -> rusqlite::Result<Vec<Lease>> {
    let mut st = conn
        .prepare("SELECT host, session, lineage, since, quarantined FROM leases ORDER BY host")?;
    let it = st.query_map([], |r| {
        Ok(Lease {
            host: r.get(0)?,
            session: r.get(1)?,
            lineage: r.get(2)?,
            since: r.get(3)?,
            quarantined: r.get(4)?,
        })
    })?;
    it.collect()
}

impl SqliteStore {
    pub(super) fn sql_leases(&self) -> StateResult<Vec<Lease>> {
        rows(&self.conn()).map_err(|e| self.err(e))
    }

    pub(super) fn sql_take_leases(
        &self,
        name: &str,
        lineage: &str,
        hosts: &[String],
    ) -> StateResult<Vec<String>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let found = rows(&tx).map_err(|e| self.err(e))?;
        let refused = conflicts(&found, lineage, hosts);
        if !refused.is_empty() {
            return Ok(refused);
        }
        let now = now_rfc3339();
        for h in hosts {
            if found.iter().any(|r| &r.host == h && r.held_by(lineage)) {
                continue;
            }
            tx.execute(
                "INSERT INTO leases (host, session, lineage, since) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (host) DO UPDATE SET session = excluded.session, \
                 lineage = excluded.lineage, since = excluded.since",
                params![h, name, lineage, now],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        self.wrote();
        Ok(Vec::new())
    }

    pub(super) fn sql_release_leases(&self, lineage: &str, hosts: &[String]) -> StateResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        for h in hosts {
            tx.execute(
                "UPDATE leases SET session = NULL, lineage = NULL, since = NULL \
                 WHERE host = ?1 AND lineage = ?2",
                params![h, lineage],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.execute(
            "DELETE FROM leases WHERE lineage IS NULL AND quarantined IS NULL",
            [],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        self.wrote();
        Ok(())
    }

    pub(super) fn sql_quarantine_host(&self, host: &str, reason: &str) -> StateResult<()> {
        self.conn()
            .execute(
                "INSERT INTO leases (host, quarantined) VALUES (?1, ?2) \
                 ON CONFLICT (host) DO UPDATE SET quarantined = excluded.quarantined",
                params![host, reason],
            )
            .map_err(|e| self.err(e))?;
        self.wrote();
        Ok(())
    }

    pub(super) fn sql_free_host(&self, host: &str) -> StateResult<Option<Lease>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let was = rows(&tx)
            .map_err(|e| self.err(e))?
            .into_iter()
            .find(|r| r.host == host);
        tx.execute("DELETE FROM leases WHERE host = ?1", params![host])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        self.wrote();
        Ok(was)
    }
}
