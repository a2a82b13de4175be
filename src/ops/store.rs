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

/// Open the state store: `TG_STATE_URL` (a `postgres://` URL or a file
/// path) wins over the testbed's `state` block; the default is
/// `.tg/state.db` under the testbed directory.
pub fn open_store(
    testbed_dir: &Path,
    config: &StateBackendConfig,
    env_url: Option<&str>,
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

fn open_postgres(url: &str) -> OpsResult<Arc<dyn StateStore>> {
    Ok(Arc::new(crate::state::postgres::PostgresStore::connect(
        url,
    )?))
}
