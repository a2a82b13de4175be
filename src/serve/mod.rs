//! `tg serve`: the REST API over the library, for users who drive test
//! environments from their own test code (the `testgrid` Python client).
//!
//! An API session is an ordinary tg session recorded as `OWNER/NAME`: its
//! model ([`model`]) and uploads are kept in the state store, with a copy
//! and the testbed document rendered from it in a folder under the
//! server's data dir ([`stored`]), and every change edits the model and
//! runs plan and apply through [`crate::ops`] in a background job
//! ([`jobs`]). The state is the
//! same store the CLI reads (SQLite at `DATA/state.db` unless told
//! otherwise), so `tg session list` and `tg show -session OWNER/NAME` see API
//! sessions.
//!
//! What the server is given comes in [`Config`]: the platform drivers, the
//! data dir, the catalog; nothing here reads the process environment (the
//! CLI's `serve` command does). Not here: the routes (`handlers`, `admin`,
//! `events`), their HTTP shapes (`wire`, `openapi`), tokens (`auth`).

pub mod admin;
pub mod auth;
pub mod error;
pub mod events;
pub mod files;
pub mod handlers;
pub mod impair;
pub mod jobs;
pub mod model;
pub mod openapi;
pub mod packages;
pub mod run;
pub mod stored;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::environment::{Caller, Environment};
use crate::names::SessionName;
use crate::ops::Workspace;
use crate::platform::factory::Factory;

/// Largest request body accepted (413 past it).
pub const BODY_LIMIT: usize = 64 * 1024;

/// What a server is made from.
#[derive(Clone)]
pub struct Config {
    /// Where session folders (and the default SQLite state) live (absolute).
    pub data_dir: PathBuf,
    /// `*.tg.hcl` files with the profiles (and platform blocks) sessions may use.
    pub catalog: Option<PathBuf>,
    /// The platform API sessions' nodes are on (`netns`).
    pub platform: String,
    pub factory: Factory,
    /// Where installable package versions come from.
    pub versions: packages::Versions,
    /// The state store (`TG_STATE_URL` syntax); `None`: `DATA/state.db`.
    pub state_url: Option<String>,
    /// Variables the library and the platforms see (the server's `PATH`,
    /// say); nothing else of the server's environment.
    pub env: Vec<(String, String)>,
    /// The only variables of `env` a testbed's `env()` sees: the catalog's
    /// `serve.hcl` `env_allow` ([`read_env_allow`]).
    pub env_allow: Vec<String>,
    /// The host name recorded in locks.
    pub host: String,
    /// This machine's name in netns node records (`NetnsOptions::host`):
    /// a session whose nodes name another machine is held by the server
    /// there.
    pub netns_host: String,
    /// This process's id, recorded in locks.
    pub pid: u32,
}

/// A running server's shared state.
pub struct App {
    pub config: Config,
    pub tokens: RwLock<auth::Tokens>,
    pub jobs: jobs::Jobs,
    /// Profiles the catalog defines, sorted.
    pub profiles: Vec<String>,
    /// The catalog's files: `(file name, text)`, copied into every session.
    pub catalog_files: Vec<CatalogFile>,
    /// The `dir:` images the catalog's profiles name (literally): the only
    /// ones a session's testbed may use.
    pub image_dirs: Vec<PathBuf>,
    /// The state store, opened once: every session's context shares it.
    pub store: Arc<dyn crate::state::StateStore>,
    /// Sessions receiving an upload now (one at a time each, so the quota
    /// holds).
    pub uploading: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Held while a session is opened (see `handlers::open_session`).
    pub opening: tokio::sync::Mutex<()>,
    /// Held while a session folder's model is written (`stored`).
    pub folders: std::sync::Mutex<()>,
}

impl App {
    /// A server from `config` and its tokens; reads the catalog.
    pub fn new(config: Config, tokens: auth::Tokens) -> Result<App, String> {
        let (profiles, catalog_files) = match &config.catalog {
            Some(dir) => {
                check_apart(dir, &config.data_dir)?;
                read_catalog(dir)?
            }
            None => (Vec::new(), Vec::new()),
        };
        let image_dirs = catalog_image_dirs(&catalog_files);
        let url = state_url(&config);
        let store = crate::ops::open_store(&config.data_dir, &Default::default(), Some(&url))
            .map_err(|e| format!("cannot open the state store `{url}`: {e}"))?;
        Ok(App {
            store,
            config,
            tokens: RwLock::new(tokens),
            jobs: jobs::Jobs::default(),
            profiles,
            catalog_files,
            image_dirs,
            uploading: Default::default(),
            opening: Default::default(),
            folders: Default::default(),
        })
    }

    /// The state store's URL or path.
    pub fn state_url(&self) -> String {
        state_url(&self.config)
    }

