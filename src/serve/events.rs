//! `GET /v1/jobs/{id}/events`: a job's progress as server-sent events.
//!
//! Each event's `event` is its kind (`started`, `finished`, `failed`,
//! `skipped`, `done`), its `id` its number in the job's stream and its
//! `data` the [`JobEvent`] as JSON. A client gets every event from the
//! first (or after `Last-Event-ID`), then the rest as they happen; the
//! stream ends after `done`. Not here: where events come from
//! (`jobs::ProgressHook`).

use std::time::Duration;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::handlers::{visible_job, AppState, Params};
use super::jobs::JobEvent;
use super::wire::{ErrorBody, JobParam};

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The job's progress: what happened so far, then the rest as it happens.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs", params(JobParam,
        ("last-event-id" = Option<u64>, Header, description = "resume after this event")),
    responses(
        (status = 200, description = "server-sent events: `event` is the kind, `id` the seq, `data` the event; the last is `done`",
            content_type = "text/event-stream", body = JobEvent),
        (status = 404, description = "no such job (or another user's)", body = ErrorBody)))]
pub(super) async fn job_events(
    axum::extract::State(app): AppState,
    user: User,
    path: Params<String>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, axum::Error>>>> {
    let Path(id) = path?;
    visible_job(&app, &user, &id)?;
    let progress = app
        .jobs
        .progress(&id)
        .ok_or_else(|| ApiError::not_found(format!("no events of job `{id}`")))?;
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request("invalid `last-event-id`: expected an event's number")
            })?,
    };
    let rx = progress.subscribe();
    // The receiver alone keeps nothing alive: the job table holds the log.
    drop(progress);
    let stream = futures_util::stream::unfold((rx, after), |(mut rx, seen)| async move {
        loop {
            let (next, done) = {
                let log = rx.borrow_and_update();
                let next = usize::try_from(seen)
                    .ok()
                    .and_then(|i| log.events.get(i))
                    .cloned();
                (next, log.done)
            };
            if let Some(e) = next {
                let seq = e.seq;
                return Some((to_sse(&e), (rx, seq)));
            }
            if done || rx.changed().await.is_err() {
                return None;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn to_sse(e: &JobEvent) -> Result<Event, axum::Error> {
    let kind = serde_json::to_value(e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Event::default()
        .event(kind)
        .id(e.seq.to_string())
        .json_data(e)
}
