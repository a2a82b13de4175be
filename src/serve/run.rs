//! What a job does: edit a session's model, write its document, plan and
//! apply it through [`crate::ops`] in the background, with the engine's
//! progress going to the job's events ([`super::jobs::Progress`]).
//!
//! Not here: the job table and the one-change-per-session rule (`jobs`),
//! the routes (`handlers`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::handlers::existing;
use super::model::{self, SessionModel};
use super::stored;
use super::wire::JobAccepted;
use super::App;
use crate::names::SessionName;
use crate::ops::{self, OpsError, Workspace};
use crate::state::StateError;

/// How many times a job reads the session again when other servers keep
/// changing it (to plan, or to mark it closing).
const PLAN_TRIES: u32 = 5;

/// How long a job waits for a session lock the CLI holds.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The workspace of a job: the session's folder, with the engine's
/// progress going to the job's events.
fn job_workspace(app: &App, session: &SessionName, user: &str, job: &str) -> Workspace {
    let mut ws = app.workspace(&app.session_dir(session), user);
    if let Some(p) = app.jobs.progress(job) {
        ws.hook = Arc::new(super::jobs::ProgressHook(p));
    }
    ws
}

/// Mark the session closing in the store (a change saved on another
/// server meanwhile is read again), so no job applies it after the close.
async fn mark_closing(app: &App, session: &SessionName) -> ApiResult<()> {
    for _ in 0..PLAN_TRIES {
        let mut m = existing(app, session).await?;
        if m.closing {
            return Ok(());
        }
        m.closing = true;
        match stored::save(app, session, &mut m).await {
            Err(e) if e.code == "changed" => continue,
            other => return other,
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "changed",
        format!("session `{session}` kept changing on other servers: close it again"),
    ))
}

/// The refusal of a change to a session being closed.
fn closing(session: &SessionName) -> ApiError {
    ApiError::busy(format!(
        "session `{session}` is being closed: it takes no change any more (close it again if that close failed)"
    ))
}

/// Destroy everything of a session, end it and remove its folder.
pub(super) async fn close_job(
    app: &App,
    session: &SessionName,
    user: &str,
    job: &str,
) -> ApiResult<Value> {
    mark_closing(app, session).await?;
    let ws = job_workspace(app, session, user, job);
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
    stored::forget(app, session).await?;
    Ok(json!({ "destroyed": report.destroyed }))
}

pub(super) fn accepted(job: super::jobs::Job) -> Response {
    (StatusCode::ACCEPTED, Json(JobAccepted { job })).into_response()
}

/// Change a session: take its job slot (409 when busy), edit its model
/// with `edit` (a refusal frees the slot and changes nothing), write the
/// document, and plan and apply it in the background. A document that
/// does not plan is put back as it was.
pub(super) async fn change(
    app: &Arc<App>,
    user: &User,
    session: &SessionName,
    kind: &str,
    edit: impl FnOnce(&mut SessionModel) -> ApiResult<Value>,
) -> ApiResult<Response> {
    let job = app.jobs.start(session.as_str(), &user.name, kind)?;
    let prepared = async {
        let before = existing(app, session).await?;
        if before.closing {
            return Err(closing(session));
        }
        let mut after = before.clone();
        let result = edit(&mut after)?;
        stored::save(app, session, &mut after).await?;
        Ok::<_, ApiError>((before, after.revision, result))
    }
    .await;
    let (before, written, result) = match prepared {
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
        let outcome = apply_job(&app2, &session, &user_name, &id).await;
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
                    // Put back what was there, unless another writer
                    // changed it since (then theirs stays).
                    let mut back = SessionModel {
                        revision: written,
                        ..before
                    };
                    let _ = stored::save(&app2, &session, &mut back).await;
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
    job: &str,
) -> Result<Value, (ApiError, bool)> {
    let ws = job_workspace(app, session, user, job);
    // Apply the newest document: another server may have changed the
    // session since this job's edit, and applying an older document after
    // a newer one would undo that change. So with the lock held, the
    // revision planned must still be the store's; else plan again.
    let mut tries = 0;
    let planned = loop {
        tries += 1;
        let read = existing(app, session).await.map_err(|e| (e, false))?;
        if read.closing {
            return Err((closing(session), true));
        }
        let context = app
            .context(&ws, session)
            .await
            .map_err(|e| (ops_error(e), false))?;
        let planned = ops::plan_context(&ws, context, &Default::default(), "apply", LOCK_WAIT)
            .await
            .map_err(|e| (ops_error(e), false))?;
        let now = stored::revision(app, session)
            .await
            .map_err(|e| (e, false))?;
        if now == read.revision {
            break planned;
        }
        planned
            .locked
            .release()
            .await
            .map_err(|e| (ops_error(e), false))?;
        if tries == PLAN_TRIES {
            // Never apply an older document: the change stays in the
            // model, and the job of whoever changed it last applies it.
            return Err((
                ApiError::new(
                    StatusCode::CONFLICT,
                    "changed",
                    format!("session `{session}` changed {PLAN_TRIES} times on other servers while this job planned: its change is in the session's document, and the job of the last change applies it"),
                ),
                true,
            ));
        }
    };
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
pub(super) fn save(app: &App, dir: &std::path::Path, m: &SessionModel) -> ApiResult<()> {
    for (name, text) in &app.catalog_files {
        let path = dir.join(format!("{}{name}", model::CATALOG_PREFIX));
        // Atomically and only when changed: a plan may be reading it.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            model::write_atomic(&path, text)?;
        }
    }
    model::save(dir, m)
}

/// A state store's error as the API shows it: the CLI holds the lock (409
/// `locked`), no such session (404), another writer came first (409
/// `changed`: read again and retry), else the server's fault (500).
pub(super) fn state_error(e: StateError) -> ApiError {
    match e {
        StateError::Locked { .. } => ApiError::new(StatusCode::CONFLICT, "locked", e.to_string()),
        StateError::NoSuchSession(_) => ApiError::not_found(e.to_string()),
        StateError::FileChanged { session, .. } => ApiError::new(
            StatusCode::CONFLICT,
            "changed",
            format!("session `{session}` was changed meanwhile by another server or client: read it again and retry"),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

/// An operation's error as the API shows it.
pub(super) fn ops_error(e: OpsError) -> ApiError {
    match e {
        OpsError::State(s) => state_error(*s),
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
pub(super) fn spawn_job<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let handle = tokio::runtime::Handle::current();
    // The future is made on the thread that runs it.
    tokio::task::spawn_blocking(move || handle.block_on(make()));
}

/// Run store work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the state call stopped unexpectedly: {e}")))?
        .map_err(state_error)
}
