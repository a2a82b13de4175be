//! Files kept with a session in SQLite (the `session_files` table,
//! migration 0003). A write is one `BEGIN IMMEDIATE` transaction: read the
//! revision there, check the writer's expectation, write, so two processes
//! writing one file are serialised by SQLite's write lock.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::SqliteStore;
use crate::state::files::{Expect, StoredFile};
use crate::state::{StateError, StateResult};

const COLUMNS: &str = "name, size, sha256, revision, updated_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredFile> {
    Ok(StoredFile {
        name: r.get(0)?,
        size: r.get::<_, i64>(1)?.max(0) as u64,
        sha256: r.get(2)?,
        revision: r.get(3)?,
        updated: r.get(4)?,
    })
}

impl SqliteStore {
    pub(super) fn sql_session_files(&self, session: &str) -> StateResult<Vec<StoredFile>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM session_files WHERE session = ?1 ORDER BY name"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![session], row)
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(|e| self.err(e))
    }

    pub(super) fn sql_read_session_file(
        &self,
        session: &str,
        name: &str,
    ) -> StateResult<Option<(StoredFile, Vec<u8>)>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {COLUMNS}, content FROM session_files WHERE session = ?1 AND name = ?2"
                ),
                params![session, name],
                |r| Ok((row(r)?, r.get::<_, Vec<u8>>(5)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub(super) fn sql_write_session_file(
        &self,
        session: &str,
        name: &str,
        content: &[u8],
        expect: Expect,
    ) -> StateResult<StoredFile> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let found: Option<i64> = tx
            .query_row(
                "SELECT revision FROM session_files WHERE session = ?1 AND name = ?2",
                params![session, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if !expect.allows(found) {
            return Err(StateError::FileChanged {
                session: session.to_string(),
                name: name.to_string(),
            });
        }
        let written = StoredFile::describe(name, content, Expect::next(found));
        tx.execute(
            "INSERT INTO session_files (session, name, content, size, sha256, revision, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (session, name) DO UPDATE SET \
             content = excluded.content, size = excluded.size, sha256 = excluded.sha256, \
             revision = excluded.revision, updated_at = excluded.updated_at",
            params![
                session,
                name,
                content,
                written.size as i64,
                written.sha256,
                written.revision,
                written.updated
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        self.wrote();
        Ok(written)
    }

    pub(super) fn sql_remove_session_files(
        &self,
        session: &str,
        name: Option<&str>,
    ) -> StateResult<()> {
        let conn = self.conn();
        let done = match name {
            Some(n) => conn.execute(
                "DELETE FROM session_files WHERE session = ?1 AND name = ?2",
                params![session, n],
            ),
            None => conn.execute(
                "DELETE FROM session_files WHERE session = ?1",
                params![session],
            ),
        };
        done.map_err(|e| self.err(e))?;
        self.wrote();
        Ok(())
    }

    pub(super) fn sql_sessions_with_file(&self, name: &str) -> StateResult<Vec<String>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT session FROM session_files WHERE name = ?1 ORDER BY session")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![name], |r| r.get(0))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<String>>>());
        rows.map_err(|e| self.err(e))
    }
}
