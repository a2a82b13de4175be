//! Opening a SQLite state file safely, and its schema.
//!
//! Owns the rules of `state/README.md` for the file itself: only a missing
//! file makes a new store, and a new store appears whole (it is made under a
//! temporary name, migrated, and linked into place only if the name is still
//! free, so a second process never sees a half-made file). An existing file
//! that is empty, not a SQLite database, truncated, damaged, a SQLite
//! database that is not a tg state, a directory, or not writable is refused
//! without a byte written to it; one written by a newer tg is refused as
//! [`StateError::TooNew`]. It also owns the migrations in `state/sqlite/`
//! and the connection settings (WAL journal, `synchronous`, foreign keys).
//! It does not read or write sessions: the store does.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::{db_err, io_err, BUSY_TIMEOUT};
use crate::state::codec::damaged;
use crate::state::{now_rfc3339, StateError, StateResult, SCHEMA_VERSION};

/// The schema migrations, in order: `(version, SQL)`. Version N is the file
/// `state/sqlite/000N_*.sql`; the last version is [`SCHEMA_VERSION`].
pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../state/sqlite/0001_init.sql")),
    (2, include_str!("../../../state/sqlite/0002_leases.sql")),
    (
        3,
        include_str!("../../../state/sqlite/0003_session_files.sql"),
    ),
];

/// The first 16 bytes of every SQLite database file.
pub(super) const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The size of a SQLite database header; a file shorter than this cannot be
/// a database.
const SQLITE_HEADER_LEN: usize = 100;

/// How many pages the write-ahead log may hold before a commit copies them
/// into the file (SQLite's `wal_autocheckpoint`, 1,000 by default). tg
/// keeps the log when it closes the file (no checkpoint, no fsync at
/// every exit), and the next process to open the file reads the log
/// first: 256 pages (1 MiB) keep that read short. (The copy is passive: a
/// reader, or one transaction bigger than that, lets the log grow past it
/// until the next commit after them.)
pub(super) const WAL_AUTOCHECKPOINT: i64 = 256;

/// What to tell the user about a refused file.
const MOVE_IT: &str = "only a missing file starts a new state";

/// Open the state file at `path` (see the module comment): a connection
/// with the settings every store connection has, at [`SCHEMA_VERSION`],
/// and whether it is in WAL mode.
pub(super) fn open(path: &Path, location: &str) -> StateResult<(Connection, bool)> {
    create_parent(path, location)?;
    if !exists(path, location)? {
        if has_wal(path) {
            return Err(orphan_wal(path, location));
        }
        create_new(path, location)?;
    }
    check_file(path, location)?;

    // Nothing below writes to the file until the version is known to be
    // one this tg understands: opening, the busy timeout and reading the
    // catalog are all read-only.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let kept_log = has_wal(path);
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| db_err(location, e))?;
    // Before anything can refuse the file: closing a refused file's
    // connection must not copy a log it found into it. (Without one, the
    // close removes the empty log the open made, as SQLite does.)
    if kept_log {
        no_checkpoint_on_close(&conn, location)?;
    }
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| db_err(location, e))?;
    let found = schema_version(&conn, location)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(location, found));
    }
    if found == 0 {
        return Err(damaged(
            location,
            format!("it is an empty SQLite database, not a tg state; {MOVE_IT}: move it away"),
        ));
    }
    let wal = configure(&conn, location)?;
    if found < SCHEMA_VERSION {
        migrate(&mut conn, location)?;
    }
    if wal {
        keep_wal_on_close(&conn, location)?;
    }
    Ok((conn, wal))
}

/// Does the state file exist? A dangling symlink or anything that is not a
/// regular file is refused (never replaced).
fn exists(path: &Path, location: &str) -> StateResult<bool> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(
            location,
            &format!("cannot look at `{}`", path.display()),
            e,
        )),
        Ok(m) if m.file_type().is_symlink() => match fs::metadata(path) {
            Ok(_) => Ok(true),
            Err(_) => Err(damaged(
                location,
                format!(
                    "`{}` is a symbolic link to a file that does not exist; restore its target or remove the link",
                    path.display()
                ),
            )),
        },
        Ok(_) => Ok(true),
    }
}

