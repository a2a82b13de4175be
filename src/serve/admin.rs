//! The inventory of a session (`GET /v1/sessions/{s}/inventory`, what
//! `tg output inventory` prints) and the admin-only pool routes (what
//! `tg pool list/quarantine/release` do, on the `ssh` pools of the
//! server's catalog, each pool's leases in its own `state` store when it
//! names one).
//!
//! Not here: the inventory itself (`ops::inventory`), the pools' hosts
//! (`ops::pool`), leases (the state store).

use axum::extract::{Path, Query, State};
use axum::Json;

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::handlers::{existing, read_state, resolve, AppState, Body, Params};
use super::run::blocking;
use super::wire::*;
use super::App;
use crate::ops::pool::{self, PoolEntry};
use crate::ops::{self, InventoryOptions, SshReach};
use crate::state::StateStore;
use std::collections::BTreeMap;
use std::sync::Arc;

type InventoryParams = Result<Query<InventoryQuery>, axum::extract::rejection::QueryRejection>;

/// The session's Ansible inventory: the static document (`tg output
/// inventory -format json`) or, with `?format=script`, the
/// dynamic-inventory `--list` answer. Hosts are the nodes made so far.
#[utoipa::path(get, path = "/v1/sessions/{s}/inventory", tag = "sessions",
    params(SessionParam, InventoryQuery),
    responses((status = 200, body = Inventory),
        (status = 400, description = "unknown format", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody)))]
pub(super) async fn inventory(
    State(app): AppState,
    user: User,
    path: Params<String>,
    query: InventoryParams,
) -> ApiResult<Json<Inventory>> {
    let Path(s) = path?;
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session).await?;
    let snap = read_state(&app, &m).await?.unwrap_or_default();
    let dir = app.session_dir(&session);
    let logins = pool_logins(&app, &user, &dir, &snap).await?;
    let ssh = ops::session_ssh_dir(&dir, session.as_str());
    let (kh, key) = (
        ssh.join(crate::ops::ssh_files::KNOWN_HOSTS),
        ssh.join(crate::ops::ssh_files::CLIENT_KEY),
    );
    let opts = InventoryOptions {
        reach: SshReach {
            tg_exe: std::env::current_exe()
                .ok()
                .and_then(|p| std::fs::canonicalize(p).ok())
                .unwrap_or_else(|| "tg".into()),
            testbed_dir: dir,
            session: session.to_string(),
            known_hosts: kh.is_file().then_some(kh),
        },
        private_key: key.is_file().then_some(key),
        logins,
    };
    let inv = ops::inventory(&snap, &opts).map_err(|e| ApiError::internal(e.to_string()))?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(Inventory(inv.static_doc()))),
        Some("script") => Ok(Json(Inventory(inv.script_json()))),
        Some(f) => Err(ApiError::bad_request(format!(
            "unknown inventory format `{}`: expected `json` or `script`",
            f.escape_debug()
        ))),
    }
}

/// How ssh logs in to the session's pool nodes, from the pools of its
/// testbed (none when the testbed does not load).
async fn pool_logins(
    app: &App,
    user: &User,
    dir: &std::path::Path,
    snap: &crate::state::Snapshot,
) -> ApiResult<std::collections::BTreeMap<String, crate::platform::SshLogin>> {
    let ws = app.workspace(dir, &user.name);
    let snap = snap.clone();
    tokio::task::spawn_blocking(move || {
        let Ok(settings) = crate::config::load_settings(&ws.load_options(Default::default()))
        else {
            return Default::default();
        };
        match ws.factory.registry(&settings.platforms, &ws.env) {
            Ok(registry) => ops::ssh_logins(&registry, &snap),
            Err(_) => Default::default(),
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("reading the testbed stopped: {e}")))
}

/// Admins only: everyone else gets a 403.
fn admin(user: &User) -> ApiResult<()> {
    if user.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "the pool routes are for admins: user `{}` is not one (`TOKEN USER admin` in the token file)",
            user.name
        )))
    }
}

/// The hosts of the catalog's `ssh` pools (none without a catalog), and
/// the store of each pool's leases: its own `state` URL (a SQLite path
/// relative to the catalog), else the server's store. Opened per request:
/// admin routes are rare, and a pool block may change under the server.
struct Pools {
    hosts: Vec<PoolEntry>,
    stores: BTreeMap<String, Arc<dyn StateStore>>,
    own: Arc<dyn StateStore>,
}

impl Pools {
    /// The store that keeps the lease of `key`.
    fn store_of(&self, key: &str) -> Arc<dyn StateStore> {
        pool::store_of(&self.hosts, &self.stores, &self.own, key)
    }

    /// The lease key of `host`, a 404 when no pool has it.
    fn key(&self, host: &str) -> ApiResult<String> {
        pool::key_of(&self.hosts, host).map_err(ApiError::not_found)
    }
}

