//! Files kept with a session in PostgreSQL (the `session_files` table,
//! migration 0003). A write is one transaction that locks the file's row
//! (`FOR UPDATE`) or, for a new file, inserts it with `ON CONFLICT DO
//! NOTHING`, so two servers writing one file at once are serialised and the
//! second is refused when it expected what the first replaced.

use postgres::GenericClient;

use super::conn::Fail;
use super::PostgresStore;
use crate::state::files::{Expect, StoredFile};
use crate::state::{StateError, StateResult};

const COLUMNS: &str = "name, size, sha256, revision, updated_at";

fn row(r: &postgres::Row) -> Result<StoredFile, Fail> {
    Ok(StoredFile {
        name: r.try_get(0)?,
        size: r.try_get::<_, i64>(1)?.max(0) as u64,
        sha256: r.try_get(2)?,
        revision: r.try_get(3)?,
        updated: r.try_get(4)?,
    })
}

fn write(
    client: &mut impl GenericClient,
    session: &str,
    name: &str,
    content: &[u8],
    expect: Expect,
) -> Result<StoredFile, Fail> {
    let refused = || {
        Fail::State(StateError::FileChanged {
            session: session.to_string(),
            name: name.to_string(),
        })
    };
    let found: Option<i64> = client
        .query_opt(
            "SELECT revision FROM session_files WHERE session = $1 AND name = $2 FOR UPDATE",
            &[&session, &name],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    if !expect.allows(found) {
        return Err(refused());
    }
    let w = StoredFile::describe(name, content, Expect::next(found));
    let size = w.size as i64;
    let changed = match found {
        // `Any` replaces whatever a concurrent first write put there.
        None if expect == Expect::Any => client.execute(
            "INSERT INTO session_files (session, name, content, size, sha256, revision, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session, name) DO UPDATE SET \
             content = excluded.content, size = excluded.size, sha256 = excluded.sha256, \
             revision = session_files.revision + 1, updated_at = excluded.updated_at",
            &[&session, &name, &content, &size, &w.sha256, &w.revision, &w.updated],
        )?,
        // A concurrent first write of the same file inserts nothing here.
        None => client.execute(
            "INSERT INTO session_files (session, name, content, size, sha256, revision, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session, name) DO NOTHING",
            &[&session, &name, &content, &size, &w.sha256, &w.revision, &w.updated],
        )?,
        Some(_) => client.execute(
            "UPDATE session_files SET content = $3, size = $4, sha256 = $5, revision = $6, \
             updated_at = $7 WHERE session = $1 AND name = $2",
            &[&session, &name, &content, &size, &w.sha256, &w.revision, &w.updated],
        )?,
    };
    if changed == 1 {
        Ok(w)
    } else {
        Err(refused())
    }
}

impl PostgresStore {
    pub(super) fn sql_session_files(&self, session: &str) -> StateResult<Vec<StoredFile>> {
        self.run(false, |c| {
            c.client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM session_files WHERE session = $1 ORDER BY name COLLATE \"C\""
                    ),
                    &[&session],
                )?
                .iter()
                .map(row)
                .collect()
        })
    }

    pub(super) fn sql_read_session_file(
        &self,
        session: &str,
        name: &str,
    ) -> StateResult<Option<(StoredFile, Vec<u8>)>> {
        self.run(false, |c| {
            c.client
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS}, content FROM session_files \
                         WHERE session = $1 AND name = $2"
                    ),
                    &[&session, &name],
                )?
                .map(|r| Ok((row(&r)?, r.try_get::<_, Vec<u8>>(5)?)))
                .transpose()
        })
    }

    pub(super) fn sql_write_session_file(
        &self,
        session: &str,
        name: &str,
        content: &[u8],
        expect: Expect,
    ) -> StateResult<StoredFile> {
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            let written = write(&mut tx, session, name, content, expect)?;
            tx.commit().map_err(Fail::Commit)?;
            Ok(written)
        })
    }

    pub(super) fn sql_remove_session_files(
        &self,
        session: &str,
        name: Option<&str>,
    ) -> StateResult<()> {
        self.run(true, |c| {
            match name {
                Some(n) => c.client.execute(
                    "DELETE FROM session_files WHERE session = $1 AND name = $2",
                    &[&session, &n],
                )?,
                None => c
                    .client
                    .execute("DELETE FROM session_files WHERE session = $1", &[&session])?,
            };
            Ok(())
        })
    }

    pub(super) fn sql_sessions_with_file(&self, name: &str) -> StateResult<Vec<String>> {
        self.run(false, |c| {
            c.client
                .query(
                    "SELECT session FROM session_files WHERE name = $1 ORDER BY session COLLATE \"C\"",
                    &[&name],
                )?
                .iter()
                .map(|r| r.try_get(0).map_err(Fail::from))
                .collect()
        })
    }
}