/// Refuse an existing file that cannot be a tg state before SQLite sees
/// it: not a regular file, not writable, empty, not a SQLite database, or
/// shorter than its own header says.
fn check_file(path: &Path, location: &str) -> StateResult<()> {
    let meta = fs::metadata(path)
        .map_err(|e| io_err(location, &format!("cannot look at `{}`", path.display()), e))?;
    if meta.is_dir() {
        return Err(damaged(
            location,
            format!(
                "`{}` is a directory, expected the state file; {MOVE_IT}: move it away",
                path.display()
            ),
        ));
    }
    if !meta.is_file() {
        return Err(damaged(
            location,
            format!(
                "`{}` is not a regular file; {MOVE_IT}: move it away",
                path.display()
            ),
        ));
    }
    if nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(StateError::Backend {
            location: location.to_string(),
            message: format!(
                "the state file `{}` is not writable (mode {:o}); make it writable for this user, it was not touched",
                path.display(),
                meta.mode() & 0o7777
            ),
        });
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(StateError::Backend {
            location: location.to_string(),
            message: format!(
                "the folder `{}` is not writable, and SQLite keeps its journal next to the state file; make it writable, the state was not touched",
                dir.display()
            ),
        });
    }

    let header = read_header(path, location)?;
    if header.is_empty() {
        return Err(damaged(
            location,
            format!(
                "the file is empty (0 bytes); {MOVE_IT}: move it away or restore it from a backup"
            ),
        ));
    }
    if !header.starts_with(SQLITE_MAGIC) {
        return Err(damaged(location, "it is not a SQLite database"));
    }
    if header.len() < SQLITE_HEADER_LEN {
        return Err(damaged(
            location,
            "the file is shorter than a SQLite database header (truncated)",
        ));
    }
    // The header's own page count is valid when its "valid-for" number
    // equals the change counter (SQLite's file format, section 1.3).
    let be32 = |h: &[u8], at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let expected = |h: &[u8]| -> Option<u64> {
        let page_size = match u16::from_be_bytes([h[16], h[17]]) {
            1 => 65_536,
            n => u64::from(n),
        };
        let pages = u64::from(be32(h, 28));
        (be32(h, 92) == be32(h, 24) && pages > 0).then_some(pages * page_size)
    };
    // A file shorter than its header says is truncated, unless its
    // write-ahead log holds the missing pages: a checkpoint writes page 1
    // (the new size) first and extends the file as it copies the pages
    // after it, so one running in another process, or one that stopped
    // half way (a killed tg, a full disk), leaves the file short until
    // the next checkpoint finishes the copy. With a log, SQLite reads the
    // file through it to decide. The length is read after the header; the
    // file never shrinks (tg does not vacuum).
    let Some(want) = expected(&header) else {
        return Ok(());
    };
    let len = fs::metadata(path).map(|m| m.len()).unwrap_or(meta.len());
    if len >= want {
        return Ok(());
    }
    if has_wal(path) {
        return if readable_through_wal(path, location)? {
            Ok(())
        } else {
            Err(truncated(location, want, len))
        };
    }
    // A checkpoint may have finished (and removed the log) in between:
    // the file is whole then.
    let header = read_header(path, location)?;
    if header.len() < SQLITE_HEADER_LEN {
        return Err(damaged(
            location,
            "the file is shorter than a SQLite database header (truncated)",
        ));
    }
    let len = fs::metadata(path).map(|m| m.len()).unwrap_or(meta.len());
    match expected(&header) {
        Some(want) if len < want => Err(truncated(location, want, len)),
        _ => Ok(()),
    }
}

fn truncated(location: &str, want: u64, len: u64) -> StateError {
    damaged(
        location,
        format!("the file is truncated: its header says {want} bytes, the file has {len}"),
    )
}

/// Does SQLite read every page of the database at `path`, through its
/// write-ahead log, as sound? `false` only when it finds damage; a probe
/// that cannot run (busy, out of descriptors) is an error, not damage.
/// Read only: the connection opens the file read-only and never copies
/// the log into it.
fn readable_through_wal(path: &Path, location: &str) -> StateResult<bool> {
    let corrupt = |e: &rusqlite::Error| {
        matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
        )
    };
    let checked = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| {
        let _ = conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        );
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
    });
    match checked {
        Ok(result) => Ok(result == "ok"),
        Err(e) if corrupt(&e) => Ok(false),
        Err(e) => Err(db_err(location, e)),
    }
}

/// The first bytes of the file, up to a SQLite header's length.
fn read_header(path: &Path, location: &str) -> StateResult<Vec<u8>> {
    let mut header = Vec::with_capacity(SQLITE_HEADER_LEN);
    fs::File::open(path)
        .and_then(|f| f.take(SQLITE_HEADER_LEN as u64).read_to_end(&mut header))
        .map_err(|e| io_err(location, &format!("cannot read `{}`", path.display()), e))?;
    Ok(header)
}