    /// The context of `session` in `ws`: its parsed testbed and platforms,
    /// on the server's one store (opening a store per request would race
    /// its own checks against the other sessions' writes).
    pub async fn context(
        &self,
        ws: &Workspace,
        session: &SessionName,
    ) -> crate::ops::OpsResult<crate::ops::Context> {
        let opts = ws.load_options(Default::default());
        let parsed = tokio::task::spawn_blocking(move || crate::config::parse(&opts))
            .await
            .map_err(|e| {
                crate::ops::OpsError::Usage(format!("parsing stopped unexpectedly: {e}"))
            })??;
        let settings = parsed.settings()?;
        let registry = ws
            .factory
            .registry(&settings.platforms, &ws.env)
            .map_err(|errs| {
                crate::ops::OpsError::Platforms(errs.iter().map(ToString::to_string).collect())
            })?;
        // A pool keeps its leases in its own `state`, else in the server's
        // store (so servers sharing the store share the leases).
        let (dir, own) = (ws.leases_dir().to_path_buf(), self.store.clone());
        let registry = tokio::task::spawn_blocking(move || {
            crate::ops::pool::use_lease_stores(
                &dir,
                &settings,
                &own,
                &registry,
                crate::ops::StoreAccess::Write,
            )
            .map(|()| registry)
        })
        .await
        .map_err(|e| {
            crate::ops::OpsError::Usage(format!(
                "opening the pools' stores stopped unexpectedly: {e}"
            ))
        })??;
        Ok(crate::ops::Context {
            store: self.store.clone(),
            registry,
            session: session.clone(),
            testbed_dir: ws.dir.clone(),
            hook: ws.hook.clone(),
            caller: ws.caller.clone(),
            parsed: Some(Arc::new(parsed)),
        })
    }

    /// The folder of `session` (`OWNER/NAME`).
    pub fn session_dir(&self, session: &SessionName) -> PathBuf {
        model::session_dir(
            &self.config.data_dir,
            session.owner().unwrap_or("_"),
            session.short(),
        )
    }

    /// Where the files uploaded to `session` are (`files/` in its folder).
    pub fn upload_dir(&self, session: &SessionName) -> PathBuf {
        self.session_dir(session).join(model::UPLOADS)
    }

    /// The library workspace of a session folder, for `user`. Its testbed
    /// reads files only in the catalog and the session's uploads, and its
    /// `env()` sees only the catalog's `env_allow` variables.
    pub fn workspace(&self, dir: &Path, user: &str) -> Workspace {
        let mut vars = self.config.env.clone();
        vars.push((crate::ops::ENV_STATE_URL.to_string(), self.state_url()));
        let mut roots = vec![dir.join(model::UPLOADS)];
        roots.extend(self.config.catalog.clone());
        let env = Environment::new(vars, dir)
            .confined_to(roots)
            .with_testbed_vars(self.config.env_allow.iter().cloned())
            .with_image_dirs(self.image_dirs.clone());
        Workspace {
            dir: dir.to_path_buf(),
            vars: Vec::new(),
            var_files: Vec::new(),
            env,
            caller: Caller {
                user: format!("serve:{user}"),
                host: self.config.host.clone(),
                pid: self.config.pid,
            },
            factory: self.config.factory.clone(),
            hook: Arc::new(crate::apply::NoHook),
            // Relative pool `state` paths are the catalog's, shared by
            // every session (each folder holds a copy of its files).
            leases_dir: self.config.catalog.clone(),
        }
    }
}

/// The state store's URL or path of `config`.
fn state_url(config: &Config) -> String {
    config.state_url.clone().unwrap_or_else(|| {
        config
            .data_dir
            .join("state.db")
            .to_string_lossy()
            .into_owned()
    })
}

/// A catalog file: its name and text.
pub type CatalogFile = (String, String);

