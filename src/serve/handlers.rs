//! The routes: who may see what, and what each answers (the shapes are in
//! `wire`; each handler's `#[utoipa::path]` is its entry in the OpenAPI
//! document, see `openapi`).
//!
//! A session in a path is `NAME` (the caller's own) or `OWNER/NAME`
//! percent-encoded (`alice%2Fhw`); another user's session is a 403 unless
//! the caller is an admin. Not here: tokens (`auth`), the document
//! (`model`), what jobs do (`run`), job events (`events`), the inventory
//! and pool routes (`admin`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::jobs::Job;
use super::model::{self, NodeModel, PackageModel, SessionModel};
use super::run::{accepted, blocking, change, ops_error, spawn_job};
use super::wire::*;
use super::{run, stored, App};
use crate::names::SessionName;
use crate::ops::{self, OpsError};
use crate::platform::Spec;

pub(super) type AppState = State<Arc<App>>;
pub(super) type Body<T> = Result<Json<T>, JsonRejection>;
pub(super) type Params<T> = Result<Path<T>, PathRejection>;

/// Longest command run through `exec`.
const MAX_EXEC: Duration = Duration::from_secs(3600);

/// Every route of the API.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/sessions", post(open_session).get(list_sessions))
        .route("/v1/sessions/{s}", get(show_session).delete(close_session))
        .route(
            "/v1/sessions/{s}/nodes",
            get(list_nodes).post(allocate_node),
        )
        .route(
            "/v1/sessions/{s}/nodes/{n}",
            get(show_node).delete(release_node),
        )
        .route("/v1/sessions/{s}/nodes/{n}/exec", post(exec))
        .route(
            "/v1/sessions/{s}/nodes/{n}/impair",
            axum::routing::put(super::impair::impair_node).delete(super::impair::clear_node),
        )
        .route(
            "/v1/sessions/{s}/impair",
            axum::routing::put(super::impair::impair_session).delete(super::impair::clear_session),
        )
        .route("/v1/sessions/{s}/testbed", get(export_testbed))
        .route(
            "/v1/sessions/{s}/files/{name}",
            axum::routing::put(super::files::upload).delete(super::files::delete),
        )
        .route("/v1/sessions/{s}/files", get(super::files::list))
        .route("/v1/sessions/{s}/packages", post(deploy))
        .route(
            "/v1/sessions/{s}/packages/{p}",
            axum::routing::delete(undeploy),
        )
        .route("/v1/packages/{name}/{version}", get(check_package))
        .route("/v1/sessions/{s}/inventory", get(super::admin::inventory))
        .route("/v1/pool", get(super::admin::pool_list))
        .route(
            "/v1/pool/{host}/quarantine",
            post(super::admin::pool_quarantine),
        )
        .route("/v1/pool/{host}/release", post(super::admin::pool_release))
        .route("/v1/jobs/{id}", get(show_job))
        .route("/v1/jobs/{id}/events", get(super::events::job_events))
        .route("/openapi.json", get(super::openapi::serve_document))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(super::BODY_LIMIT))
        .with_state(app)
}

/// The server answers.
#[utoipa::path(get, path = "/healthz", tag = "server",
    responses((status = 200, body = Health)))]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

// ---------------------------------------------------------------- sessions

/// The session a caller names: `NAME` (their own) or `OWNER/NAME`.
pub(super) fn resolve(user: &User, given: &str) -> ApiResult<SessionName> {
    let parsed = SessionName::parse(given).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid session name `{}`: {e}",
            given.escape_debug()
        ))
    })?;
    match parsed.owner() {
        Some(owner) if owner != user.name && !user.admin => Err(ApiError::forbidden(format!(
            "session `{parsed}` belongs to another user"
        ))),
        Some(_) => Ok(parsed),
        None => SessionName::owned(&user.name, &parsed).map_err(ApiError::bad_request),
    }
}

/// The model of an existing session (its folder brought up to date from
/// the store; a 409 when another server holds it).
pub(super) async fn existing(app: &App, session: &SessionName) -> ApiResult<SessionModel> {
    stored::load(app, session).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no session `{session}`: open it first (`POST /v1/sessions`)"
        ))
    })
}