/// The write-ahead log of the database at `path` (`NAME-wal`).
pub(super) fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Has the database a non-empty write-ahead log next to it (`NAME-wal`)?
pub(crate) fn has_wal(path: &Path) -> bool {
    // SQLite keeps the log next to the file a symbolic link points to.
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    fs::metadata(wal_path(&path)).is_ok_and(|m| m.len() > 0)
}

/// Create the state file's folder (mode 0700: state may hold secrets) when
/// missing. An existing folder is left as it is.
fn create_parent(path: &Path, location: &str) -> StateResult<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| {
            io_err(
                location,
                &format!("cannot create the folder `{}`", parent.display()),
                e,
            )
        })
}

/// Make a new, migrated state under a temporary name next to `path`
/// (mode 0600) and link it into place unless another process got there
/// first (then its file is used).
fn create_new(path: &Path, location: &str) -> StateResult<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state.db".into());
    let tmp: PathBuf =
        path.with_file_name(format!(".{name}.new-{}", uuid::Uuid::new_v4().simple()));
    let cleanup = TempFile(&tmp);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_err(location, &format!("cannot create `{}`", tmp.display()), e))?;
    {
        let mut conn = Connection::open_with_flags(
            &tmp,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db_err(location, e))?;
        configure(&conn, location)?;
        migrate(&mut conn, location)?;
        // Closing the last connection checkpoints the WAL into the file
        // and removes it: the file is whole on its own.
        conn.close().map_err(|(_, e)| db_err(location, e))?;
    }
    match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(
            location,
            &format!("cannot create `{}`", path.display()),
            e,
        )),
    }
    .map(|()| drop(cleanup))
}

/// Removes a temporary database (and its journal files) when dropped.
struct TempFile<'a>(&'a Path);

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.as_os_str().to_owned();
            p.push(suffix);
            let _ = fs::remove_file(PathBuf::from(p));
        }
    }
}

/// The settings of every connection: WAL journal, `synchronous=NORMAL`
/// (a commit survives a killed process; the store switches to `FULL` for
/// the commits that must survive a power loss too, see `docs/state.md`),
/// foreign keys on.
/// Whether the file is in WAL mode.
fn configure(conn: &Connection, location: &str) -> StateResult<bool> {
    let wal = enable_wal(conn, location)?;
    // Without WAL, only FULL keeps a power loss from damaging the file.
    conn.pragma_update(None, "synchronous", if wal { "NORMAL" } else { "FULL" })
        .map_err(|e| db_err(location, e))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| db_err(location, e))?;
    Ok(wal)
}

/// A store's connection leaves its write-ahead log in place when it
/// closes (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`; set in [`open`] as soon as
/// the connection exists when a log is there already): closing then costs
/// no checkpoint (two fsyncs), and the next process's first commit no
/// fsync of a new log's header.
/// Commits made with `synchronous=NORMAL` are in the log either way (they
/// survive a killed process); [`super::SqliteStore`]'s `sync` makes them
/// survive a power loss by syncing the log. The log is copied into the
/// file by the commit that takes it past [`WAL_AUTOCHECKPOINT`] pages.
/// Not for the connection that makes a new file under a temporary name:
/// that one must leave the file whole.
fn keep_wal_on_close(conn: &Connection, location: &str) -> StateResult<()> {
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)
        .map_err(|e| db_err(location, e))?;
    no_checkpoint_on_close(conn, location)
}

fn no_checkpoint_on_close(conn: &Connection, location: &str) -> StateResult<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map(drop)
    .map_err(|e| db_err(location, e))
}

/// A write-ahead log without its state file: the file was moved or
/// deleted, and its latest commits are in this log. A new state made next
/// to it would be read through the old log (SQLite cannot tell them
/// apart), so nothing is made until the log goes with its file.
fn orphan_wal(path: &Path, location: &str) -> StateError {
    let wal = wal_path(path);
    damaged(
        location,
        format!(
            "`{}` is missing but its write-ahead log `{}` is there, with the latest changes of that state: put the state file back next to it, or move the log away too (and `{}-shm`) to start a new state",
            path.display(),
            wal.display(),
            path.display(),
        ),
    )
}

/// The schema version recorded in the file (0 for a database without
/// tables). Read-only.
pub(super) fn schema_version(conn: &Connection, location: &str) -> StateResult<i64> {
    let err = |e| db_err(location, e);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(err)?;
    if !tables.iter().any(|t| t == "schema_migrations") {
        if tables.is_empty() {
            return Ok(0);
        }
        return Err(damaged(
            location,
            "it is a SQLite database but not a tg state (it has no `schema_migrations` table)",
        ));
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
    .map_err(|e| match e {
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
            damaged(
                location,
                format!("`schema_migrations.version` cannot be read ({e})"),
            )
        }
        e => err(e),
    })
}