/// The `dir:` images the catalog's profiles name as literal strings
/// (`image = "dir:/srv/rootfs"`; absolute paths only).
fn catalog_image_dirs(files: &[CatalogFile]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (_, text) in files {
        let Ok(body) = hcl::parse(text) else {
            continue;
        };
        for b in body.blocks().filter(|b| b.identifier() == "profile") {
            for a in b.body().attributes().filter(|a| a.key() == "image") {
                if let hcl::Expression::String(s) = a.expr() {
                    if let Some(d) = s.strip_prefix("dir:").filter(|d| d.starts_with('/')) {
                        out.push(PathBuf::from(d));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The catalog's file of server settings (not a testbed file: not copied).
pub const CATALOG_SETTINGS: &str = "serve.hcl";

/// The variables a testbed's `env()` may see: `env_allow = ["NAME", ...]`
/// in the catalog's `serve.hcl` (none when there is no such file). The
/// server takes their values from its own environment.
pub fn read_env_allow(catalog: &Path) -> Result<Vec<String>, String> {
    let path = catalog.join(CATALOG_SETTINGS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    let shown = path.display();
    let body: hcl::Body =
        hcl::parse(&text).map_err(|e| format!("`{shown}` does not parse: {e}"))?;
    if let Some(b) = body.blocks().next() {
        return Err(format!(
            "`{shown}`: unexpected block `{}`; it holds only `env_allow = [\"NAME\", ...]`",
            b.identifier()
        ));
    }
    let mut names = Vec::new();
    for a in body.attributes() {
        if a.key() != "env_allow" {
            return Err(format!(
                "`{shown}`: unknown setting `{}`; it holds only `env_allow = [\"NAME\", ...]`",
                a.key()
            ));
        }
        let hcl::Expression::Array(items) = a.expr() else {
            return Err(format!(
                "`{shown}`: `env_allow` is a list of variable names"
            ));
        };
        for item in items {
            let hcl::Expression::String(name) = item else {
                return Err(format!(
                    "`{shown}`: `env_allow` is a list of variable names"
                ));
            };
            crate::names::check_identifier(name).map_err(|e| {
                format!(
                    "`{shown}`: invalid variable name `{}` in `env_allow`: {e}",
                    name.escape_debug()
                )
            })?;
            names.push(name.clone());
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The data dir must not be inside the catalog: the catalog is readable
/// by every testbed, the data dir holds other sessions' keys and state.
fn check_apart(catalog: &Path, data: &Path) -> Result<(), String> {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (c, d) = (real(catalog), real(data));
    if d.starts_with(&c) {
        return Err(format!(
            "the data dir `{}` is inside the catalog `{}`, which every testbed may read: keep them apart",
            d.display(),
            c.display()
        ));
    }
    Ok(())
}

/// The catalog's profiles and files.
fn read_catalog(dir: &Path) -> Result<(Vec<String>, Vec<CatalogFile>), String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the catalog `{}`: {e}", dir.display()))?;
    let mut files = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".tg.hcl") || !e.path().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(e.path())
            .map_err(|err| format!("cannot read `{}`: {err}", e.path().display()))?;
        files.push((name, text));
    }
    files.sort();
    let mut profiles = Vec::new();
    for (name, text) in &files {
        let body: hcl::Body = hcl::parse(text).map_err(|e| {
            format!(
                "the catalog file `{}/{name}` does not parse: {e}",
                dir.display()
            )
        })?;
        for b in body.blocks() {
            if b.identifier() == "profile" {
                if let Some(l) = b.labels().first() {
                    profiles.push(l.as_str().to_string());
                }
            }
        }
    }
    profiles.sort();
    profiles.dedup();
    Ok((profiles, files))
}

/// Serve on `listener` until `shutdown` resolves; running jobs are waited
/// for (up to `drain`) before returning.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: std::time::Duration,
) -> std::io::Result<()> {
    let router = handlers::router(app.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    let deadline = tokio::time::Instant::now() + drain;
    while app.jobs.running_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_settings() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        assert_eq!(read_env_allow(p), Ok(Vec::new()));
        let write = |text: &str| std::fs::write(p.join(CATALOG_SETTINGS), text).unwrap();
        write("env_allow = [\"http_proxy\", \"MIRROR\", \"MIRROR\"]\n");
        assert_eq!(
            read_env_allow(p),
            Ok(vec!["MIRROR".to_string(), "http_proxy".to_string()])
        );
        for (bad, why) in [
            ("env_allow = \"X\"\n", "is a list of variable names"),
            ("env_allow = [\"A=B\"]\n", "invalid variable name `A=B`"),
            ("other = []\n", "unknown setting `other`"),
            ("serve {}\n", "unexpected block `serve`"),
            ("env_allow = [\n", "does not parse"),
        ] {
            write(bad);
            let got = read_env_allow(p).unwrap_err();
            assert!(got.contains(why), "{bad}: {got}");
        }
        let files = vec![(
            "a.tg.hcl".to_string(),
            "profile \"r\" {\n  image = \"dir:/srv/r\"\n}\nprofile \"s\" {\n  image = \"dir:${local.x}\"\n}\nprofile \"h\" {\n  image = \"host\"\n}\n".to_string(),
        )];
        assert_eq!(catalog_image_dirs(&files), vec![PathBuf::from("/srv/r")]);
        std::fs::create_dir_all(p.join("cat/data")).unwrap();
        assert!(check_apart(&p.join("cat"), &p.join("data")).is_ok());
        assert!(check_apart(&p.join("cat"), &p.join("cat/data")).is_err());
        assert!(check_apart(&p.join("cat"), &p.join("cat")).is_err());
    }
}