/// Open a session of the caller: new (201) or reopened (200).
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = OpenRequest,
    responses(
        (status = 201, description = "opened", body = SessionView),
        (status = 200, description = "reopened", body = SessionView),
        (status = 400, description = "invalid name or body", body = ErrorBody),
        (status = 403, description = "another user's session", body = ErrorBody),
        (status = 409, description = "busy with a job; `elsewhere`: its nodes run on another server's host, or the CLI made a session of that name", body = ErrorBody)))]
pub(super) async fn open_session(
    State(app): AppState,
    user: User,
    body: Body<OpenRequest>,
) -> ApiResult<Response> {
    let Json(req) = body?;
    let session = resolve(&user, &req.name)?;
    if let Some(id) = app.jobs.running(session.as_str()) {
        return Err(ApiError::busy(format!(
            "session `{session}` is busy with job `{id}`: retry when it ends"
        )));
    }
    // One open at a time here: two opens of one new name must not both
    // write a fresh document (the second would wipe what a job of the first
    // added). Across servers the store refuses the second (`Expect::Absent`).
    let opening = app.opening.lock().await;
    if let Some(m) = stored::load(&app, &session).await? {
        drop(opening);
        return Ok((StatusCode::OK, Json(session_view(&app, &m).await?)).into_response());
    }
    held_elsewhere(&app, &session).await?;
    // A folder left from an earlier session of this name is not this one's.
    let _ = std::fs::remove_dir_all(app.session_dir(&session));
    let mut m = SessionModel::new(
        session.as_str(),
        session.owner().unwrap_or(&user.name),
        &app.config.platform,
    );
    if app.config.platform == "netns" {
        m.host = Some(app.config.netns_host.clone());
    }
    let saved = stored::save(&app, &session, &mut m).await;
    drop(opening);
    match saved {
        Ok(()) => {}
        // Another server made it between the read and the write: reopen.
        Err(e) if e.code == "changed" => {
            let m = existing(&app, &session).await?;
            return Ok((StatusCode::OK, Json(session_view(&app, &m).await?)).into_response());
        }
        Err(e) => return Err(e),
    }
    Ok((StatusCode::CREATED, Json(session_view(&app, &m).await?)).into_response())
}

/// The caller's sessions (every session for admins).
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    responses((status = 200, body = SessionList)))]
pub(super) async fn list_sessions(
    State(app): AppState,
    user: User,
) -> ApiResult<Json<SessionList>> {
    let mut out = Vec::new();
    for m in stored::list(&app).await? {
        if m.owner != user.name && !user.admin {
            continue;
        }
        out.push(SessionSummary {
            nodes: m.nodes.len(),
            job: app.jobs.running(&m.name),
            name: m.name,
            owner: m.owner,
            platform: m.platform,
            created: m.created,
        });
    }
    Ok(Json(SessionList { sessions: out }))
}

/// A session with its nodes and packages.
#[utoipa::path(get, path = "/v1/sessions/{s}", tag = "sessions", params(SessionParam),
    responses((status = 200, body = SessionView),
        (status = 403, description = "another user's session", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody)))]
pub(super) async fn show_session(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<SessionView>> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session).await?;
    Ok(Json(session_view(&app, &m).await?))
}

/// The session's testbed: its document and the catalog's files it uses,
/// to review and re-apply with the CLI.
#[utoipa::path(get, path = "/v1/sessions/{s}/testbed", tag = "sessions", params(SessionParam),
    responses((status = 200, body = Testbed),
        (status = 404, description = "no such session", body = ErrorBody)))]
pub(super) async fn export_testbed(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<Testbed>> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session).await?;
    let mut files = BTreeMap::new();
    files.insert(model::DOCUMENT.to_string(), m.render());
    for (name, text) in &app.catalog_files {
        files.insert(format!("{}{name}", model::CATALOG_PREFIX), text.clone());
    }
    Ok(Json(Testbed {
        session: m.name,
        files,
    }))
}

