//! The routes: request and response shapes, who may see what, and the
//! jobs that change sessions (edit the model, write the document, plan and
//! apply through [`crate::ops`]).
//!
//! A session in a path is `NAME` (the caller's own) or `OWNER/NAME`
//! percent-encoded (`alice%2Fhw`); another user's session is a 403 unless
//! the caller is an admin. Not here: tokens (`auth`), the document
//! (`model`).

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
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::model::{self, NodeModel, PackageModel, SessionModel};
use super::App;
use crate::names::SessionName;
use crate::ops::{self, OpsError};
use crate::platform::Spec;
use crate::state::StateError;

type AppState = State<Arc<App>>;
type Body<T> = Result<Json<T>, JsonRejection>;
type Params<T> = Result<Path<T>, PathRejection>;

/// How long a job waits for a session lock the CLI holds.
const LOCK_WAIT: Duration = Duration::from_secs(30);
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
        .route("/v1/sessions/{s}/testbed", get(export_testbed))
        .route("/v1/sessions/{s}/packages", post(deploy))
        .route(
            "/v1/sessions/{s}/packages/{p}",
            axum::routing::delete(undeploy),
        )
        .route("/v1/packages/{name}/{version}", get(check_package))
        .route("/v1/jobs/{id}", get(show_job))
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

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

// ---------------------------------------------------------------- sessions

/// The session a caller names: `NAME` (their own) or `OWNER/NAME`.
fn resolve(user: &User, given: &str) -> ApiResult<SessionName> {
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

/// The model of an existing session.
fn existing(app: &App, session: &SessionName) -> ApiResult<SessionModel> {
    model::load(&app.session_dir(session))?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no session `{session}`: open it first (`POST /v1/sessions`)"
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenRequest {
    name: String,
}

async fn open_session(
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
    let dir = app.session_dir(&session);
    if let Some(m) = model::load(&dir)? {
        return Ok((StatusCode::OK, Json(session_view(&app, &m).await?)).into_response());
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("cannot create the session folder: {e}")))?;
    let m = SessionModel::new(
        session.as_str(),
        session.owner().unwrap_or(&user.name),
        &app.config.platform,
    );
    save(&app, &dir, &m)?;
    Ok((StatusCode::CREATED, Json(session_view(&app, &m).await?)).into_response())
}

async fn list_sessions(State(app): AppState, user: User) -> ApiResult<Json<Value>> {
    let mut out = Vec::new();
    for (owner, name) in model::list(&app.config.data_dir) {
        if owner != user.name && !user.admin {
            continue;
        }
        let dir = model::session_dir(&app.config.data_dir, &owner, &name);
        if let Some(m) = model::load(&dir)? {
            out.push(json!({
                "name": m.name,
                "owner": m.owner,
                "platform": m.platform,
                "created": m.created,
                "nodes": m.nodes.len(),
                "job": app.jobs.running(&m.name),
            }));
        }
    }
    Ok(Json(json!({ "sessions": out })))
}

async fn show_session(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<Value>> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session)?;
    Ok(Json(session_view(&app, &m).await?))
}

/// The session's testbed: its document and the catalog's files it uses,
/// to review and re-apply with the CLI.
async fn export_testbed(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<Value>> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session)?;
    let mut files = serde_json::Map::new();
    files.insert(model::DOCUMENT.into(), json!(m.render()));
    for (name, text) in &app.catalog_files {
        files.insert(format!("catalog-{name}"), json!(text));
    }
    Ok(Json(json!({ "session": m.name, "files": files })))
}

async fn close_session(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Response> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    existing(&app, &session)?;
    let job = app.jobs.start(session.as_str(), &user.name, "close")?;
    let (app2, id) = (app.clone(), job.id.clone());
    spawn_job(move || async move {
        let result = close_job(&app2, &session, &user.name).await;
        app2.jobs.finish(&id, result);
    });
    Ok(accepted(job))
}