/// Switch to the WAL journal; whether that worked. Changing the journal
/// mode needs the database to itself for a moment, so retry while another
/// process is opening it too.
fn enable_wal(conn: &Connection, location: &str) -> StateResult<bool> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            // A file system without shared memory support keeps the rollback
            // journal.
            Ok(mode) => return Ok(mode.eq_ignore_ascii_case("wal")),
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(db_err(location, e)),
        }
    }
}

/// Apply every migration newer than the file's version, all in one
/// `BEGIN IMMEDIATE` transaction. The version is read again inside it: a
/// process that opened the same file a moment earlier may have migrated it
/// already (or a newer tg may have).
fn migrate(conn: &mut Connection, location: &str) -> StateResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| db_err(location, e))?;
    let found = schema_version(&tx, location)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(location, found));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let failed = |e: rusqlite::Error| StateError::Backend {
            location: location.to_string(),
            message: format!("migration {version:04} failed: {e}"),
        };
        tx.execute_batch(sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at, tg_version) VALUES (?1, ?2, ?3)",
            params![version, now_rfc3339(), env!("CARGO_PKG_VERSION")],
        )
        .map_err(failed)?;
    }
    tx.commit().map_err(|e| db_err(location, e))
}

fn too_new(location: &str, found: i64) -> StateError {
    StateError::TooNew {
        location: location.to_string(),
        found,
        known: SCHEMA_VERSION,
    }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use super::*;
    use crate::state::StateStore;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    /// A database of a few pages in rollback-journal mode (no WAL).
    fn some_pages(path: &Path, journal: &str) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(path).unwrap();
        c.pragma_update(None, "journal_mode", journal).unwrap();
        c.execute_batch("CREATE TABLE t(x BLOB)").unwrap();
        for _ in 0..20 {
            c.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        c
    }

    /// Cut the file at `path` to half its length: it is refused as truncated.
    fn assert_half_is_truncated(path: &Path) {
        let len = fs::metadata(path).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let e = check_file(path, "here").unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn a_truncated_file_is_refused_but_not_one_being_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.db");
        drop(some_pages(&path, "delete"));
        assert_half_is_truncated(&path);

        // Writers and checkpoints in another connection: opening meanwhile
        // never calls the file damaged.
        let path = dir.path().join("busy.db");
        let c = some_pages(&path, "wal");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    c.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                        .unwrap();
                    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
                }
            })
        };
        for _ in 0..500 {
            if let Err(e) = check_file(&path, "here") {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("a busy store was refused: {e}");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
    }

    /// A store whose newest pages are only in its kept log (the file has
    /// fewer pages than the state): `n` instances over a checkpointed file.
    fn state_in_its_log(path: &Path, n: u64) {
        let store = SqliteStore::open(path).unwrap();
        store.create_session("s").unwrap();
        let writes: Vec<_> = (0..n)
            .map(|i| crate::state::StateWrite::Put(super::super::tests::record(i)))
            .collect();
        store.write_batch("s", &writes).unwrap();
        drop(store);
    }

    /// What a checkpoint leaves when it stops half way (tg killed, a full
    /// disk): page 1, with the new page count, copied into the file, the
    /// pages after it not yet. The log still has them: not damage.
    #[test]
    fn a_checkpoint_stopped_half_way_is_not_a_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        state_in_its_log(&path, 400);
        let wal = fs::read(wal_path(&path)).unwrap();
        let page = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as usize;
        // The log's last copy of page 1.
        let mut last = None;
        let mut at = 32;
        while at + 24 + page <= wal.len() {
            if u32::from_be_bytes(wal[at..at + 4].try_into().unwrap()) == 1 {
                last = Some(&wal[at + 24..at + 24 + page]);
            }
            at += 24 + page;
        }
        let page1 = last.expect("page 1 is in the log");
        let before = fs::metadata(&path).unwrap().len();
        let pages = u64::from(u32::from_be_bytes(page1[28..32].try_into().unwrap()));
        assert!(pages * page as u64 > before, "the state outgrew its file");
        {
            use std::io::{Seek, Write};
            let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(std::io::SeekFrom::Start(0)).unwrap();
            f.write_all(page1).unwrap();
        }
        check_file(&path, "here").unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.load("s").unwrap().instances.len(), 400);

        // Cut for real (the file and its log both short of the pages):
        // refused.
        drop(store);
        assert_half_is_truncated(&path);
    }

    /// A refused file keeps its log as it was: closing the refusing
    /// connection copies nothing into the file.
    #[test]
    fn a_refused_state_with_a_kept_log_is_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.db");
        state_in_its_log(&path, 10);
        {
            let c = Connection::open(&path).unwrap();
            c.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )
            .unwrap();
            c.execute(
                "INSERT INTO schema_migrations VALUES (1000, '2030-01-01T00:00:00Z', '9.0.0')",
                [],
            )
            .unwrap();
        }
        let (file, log) = (fs::read(&path).unwrap(), fs::read(wal_path(&path)).unwrap());
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(matches!(err, StateError::TooNew { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), file, "the file was written");
        assert_eq!(
            fs::read(wal_path(&path)).unwrap(),
            log,
            "the log was changed"
        );
    }

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, (version, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
            assert!(!sql.trim().is_empty());
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }

    #[test]
    fn open_creates_a_private_folder_and_file_and_records_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/.tg/state.db");
        let store = SqliteStore::open(&path).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("a/.tg")), 0o700);
        assert_eq!(mode(&path), 0o600);
        let conn = store.conn();
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: bool = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(fk);
        drop(conn);
        assert_eq!(store.location(), format!("sqlite {}", path.display()));
        drop(store);
        // No temporary file is left next to it.
        let names: Vec<_> = fs::read_dir(dir.path().join("a/.tg"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".new-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        // Reopening an up-to-date file applies nothing again.
        let store = SqliteStore::open(&path).unwrap();
        let rows: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, MIGRATIONS.len() as i64);
    }

    fn assert_refused_untouched(path: &Path, check: impl Fn(&StateError) -> bool) {
        let before = fs::read(path).unwrap();
        let err = SqliteStore::open(path).unwrap_err();
        assert!(check(&err), "unexpected error: {err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(fs::read(path).unwrap(), before, "the file was written to");
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        assert!(!Path::new(&wal).exists(), "a journal was made");
    }

    #[test]
    fn damaged_files_are_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        fs::write(&empty, b"").unwrap();
        assert_refused_untouched(
            &empty,
            |e| matches!(e, StateError::Damaged { reason, .. } if reason.contains("empty (0 bytes)")),
        );

        let garbage = dir.path().join("garbage.db");
        fs::write(&garbage, b"this is not a database at all\n".repeat(300)).unwrap();
        assert_refused_untouched(&garbage, |e| matches!(e, StateError::Damaged { .. }));

        // The right magic, then garbage (rollback journal header bytes kept
        // so SQLite reads it in place).
        let fake = dir.path().join("fake.db");
        let mut bytes = SQLITE_MAGIC.to_vec();
        bytes.extend((0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        bytes[18] = 1;
        bytes[19] = 1;
        fs::write(&fake, &bytes).unwrap();
        assert_refused_untouched(&fake, |e| {
            // Refused by SQLite itself, not by the header check.
            matches!(e, StateError::Damaged { reason, .. } if !reason.contains("not a SQLite"))
        });

        let short = dir.path().join("short.db");
        fs::write(&short, SQLITE_MAGIC).unwrap();
        assert_refused_untouched(&short, |e| matches!(e, StateError::Damaged { .. }));
    }

    #[test]
    fn a_sqlite_database_that_is_not_a_tg_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY);")
                .unwrap();
        }
        assert_refused_untouched(
            &path,
            |e| matches!(e, StateError::Damaged { reason, .. } if reason.contains("not a tg state")),
        );
    }

    #[test]
    fn a_state_from_a_newer_tg_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        store.create_session("s").unwrap();
        drop(store);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (99, 'x', '9.9.9')",
                [],
            )
            .unwrap();
        }
        assert_refused_untouched(
            &path,
            |e| matches!(e, StateError::TooNew { found: 99, known, .. } if *known == SCHEMA_VERSION),
        );
    }

    #[test]
    fn concurrent_opens_of_a_new_file_migrate_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".tg/state.db");
        let barrier = Arc::new(std::sync::Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = SqliteStore::open(&path)?;
                    store.ensure_session("shared")?;
                    store.put_instance("shared", &super::super::tests::record(i))
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let snap = store.load("shared").unwrap();
        assert_eq!(snap.instances.len(), 6);
        assert_eq!(snap.serial, 6);
        let rows: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, MIGRATIONS.len() as i64);
    }
}