/// Job `close`: destroy everything of the session, end it, remove its folder.
#[utoipa::path(delete, path = "/v1/sessions/{s}", tag = "sessions", params(SessionParam),
    responses((status = 202, body = JobAccepted),
        (status = 404, description = "no such session", body = ErrorBody),
        (status = 409, description = "busy with a job; `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn close_session(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Response> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    existing(&app, &session).await?;
    let job = app.jobs.start(session.as_str(), &user.name, "close")?;
    let (app2, id) = (app.clone(), job.id.clone());
    spawn_job(move || async move {
        let result = run::close_job(&app2, &session, &user.name, &id).await;
        app2.jobs.finish(&id, result);
    });
    Ok(accepted(job))
}

/// A session as the API shows it.
async fn session_view(app: &App, m: &SessionModel) -> ApiResult<SessionView> {
    let nodes = node_views(app, m).await?;
    Ok(SessionView {
        name: m.name.clone(),
        owner: m.owner.clone(),
        platform: m.platform.clone(),
        created: m.created.clone(),
        nodes,
        packages: m.packages.clone(),
        impair: (&m.impair).into(),
        job: app.jobs.running(&m.name),
    })
}

// ------------------------------------------------------------------- nodes

/// Each node of the model with what state records of it.
async fn node_views(app: &App, m: &SessionModel) -> ApiResult<Vec<NodeView>> {
    let snap = read_state(app, m).await?;
    let mut out = Vec::new();
    for (name, n) in &m.nodes {
        let addr = format!("node.{name}");
        let rec = snap
            .as_ref()
            .and_then(|s| s.instances.values().find(|r| r.address.to_string() == addr));
        let (state, address, labels) = match rec {
            Some(r) => {
                let state = serde_json::to_value(r.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                match &r.spec {
                    Spec::Node(spec) => (
                        state,
                        spec.interfaces.first().map(|i| i.address.to_string()),
                        spec.labels.clone(),
                    ),
                    _ => (state, None, n.labels.clone()),
                }
            }
            None => ("pending".to_string(), None, n.labels.clone()),
        };
        out.push(NodeView {
            name: name.clone(),
            hostname: name.clone(),
            state,
            address,
            image: n.image.clone(),
            profile: n.profile.clone(),
            labels,
            impair: (&n.impair).into(),
            packages: m
                .packages
                .iter()
                .filter(|(_, p)| p.nodes.iter().any(|x| x == name))
                .map(|(k, p)| NodePackage {
                    name: k.clone(),
                    version: p.version.clone(),
                })
                .collect(),
        });
    }
    Ok(out)
}

/// A 409 when the store records instances of `session` but no API model:
/// the CLI (or a tg serve from before the store kept models) made them, and
/// a new empty document here would plan their destruction. The answer
/// names the machine its netns nodes run on, when recorded.
async fn held_elsewhere(app: &App, session: &SessionName) -> ApiResult<()> {
    let store = app.store.clone();
    let name = session.as_str().to_string();
    let snapshot = blocking(move || match store.get_session(&name)? {
        Some(info) if info.instances > 0 => Ok(Some(store.load(&name)?)),
        _ => Ok(None),
    })
    .await?;
    let Some(snapshot) = snapshot else {
        return Ok(());
    };
    let hosts: std::collections::BTreeSet<String> = snapshot
        .instances
        .values()
        .filter_map(|r| crate::platform::netns::node_host(&r.private))
        .collect();
    if let Some(h) = hosts.iter().find(|h| **h != app.config.netns_host) {
        return Err(stored::held_by(session, h));
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "elsewhere",
        format!(
            "session `{session}` has state in the store but no tg serve model: the CLI (or an older tg serve) made it; use it there, or destroy what it holds with `tg session delete {session} -destroy`"
        ),
    ))
}

/// The session's state (`None`: nothing applied yet).
pub(super) async fn read_state(
    app: &App,
    m: &SessionModel,
) -> ApiResult<Option<crate::state::Snapshot>> {
    let store = app.store.clone();
    let name = m.name.clone();
    blocking(move || {
        if store.get_session(&name)?.is_none() {
            return Ok(None);
        }
        Ok(Some(store.load(&name)?))
    })
    .await
}

/// Job `allocate_node`: add a node; `result.node` names it.
#[utoipa::path(post, path = "/v1/sessions/{s}/nodes", tag = "nodes", params(SessionParam),
    request_body = AllocateRequest,
    responses((status = 202, body = JobAccepted),
        (status = 400, description = "invalid values or `unknown_profile`", body = ErrorBody),
        (status = 409, description = "busy, or the node `exists`; `changed`: another server changed the session meanwhile (retry); `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn allocate_node(
    State(app): AppState,
    user: User,
    path: Params<String>,
    body: Body<AllocateRequest>,
) -> ApiResult<Response> {
    let Path(s) = path?;
    let Json(req) = body?;
    let session = resolve(&user, &s)?;
    let image = match (req.image, req.is_image) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give `image` or `is_image`, not both",
            ))
        }
        (a, b) => a.or(b),
    };
    let node = shaped_node(
        &app,
        Requires {
            image,
            profile: req.profile,
            cpus: req.cpus,
            memory: req.memory,
            labels: req.labels,
        },
    )?;
    let requested = req.name;
    change(&app, &user, &session, "allocate_node", move |m| {
        let name = match requested {
            Some(n) => n,
            None => m.fresh_node_name(),
        };
        m.add_node(&name, node)?;
        Ok(json!({ "node": name }))
    })
    .await
}

