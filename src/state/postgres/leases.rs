//! Pool host leases in PostgreSQL (the `leases` table, migration 0002).
//!
//! A take locks the table (`EXCLUSIVE`: reads go on, other takes wait) for
//! its one short transaction, so two agents taking the same host at the
//! same instant are serialised and the second sees the first's rows. Not
//! here: which host a node gets (the `ssh` platform).

use postgres::GenericClient;

use super::conn::Fail;
use super::PostgresStore;
use crate::state::leases::{conflicts, Lease};
use crate::state::{now_rfc3339, StateResult};

fn rows(client: &mut impl GenericClient) -> Result<Vec<Lease>, Fail> {
    let mut out = Vec::new();
    for r in client.query(
        "SELECT host, session, lineage, since, quarantined FROM leases ORDER BY host",
        &[],
    )? {
        out.push(Lease {
            host: r.try_get(0)?,
            session: r.try_get(1)?,
            lineage: r.try_get(2)?,
            since: r.try_get(3)?,
            quarantined: r.try_get(4)?,
        });
    }
    Ok(out)
}

impl PostgresStore {
    pub(super) fn sql_leases(&self) -> StateResult<Vec<Lease>> {
        self.run(false, |c| rows(&mut c.client))
    }

    pub(super) fn sql_take_leases(
        &self,
        name: &str,
        lineage: &str,
        hosts: &[String],
    ) -> StateResult<Vec<String>> {
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            tx.batch_execute("LOCK TABLE leases IN EXCLUSIVE MODE")?;
            let found = rows(&mut tx)?;
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
                    "INSERT INTO leases (host, session, lineage, since) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (host) DO UPDATE SET session = excluded.session, \
                     lineage = excluded.lineage, since = excluded.since",
                    &[h, &name, &lineage, &now],
                )?;
            }
            tx.commit().map_err(Fail::Commit)?;
            Ok(Vec::new())
        })
    }

    pub(super) fn sql_release_leases(&self, lineage: &str, hosts: &[String]) -> StateResult<()> {
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            tx.execute(
                "UPDATE leases SET session = NULL, lineage = NULL, since = NULL \
                 WHERE host = ANY($1::text[]) AND lineage = $2",
                &[&hosts, &lineage],
            )?;
            tx.execute(
                "DELETE FROM leases WHERE lineage IS NULL AND quarantined IS NULL",
                &[],
            )?;
            tx.commit().map_err(Fail::Commit)
        })
    }

    pub(super) fn sql_quarantine_host(&self, host: &str, reason: &str) -> StateResult<()> {
        self.run(true, |c| {
            c.client.execute(
                "INSERT INTO leases (host, quarantined) VALUES ($1, $2) \
                 ON CONFLICT (host) DO UPDATE SET quarantined = excluded.quarantined",
                &[&host, &reason],
            )?;
            Ok(())
        })
    }

    pub(super) fn sql_free_host(&self, host: &str) -> StateResult<Option<Lease>> {
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            let was = rows(&mut tx)?.into_iter().find(|r| r.host == host);
            tx.execute("DELETE FROM leases WHERE host = $1", &[&host])?;
            tx.commit().map_err(Fail::Commit)?;
            Ok(was)
        })
    }
}