async fn close_job(app: &App, session: &SessionName, user: &str) -> ApiResult<Value> {
    let dir = app.session_dir(session);
    let ws = app.workspace(&dir, user);
    let context = app.context(&ws, session).await.map_err(ops_error)?;
    let store = context.store.clone();
    let planned = ops::plan_destroy_from_state(context, &Default::default(), LOCK_WAIT)
        .await
        .map_err(ops_error)?;
    let report = ops::apply(&planned.locked, &planned.plan, &Default::default()).await;
    let released = planned.locked.release().await;
    let report = report.map_err(ops_error)?;
    released.map_err(ops_error)?;
    if !report.success() {
        return Err(apply_failed(&report));
    }
    let name = session.as_str().to_string();
    blocking(move || {
        if store.get_session(&name)?.is_some() {
            store.delete_session(&name)?;
        }
        Ok(())
    })
    .await?;
    std::fs::remove_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("cannot remove the session folder: {e}")))?;
    Ok(json!({ "destroyed": report.destroyed }))
}

/// A session as the API shows it.
async fn session_view(app: &App, m: &SessionModel) -> ApiResult<Value> {
    let nodes = node_views(app, m).await?;
    Ok(json!({
        "name": m.name,
        "owner": m.owner,
        "platform": m.platform,
        "created": m.created,
        "nodes": nodes,
        "packages": m.packages,
        "job": app.jobs.running(&m.name),
    }))
}

// ------------------------------------------------------------------- nodes

/// Each node of the model with what state records of it.
async fn node_views(app: &App, m: &SessionModel) -> ApiResult<Vec<Value>> {
    let snap = read_state(app, m).await?;
    let mut out = Vec::new();
    for (name, n) in &m.nodes {
        let addr = format!("node.{name}");
        let rec = snap
            .as_ref()
            .and_then(|s| s.instances.values().find(|r| r.address.to_string() == addr));
        let (state, address, labels) = match rec {
            Some(r) => {
                let state = serde_json::to_value(r.status).unwrap_or(Value::Null);
                match &r.spec {
                    Spec::Node(spec) => (
                        state,
                        spec.interfaces.first().map(|i| i.address.to_string()),
                        spec.labels.clone(),
                    ),
                    _ => (state, None, n.labels.clone()),
                }
            }
            None => (json!("pending"), None, n.labels.clone()),
        };
        out.push(json!({
            "name": name,
            "hostname": name,
            "state": state,
            "address": address,
            "image": n.image,
            "profile": n.profile,
            "labels": labels,
            "packages": m.packages.iter()
                .filter(|(_, p)| p.nodes.iter().any(|x| x == name))
                .map(|(k, p)| json!({ "name": k, "version": p.version }))
                .collect::<Vec<_>>(),
        }));
    }
    Ok(out)
}

/// The session's state (`None`: nothing applied yet).
async fn read_state(app: &App, m: &SessionModel) -> ApiResult<Option<crate::state::Snapshot>> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllocateRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    image: Option<String>,
    /// The original TestGrid's spelling of `image`.
    #[serde(default)]
    is_image: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    cpus: Option<u32>,
    #[serde(default)]
    memory: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