/// The node a shape asks for; its profile must be the catalog's.
fn shaped_node(app: &App, r: Requires) -> ApiResult<NodeModel> {
    if let Some(p) = &r.profile {
        check_profile(app, p)?;
    }
    Ok(NodeModel {
        image: r.image,
        profile: r.profile,
        cpus: r.cpus,
        memory: r.memory,
        labels: r.labels,
        impair: Default::default(),
    })
}

fn check_profile(app: &App, p: &str) -> ApiResult<()> {
    if app.profiles.iter().any(|k| k == p) {
        return Ok(());
    }
    let known = if app.profiles.is_empty() {
        "the server's catalog defines none (start `tg serve` with `-catalog DIR`)".to_string()
    } else {
        format!(
            "expected one of {}",
            app.profiles
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "unknown_profile",
        format!("unknown profile `{}`: {known}", p.escape_debug()),
    ))
}

/// The session's nodes with their state.
#[utoipa::path(get, path = "/v1/sessions/{s}/nodes", tag = "nodes", params(SessionParam),
    responses((status = 200, body = NodeList),
        (status = 404, description = "no such session", body = ErrorBody)))]
pub(super) async fn list_nodes(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<NodeList>> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session).await?;
    Ok(Json(NodeList {
        nodes: node_views(&app, &m).await?,
    }))
}

/// One node with its state.
#[utoipa::path(get, path = "/v1/sessions/{s}/nodes/{n}", tag = "nodes",
    params(SessionParam, NodeParam),
    responses((status = 200, body = NodeView),
        (status = 404, description = "no such session or node", body = ErrorBody)))]
pub(super) async fn show_node(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
) -> ApiResult<Json<NodeView>> {
    let Path((s, n)) = path?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session).await?;
    node_views(&app, &m)
        .await?
        .into_iter()
        .find(|v| v.name == n)
        .map(Json)
        .ok_or_else(|| no_node(&session, &n))
}

pub(super) fn no_node(session: &SessionName, n: &str) -> ApiError {
    ApiError::not_found(format!(
        "session `{session}` has no node `{}`",
        n.escape_debug()
    ))
}

