//! Opening a state store from the `state` settings and `TG_STATE_URL`.
//!
//! Not here: what a store does (`state`).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::OpsResult;
use crate::config::model::StateBackendConfig;
use crate::state::{StateError, StateStore};

/// The variable naming the state backend (wins over the `state` block).
pub const ENV_STATE_URL: &str = "TG_STATE_URL";

/// What a command does with the state store it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAccess {
    /// It may write: a SQLite file that does not exist yet is created.
    Write,
    /// It only reads (or writes only to what exists): a SQLite file that
    /// does not exist is read as an empty store and not created, so
    /// `tg session list` or `tg output` in a folder leave no `.tg/` behind.
    Read,
}

/// Open the state store: `TG_STATE_URL` (a `postgres://` URL or a file
/// path) wins over the testbed's `state` block; the default is
/// `.tg/state.db` under the testbed directory.
pub fn open_store(
    testbed_dir: &Path,
    config: &StateBackendConfig,
    env_url: Option<&str>,
) -> OpsResult<Arc<dyn StateStore>> {
    open_store_for(testbed_dir, config, env_url, StoreAccess::Write)
}

/// [`open_store`] for `access`.
pub fn open_store_for(
    testbed_dir: &Path,
    config: &StateBackendConfig,
    env_url: Option<&str>,
    access: StoreAccess,
) -> OpsResult<Arc<dyn StateStore>> {
    let target = match env_url.filter(|s| !s.is_empty()) {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            StoreTarget::Postgres(u.to_string())
        }
        Some(p) => StoreTarget::Sqlite(testbed_dir.join(p)),
        None => match config {
            StateBackendConfig::Sqlite => {
                StoreTarget::Sqlite(testbed_dir.join(".tg").join("state.db"))
            }
            StateBackendConfig::SqlitePath(p) => StoreTarget::Sqlite(testbed_dir.join(p)),
            StateBackendConfig::Postgres { url } => StoreTarget::Postgres(url.clone()),
        },
    };
    match target {
        StoreTarget::Sqlite(path)
            if access == StoreAccess::Read
                && std::fs::symlink_metadata(&path)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                // A log left without its file is refused, not read as empty.
                && !crate::state::sqlite::has_wal(&path) =>
        {
            Ok(Arc::new(crate::state::memory::MemoryStore::standing_for(
                path.display().to_string(),
            )))
        }
        StoreTarget::Sqlite(path) => open_sqlite(&path),
        StoreTarget::Postgres(url) => open_postgres(&url),
    }
}

enum StoreTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Open (or create) a SQLite store. A folder tg makes for it is 0700 and
/// a new database file 0600, whatever the umask: state holds addresses,
/// platform data and output values.
fn open_sqlite(path: &Path) -> OpsResult<Arc<dyn StateStore>> {
    let backend = |p: &Path, e: std::io::Error| StateError::Backend {
        location: p.display().to_string(),
        message: format!("cannot create the directory: {e}"),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| backend(parent, e))?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| backend(parent, e))?;
        }
    }
    refuse_unreadable(path)?;
    let new = !path.exists();
    let store = crate::state::sqlite::SqliteStore::open(path)?;
    if new {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            if p.exists() {
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    Ok(Arc::new(store))
}

/// A state file this user may not open gets a message that says whose it
/// is and what to do, not a bare "permission denied".
fn refuse_unreadable(path: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    // The file itself, or (when its folder is closed to us) the folder.
    let denied = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => path.parent(),
        Err(_) => return Ok(()),
        Ok(_) => match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(path),
            _ => return Ok(()),
        },
    };
    let owner = denied
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.uid())
        .map(|uid| {
            let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| format!("uid {uid}"));
            (uid, name)
        });
    let me = nix::unistd::geteuid().as_raw();
    let message = match owner {
        // Ours (or we are root) and still refused: the file's mode or
        // attributes forbid writing (`chattr +i`, a read-only mount).
        Some((uid, _)) if uid == me || me == 0 => {
            "it cannot be opened for writing (its mode or attributes, such as `chattr +i`, forbid it): make it writable".to_string()
        }
        Some((0, _)) => "it belongs to root, who applied the session: run tg as root (for example `sudo tg ...`) to read or change this session".to_string(),
        Some((_, name)) => format!(
            "it belongs to `{name}`: run tg as `{name}`, or ask them to share the session through a PostgreSQL state (`TG_STATE_URL`)"
        ),
        None => "this user may not read it".to_string(),
    };
    Err(StateError::Backend {
        location: path.display().to_string(),
        message: format!("permission denied: {message}; it was not touched"),
    })
}

fn open_postgres(url: &str) -> OpsResult<Arc<dyn StateStore>> {
    Ok(Arc::new(crate::state::postgres::PostgresStore::connect(
        url,
    )?))
}