async fn allocate_node(
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
    if let Some(p) = &req.profile {
        check_profile(&app, p)?;
    }
    let node = NodeModel {
        image,
        profile: req.profile,
        cpus: req.cpus,
        memory: req.memory,
        labels: req.labels,
    };
    let requested = req.name;
    change(&app, &user, &session, "allocate_node", move |m| {
        let name = match requested {
            Some(n) => n,
            None => m.fresh_node_name(),
        };
        m.add_node(&name, node)?;
        Ok(json!({ "node": name }))
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

async fn list_nodes(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<Value>> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session)?;
    Ok(Json(json!({ "nodes": node_views(&app, &m).await? })))
}

async fn show_node(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
) -> ApiResult<Json<Value>> {
    let Path((s, n)) = path?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session)?;
    node_views(&app, &m)
        .await?
        .into_iter()
        .find(|v| v["name"] == n.as_str())
        .map(Json)
        .ok_or_else(|| no_node(&session, &n))
}

fn no_node(session: &SessionName, n: &str) -> ApiError {
    ApiError::not_found(format!(
        "session `{session}` has no node `{}`",
        n.escape_debug()
    ))
}

async fn release_node(
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
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Command {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecRequest {
    command: Command,
    /// Seconds; the command is ended after it (returncode 124).
    #[serde(default)]
    timeout: Option<f64>,
}

async fn exec(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
    body: Body<ExecRequest>,
) -> ApiResult<Json<Value>> {
    let Path((s, n)) = path?;
    let Json(req) = body?;
    let session = resolve(&user, &s)?;
    let m = existing(&app, &session)?;
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
    Ok(Json(json!({
        "returncode": code,
        "timed_out": r.timed_out,
        "stdout": stdout,
        "stdout_encoding": out_enc,
        "stderr": stderr,
        "stderr_encoding": err_enc,
    })))
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

async fn check_package(
    State(app): AppState,
    _user: User,
    path: Params<(String, String)>,
) -> ApiResult<Json<Value>> {
    let Path((name, version)) = path?;
    model::check_package(&name, &version)?;
    let versions = app.config.versions.check(&name, &version).await?;
    Ok(Json(json!({
        "name": name,
        "version": version,
        "installable": true,
        "versions": versions,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployRequest {
    name: String,
    version: String,
    #[serde(default)]
    node: Option<String>,
}

async fn deploy(
    State(app): AppState,
    user: User,
    path: Params<String>,
    body: Body<DeployRequest>,
) -> ApiResult<Response> {
    let Path(s) = path?;
    let Json(req) = body?;
    let session = resolve(&user, &s)?;
    model::check_package(&req.name, &req.version)?;
    existing(&app, &session)?;
    app.config.versions.check(&req.name, &req.version).await?;
    let sess = session.clone();
    change(&app, &user, &session, "deploy", move |m| {
        if let Some(p) = m.packages.get(&req.name) {
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
                m.add_node(
                    &n,
                    NodeModel {
                        image: None,
                        profile: None,
                        cpus: None,
                        memory: None,
                        labels: BTreeMap::new(),
                    },
                )?;
                n
            }
        };
        let p = m
            .packages
            .entry(req.name.clone())
            .or_insert_with(|| PackageModel {
                version: req.version.clone(),
                nodes: Vec::new(),
            });
        if !p.nodes.contains(&node) {
            p.nodes.push(node.clone());
        }
        Ok(json!({ "package": req.name, "version": req.version, "node": node }))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UndeployQuery {
    #[serde(default)]
    node: Option<String>,
}

async fn undeploy(
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
}

// -------------------------------------------------------------------- jobs

async fn show_job(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<Value>> {
    let Path(id) = path?;
    match app.jobs.get(&id) {
        Some(j) if j.owner == user.name || user.admin => {
            Ok(Json(serde_json::to_value(j).unwrap_or(Value::Null)))
        }
        _ => Err(ApiError::not_found(format!(
            "no job `{}`",
            id.escape_debug()
        ))),
    }
}

fn accepted(job: super::jobs::Job) -> Response {
    (StatusCode::ACCEPTED, Json(json!({ "job": job }))).into_response()
}

/// Change a session: take its job slot (409 when busy), edit its model
/// with `edit` (a refusal frees the slot and changes nothing), write the
/// document, and plan and apply it in the background. A document that
/// does not plan is put back as it was.
fn change(
    app: &Arc<App>,
    user: &User,
    session: &SessionName,
    kind: &str,
    edit: impl FnOnce(&mut SessionModel) -> ApiResult<Value>,
) -> ApiResult<Response> {
    let dir = app.session_dir(session);
    let job = app.jobs.start(session.as_str(), &user.name, kind)?;
    let prepared = (|| -> ApiResult<(SessionModel, Value)> {
        let before = existing(app, session)?;
        let mut after = before.clone();
        let result = edit(&mut after)?;
        save(app, &dir, &after)?;
        Ok((before, result))
    })();
    let (before, result) = match prepared {
        Ok(p) => p,
        Err(e) => {
            app.jobs.finish(&job.id, Err(e.clone()));
            return Err(e);
        }
    };
    let (app2, id, session, user_name) = (
        app.clone(),
        job.id.clone(),
        session.clone(),
        user.name.clone(),
    );
    spawn_job(move || async move {
        let outcome = apply_job(&app2, &session, &user_name).await;
        let outcome = match outcome {
            Ok(report) => {
                let mut r = result;
                if let Value::Object(o) = &mut r {
                    o.insert("apply".into(), report);
                }
                Ok(r)
            }
            Err((e, planned)) => {
                if !planned {
                    let _ = save(&app2, &app2.session_dir(&session), &before);
                }
                Err(e)
            }
        };
        app2.jobs.finish(&id, outcome);
    });
    Ok(accepted(job))
}

/// Plan and apply a session's document. The error says whether the plan
/// was made (a failure after that leaves the document as it is: state
/// records what was done).
async fn apply_job(
    app: &App,
    session: &SessionName,
    user: &str,
) -> Result<Value, (ApiError, bool)> {
    let ws = app.workspace(&app.session_dir(session), user);
    let context = app
        .context(&ws, session)
        .await
        .map_err(|e| (ops_error(e), false))?;
    let planned = ops::plan_context(&ws, context, &Default::default(), "apply", LOCK_WAIT)
        .await
        .map_err(|e| (ops_error(e), false))?;
    let report = ops::apply(&planned.locked, &planned.plan, &Default::default()).await;
    let released = planned.locked.release().await;
    let report = report.map_err(|e| (ops_error(e), true))?;
    released.map_err(|e| (ops_error(e), true))?;
    if !report.success() {
        return Err((apply_failed(&report), true));
    }
    Ok(json!({
        "added": report.added,
        "changed": report.changed,
        "destroyed": report.destroyed,
    }))
}

fn apply_failed(report: &crate::apply::ApplyReport) -> ApiError {
    let mut parts: Vec<String> = report
        .failed
        .iter()
        .map(|f| format!("{}: {}", f.address, f.message))
        .collect();
    if let Some(e) = &report.state_error {
        parts.push(format!("state: {e}"));
    }
    if parts.is_empty() {
        parts.push("the apply did not finish".into());
    }
    ApiError::new(StatusCode::CONFLICT, "apply_failed", parts.join("; "))
}

/// Write a session's model and document, with the catalog's files beside.
fn save(app: &App, dir: &std::path::Path, m: &SessionModel) -> ApiResult<()> {
    for (name, text) in &app.catalog_files {
        let path = dir.join(format!("catalog-{name}"));
        std::fs::write(&path, text)
            .map_err(|e| ApiError::internal(format!("cannot write `{}`: {e}", path.display())))?;
    }
    model::save(dir, m)
}

/// An operation's error as the API shows it.
fn ops_error(e: OpsError) -> ApiError {
    match e {
        OpsError::State(s) => match *s {
            StateError::Locked { .. } => {
                ApiError::new(StatusCode::CONFLICT, "locked", s.to_string())
            }
            StateError::NoSuchSession(_) => ApiError::not_found(s.to_string()),
            other => ApiError::internal(other.to_string()),
        },
        OpsError::Load(l) | OpsError::Plan(l) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_testbed",
            crate::diagnostics::render_all(&l.diagnostics, &l.sources),
        ),
        OpsError::Diagnostics(d) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_testbed",
            d.iter()
                .map(|x| x.summary.clone())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => ApiError::new(StatusCode::CONFLICT, "failed", other.to_string()),
    }
}

/// Run a job in the background. `ops::apply`'s future holds the session
/// lock by reference and the lock is not `Sync`, so the future is not
/// `Send`: it runs on a blocking thread of its own, driven by the server's
/// runtime.
fn spawn_job<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let handle = tokio::runtime::Handle::current();
    // The future is made on the thread that runs it.
    tokio::task::spawn_blocking(move || handle.block_on(make()));
}

/// Run store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the state read stopped unexpectedly: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))
}