/// Job `release_node`: remove a node (its packages go with it).
#[utoipa::path(delete, path = "/v1/sessions/{s}/nodes/{n}", tag = "nodes",
    params(SessionParam, NodeParam),
    responses((status = 202, body = JobAccepted),
        (status = 404, description = "no such session or node", body = ErrorBody),
        (status = 409, description = "busy with a job; `changed`: another server changed the session meanwhile (retry); `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn release_node(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
) -> ApiResult<Response> {
    let Path((s, n)) = path?;
    let session = resolve(&user, &s)?;
    let sess = session.clone();
    change(&app, &user, &session, "release_node", move |m| {
        if m.nodes.remove(&n).is_none() {
            return Err(no_node(&sess, &n));
        }
        for p in m.packages.values_mut() {
            p.nodes.retain(|x| x != &n);
        }
        m.packages.retain(|_, p| !p.nodes.is_empty());
        Ok(json!({ "node": n }))
    })
    .await
}

/// Run a command on a node: its status and output (`base64` when not UTF-8).
#[utoipa::path(post, path = "/v1/sessions/{s}/nodes/{n}/exec", tag = "nodes",
    params(SessionParam, NodeParam), request_body = ExecRequest,
    responses((status = 200, body = ExecResponse),
        (status = 400, description = "empty command, bad timeout", body = ErrorBody),
        (status = 404, description = "no such session or node", body = ErrorBody),
        (status = 409, description = "`not_up`: the node is not made yet; `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn exec(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
    body: Body<ExecRequest>,
) -> ApiResult<Json<ExecResponse>> {
    let Path((s, n)) = path?;
    let Json(req) = body?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session).await?;
    if !m.nodes.contains_key(&n) {
        return Err(no_node(&session, &n));
    }
    let argv = match req.command {
        Command::Shell(c) if !c.trim().is_empty() => vec!["sh".into(), "-c".into(), c],
        Command::Argv(v) if !v.is_empty() && !v[0].is_empty() => v,
        _ => return Err(ApiError::bad_request("`command` is empty")),
    };
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(ApiError::bad_request("`command` contains a NUL byte"));
    }
    let timeout = match req.timeout {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 && t <= MAX_EXEC.as_secs_f64() => {
            Some(Duration::from_secs_f64(t))
        }
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "invalid `timeout`: expected seconds above 0, at most {}",
                MAX_EXEC.as_secs()
            )))
        }
    };
    let dir = app.session_dir(&session);
    let ws = app.workspace(&dir, &user.name);
    let ctx = app.context(&ws, &session).await.map_err(ops_error)?;
    let opts = ops::ExecOptions {
        argv,
        timeout,
        tty: false,
        stdin: None,
        signals: None,
        cancel: Default::default(),
    };
    let results = ops::exec(&ctx, &format!("node.{n}"), opts, None).await;
    // A store client may block when it closes.
    let _ = tokio::task::spawn_blocking(move || drop(ctx)).await;
    let results = match results {
        Ok(r) => r,
        Err(OpsError::Usage(_)) | Err(OpsError::State(_)) => return Err(not_up(&n)),
        Err(e) => return Err(ops_error(e)),
    };
    let Some(r) = results.into_iter().next() else {
        return Err(not_up(&n));
    };
    let Some(code) = r.exit_code else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "exec_failed",
            format!(
                "the command could not be run on node `{n}`: {}",
                r.error.unwrap_or_default()
            ),
        ));
    };
    let (stdout, out_enc) = encode(r.stdout);
    let (stderr, err_enc) = encode(r.stderr);
    Ok(Json(ExecResponse {
        returncode: code,
        timed_out: r.timed_out,
        stdout,
        stdout_encoding: out_enc.into(),
        stderr,
        stderr_encoding: err_enc.into(),
    }))
}

fn not_up(n: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "not_up",
        format!("node `{n}` is not created yet: wait for its job"),
    )
}

/// Output as text when it is UTF-8, else base64.
fn encode(bytes: Vec<u8>) -> (String, &'static str) {
    match String::from_utf8(bytes) {
        Ok(s) => (s, "utf-8"),
        Err(e) => (
            base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
            "base64",
        ),
    }
}

// ---------------------------------------------------------------- packages

/// Is a Debian package version installable (the server's apt sources).
#[utoipa::path(get, path = "/v1/packages/{name}/{version}", tag = "packages",
    params(("name" = String, Path, description = "a Debian package name"),
        ("version" = String, Path, description = "a Debian version")),
    responses((status = 200, body = PackageCheck),
        (status = 400, description = "invalid name or version", body = ErrorBody),
        (status = 404, description = "`no_such_package`, `no_such_version` (lists the installable versions)", body = ErrorBody)))]
pub(super) async fn check_package(
    State(app): AppState,
    _user: User,
    path: Params<(String, String)>,
) -> ApiResult<Json<PackageCheck>> {
    let Path((name, version)) = path?;
    model::check_package(&name, &version)?;
    let versions = app.config.versions.check(&name, &version).await?;
    Ok(Json(PackageCheck {
        name,
        version,
        installable: true,
        versions,
    }))
}

