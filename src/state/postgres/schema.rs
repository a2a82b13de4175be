//! The schema of a PostgreSQL state database and its migrations.
//!
//! Owns reading the schema version without writing anything, refusing a
//! database that is not tg state or was written by a newer tg, and applying
//! the migrations in `state/postgres/` in one transaction serialised by an
//! advisory lock, so processes that start on an empty database at once
//! migrate it once. It does not read or write sessions: the store does.

use postgres::{Client, GenericClient};

use super::conn::{column, Fail};
use crate::state::codec::damaged;
use crate::state::{now_rfc3339, StateError, SCHEMA_VERSION};

/// Migrations by the schema version they lead to, in order.
pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../state/postgres/0001_init.sql")),
    (2, include_str!("../../../state/postgres/0002_leases.sql")),
    (
        3,
        include_str!("../../../state/postgres/0003_session_files.sql"),
    ),
];

/// The advisory lock key that serializes migrations (`tg_migr` in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0074_675f_6d69_6772;

/// The database's schema version (0 for an empty database), or why this
/// database is not tg state.
fn schema_version(location: &str, client: &mut impl GenericClient) -> Result<i64, Fail> {
    // `pg_tables`, not `to_regclass`: a fresh snapshot sees tables that
    // another process created while this one waited for the lock.
    let row = client.query_one(
        "SELECT coalesce(bool_or(tablename = 'schema_migrations'), false), \
                coalesce(bool_or(tablename = 'sessions'), false) \
         FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
        &[],
    )?;
    let (has_migrations, has_sessions): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
    if has_migrations {
        let row = client.query_one("SELECT max(version)::int8 FROM schema_migrations", &[])?;
        let v: Option<i64> = column(
            location,
            &row,
            0,
            "schema_migrations.version",
            "the schema version",
        )?;
        return Ok(v.unwrap_or(0));
    }
    if has_sessions {
        return Err(damaged(
            location,
            "it has a `sessions` table but no `schema_migrations` table, so it is not tg state; use another database",
        )
        .into());
    }
    Ok(0)
}

/// Bring the schema up to date: read the version without writing, then
/// apply every newer migration in one transaction that holds an advisory
/// lock and reads the version again.
pub(super) fn migrate(location: &str, client: &mut Client) -> Result<(), Fail> {
    let too_new = |found: i64| -> Fail {
        StateError::TooNew {
            location: location.to_string(),
            found,
            known: SCHEMA_VERSION,
        }
        .into()
    };
    let found = schema_version(location, client)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(found));
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])?;
    let found = schema_version(location, &mut tx)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(found));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at, tg_version) VALUES ($1, $2, $3)",
            &[version, &now_rfc3339(), &env!("CARGO_PKG_VERSION")],
        )?;
    }
    tx.commit().map_err(Fail::Commit)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_without_gaps_up_to_the_schema_version() {
        for (i, (version, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }
}