async fn catalog_pools(app: &App, user: &User) -> ApiResult<Pools> {
    let own = app.store.clone();
    let Some(dir) = app.config.catalog.clone() else {
        return Ok(Pools {
            hosts: Vec::new(),
            stores: BTreeMap::new(),
            own,
        });
    };
    let opts = app
        .workspace(&dir, &user.name)
        .load_options(Default::default());
    tokio::task::spawn_blocking(move || {
        let settings = crate::config::load_settings(&opts).map_err(|e| {
            ApiError::internal(format!(
                "the catalog does not load ({} error(s)): run `tg validate` in it",
                e.diagnostics.error_count()
            ))
        })?;
        let stores = pool::lease_stores(&dir, &settings, &own, crate::ops::StoreAccess::Write)
            .map_err(|e| ApiError::internal(format!("cannot open a pool's lease store: {e}")))?;
        Ok(Pools {
            hosts: pool::hosts(&settings),
            stores,
            own,
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("reading the catalog stopped: {e}")))?
}

/// The pools' hosts and their leases (`tg pool list -json`).
#[utoipa::path(get, path = "/v1/pool", tag = "pool",
    responses((status = 200, body = PoolList),
        (status = 403, description = "not an admin", body = ErrorBody)))]
pub(super) async fn pool_list(State(app): AppState, user: User) -> ApiResult<Json<PoolList>> {
    admin(&user)?;
    let pools = catalog_pools(&app, &user).await?;
    // Each pool's rows, from the store that keeps them.
    let mut rows: BTreeMap<String, Vec<crate::state::Lease>> = BTreeMap::new();
    for (p, store) in &pools.stores {
        let store = store.clone();
        rows.insert(p.clone(), blocking(move || store.leases()).await?);
    }
    let hosts = pools
        .hosts
        .into_iter()
        .map(|(pool, h, key)| {
            let l = rows
                .get(&pool)
                .and_then(|rows| rows.iter().find(|r| r.host == key));
            PoolHost {
                pool,
                state: pool::state(l).into(),
                session: l.and_then(|l| l.session.clone()),
                since: l.and_then(|l| l.since.clone()),
                quarantined: l.and_then(|l| l.quarantined.clone()),
                name: h.name,
                host: key,
                profile: h.profile,
                image: h.image,
                labels: h.labels,
                cpus: h.cpus,
                memory_mib: h.memory_mib,
            }
        })
        .collect();
    Ok(Json(PoolList { hosts }))
}

/// Take a host out of placement (`tg pool quarantine HOST -reason TEXT`).
#[utoipa::path(post, path = "/v1/pool/{host}/quarantine", tag = "pool",
    params(HostParam), request_body = QuarantineRequest,
    responses((status = 200, body = PoolChanged),
        (status = 400, description = "empty reason", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 404, description = "no such pool host", body = ErrorBody)))]
pub(super) async fn pool_quarantine(
    State(app): AppState,
    user: User,
    path: Params<String>,
    body: Body<QuarantineRequest>,
) -> ApiResult<Json<PoolChanged>> {
    admin(&user)?;
    let Path(host) = path?;
    let Json(req) = body?;
    if req.reason.trim().is_empty() {
        return Err(ApiError::bad_request(
            "`reason` is empty: say why the host is out of placement",
        ));
    }
    let pools = catalog_pools(&app, &user).await?;
    let key = pools.key(&host)?;
    let (store, k) = (pools.store_of(&key), key.clone());
    blocking(move || store.quarantine_host(&k, &req.reason)).await?;
    Ok(Json(PoolChanged {
        host: key,
        state: "quarantined".into(),
    }))
}

/// Free a host: end its quarantine or its lease (`tg pool release HOST
/// -force`; a host whose session holds its lock is a 409).
#[utoipa::path(post, path = "/v1/pool/{host}/release", tag = "pool", params(HostParam),
    responses((status = 200, body = PoolChanged),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 404, description = "no such pool host", body = ErrorBody),
        (status = 409, description = "`locked`: the leasing session holds its lock", body = ErrorBody)))]
pub(super) async fn pool_release(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<PoolChanged>> {
    admin(&user)?;
    let Path(host) = path?;
    let pools = catalog_pools(&app, &user).await?;
    let key = pools.key(&host)?;
    let (store, own, k) = (pools.store_of(&key), pools.own.clone(), key.clone());
    let held = blocking(move || {
        let rows = store.leases()?;
        let Some(row) = rows.into_iter().find(|r| r.host == k) else {
            return Ok(None);
        };
        if let Some(s) = &row.session {
            // The session is in the pool's store or in the server's.
            let holder = match store.lock_holder(s)? {
                Some(h) => Some(h),
                None => own.lock_holder(s)?,
            };
            if let Some(h) = holder {
                return Ok(Some(format!(
                    "host {k} is leased by session `{s}`, whose lock is held ({} by {}@{} pid {}): let it finish, or destroy it",
                    h.operation, h.user, h.host, h.pid
                )));
            }
        }
        store.free_host(&k)?;
        Ok(None)
    })
    .await?;
    if let Some(why) = held {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "locked",
            why,
        ));
    }
    Ok(Json(PoolChanged {
        host: key,
        state: "free".into(),
    }))
}