/// Job `deploy`: install a package version on a node (none given: on a new node).
#[utoipa::path(post, path = "/v1/sessions/{s}/packages", tag = "packages", params(SessionParam),
    request_body = DeployRequest,
    responses((status = 202, body = JobAccepted),
        (status = 400, description = "invalid name or version", body = ErrorBody),
        (status = 404, description = "no such session, node, package or version; `no_such_file`: no such uploaded `deb`", body = ErrorBody),
        (status = 409, description = "busy, or `version_conflict`; `changed`: another server changed the session meanwhile (retry); `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn deploy(
    State(app): AppState,
    user: User,
    path: Params<String>,
    body: Body<DeployRequest>,
) -> ApiResult<Response> {
    let Path(s) = path?;
    let Json(mut req) = body?;
    let session = resolve(&user, &s)?;
    model::check_package(&req.name, &req.version)?;
    if req.node.is_some() && req.requires.is_some() {
        return Err(ApiError::bad_request(
            "give `node` (deploy on it) or `requires` (the node to allocate), not both",
        ));
    }
    let shape = match req.node {
        Some(_) => None,
        None => Some(shaped_node(&app, req.requires.take().unwrap_or_default())?),
    };
    existing(&app, &session).await?;
    match &req.deb {
        Some(deb) => super::files::check_uploaded(&app.upload_dir(&session), deb)?,
        None => {
            app.config.versions.check(&req.name, &req.version).await?;
        }
    }
    let sess = session.clone();
    change(&app, &user, &session, "deploy", move |m| {
        if let Some(p) = m.packages.get(&req.name) {
            if p.deb != req.deb {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "version_conflict",
                    format!(
                        "package `{}` is deployed from {} in this session: undeploy it first",
                        req.name,
                        match &p.deb {
                            Some(d) => format!("the uploaded `{d}`"),
                            None => "the apt archives".to_string(),
                        }
                    ),
                ));
            }
            if p.version != req.version {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "version_conflict",
                    format!(
                        "package `{}` is deployed at version `{}` in this session: undeploy it first",
                        req.name, p.version
                    ),
                ));
            }
        }
        let node = match req.node {
            Some(n) => {
                if !m.nodes.contains_key(&n) {
                    return Err(no_node(&sess, &n));
                }
                n
            }
            None => {
                let n = m.fresh_node_name();
                m.add_node(&n, shape.unwrap_or_default())?;
                n
            }
        };
        let p = m
            .packages
            .entry(req.name.clone())
            .or_insert_with(|| PackageModel {
                version: req.version.clone(),
                nodes: Vec::new(),
                deb: req.deb.clone(),
            });
        if !p.nodes.contains(&node) {
            p.nodes.push(node.clone());
        }
        Ok(json!({ "package": req.name, "version": req.version, "node": node }))
    })
    .await
}

/// Job `undeploy`: remove a package (from one node with `?node=`).
#[utoipa::path(delete, path = "/v1/sessions/{s}/packages/{p}", tag = "packages",
    params(SessionParam, ("p" = String, Path, description = "the package name"), UndeployQuery),
    responses((status = 202, body = JobAccepted),
        (status = 404, description = "the package is not deployed (on that node)", body = ErrorBody),
        (status = 409, description = "busy with a job; `changed`: another server changed the session meanwhile (retry); `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn undeploy(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
    query: Result<axum::extract::Query<UndeployQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Path((s, p)) = path?;
    let axum::extract::Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let session = resolve(&user, &s)?;
    change(&app, &user, &session, "undeploy", move |m| {
        let Some(pkg) = m.packages.get_mut(&p) else {
            return Err(ApiError::not_found(format!(
                "package `{}` is not deployed in this session",
                p.escape_debug()
            )));
        };
        match &q.node {
            Some(n) => {
                if !pkg.nodes.contains(n) {
                    return Err(ApiError::not_found(format!(
                        "package `{p}` is not on node `{}`",
                        n.escape_debug()
                    )));
                }
                pkg.nodes.retain(|x| x != n);
            }
            None => pkg.nodes.clear(),
        }
        m.packages.retain(|_, p| !p.nodes.is_empty());
        Ok(json!({ "package": p }))
    })
    .await
}

// -------------------------------------------------------------------- jobs

/// A job of the caller (any job for admins).
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(JobParam),
    responses((status = 200, body = Job),
        (status = 404, description = "no such job (or another user's)", body = ErrorBody)))]
pub(super) async fn show_job(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<Job>> {
    let Path(id) = path?;
    visible_job(&app, &user, &id).map(Json)
}

/// Job `id` when `user` may see it (else a 404).
pub(super) fn visible_job(app: &App, user: &User, id: &str) -> ApiResult<Job> {
    match app.jobs.get(id) {
        Some(j) if j.owner == user.name || user.admin => Ok(j),
        _ => Err(ApiError::not_found(format!(
            "no job `{}`",
            id.escape_debug()
        ))),
    }
}
