//! Files uploaded to a session: `.deb` packages to deploy
//! (`POST .../packages {deb}`) and files its testbed reads (the catalog's
//! profiles name them `files/NAME`).
//!
//! They are kept in the state store ([`super::stored`]) and copied into the
//! session's folder, `files/` ([`super::model::UPLOADS`]), one of the two
//! places its testbed may read (the other is the catalog: see
//! [`super::App::workspace`]). A name is a plain file name
//! ([`super::model::check_file_name`]); a body is received whole (at most
//! 256 MiB), stored, then written into the folder through a temporary file
//! and a rename, so a job never reads half a file.
//! Not here: deploying from a `.deb` (`handlers::deploy`).

use crate::state::StoredFile;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt as _;

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::handlers::{existing, resolve, AppState, Params};
use super::model;
use super::stored;
use super::wire::{ErrorBody, FileBytes, SessionParam, UploadedFile};

/// Largest uploaded file (413 past it).
pub const UPLOAD_LIMIT: u64 = 256 * 1024 * 1024;
/// Most bytes a session's uploads may hold together (413 `quota` past it).
pub const SESSION_QUOTA: u64 = 1024 * 1024 * 1024;
/// Most files a session may hold (413 `quota` past it).
pub const SESSION_FILES: usize = 100;

/// A session's upload slot, freed on drop.
struct Uploading<'a> {
    app: &'a super::App,
    session: String,
}

impl Drop for Uploading<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.app.uploading.lock() {
            set.remove(&self.session);
        }
    }
}

/// Take `session`'s upload slot: a 409 `busy` while another upload to it
/// runs.
fn start_upload<'a>(app: &'a super::App, session: &str) -> ApiResult<Uploading<'a>> {
    let mut set = app
        .uploading
        .lock()
        .map_err(|_| ApiError::internal("the upload table is poisoned".to_string()))?;
    if !set.insert(session.to_string()) {
        return Err(ApiError::busy(format!(
            "session `{session}` is receiving another upload: retry when it ends"
        )));
    }
    Ok(Uploading {
        app,
        session: session.to_string(),
    })
}

/// What the session's uploads hold in the store, but `except` (a file
/// about to be replaced): `(bytes, files)`.
fn used(uploads: &[StoredFile], except: &str) -> (u64, usize) {
    uploads
        .iter()
        .filter(|f| f.name != except)
        .fold((0, 0), |(bytes, files), f| (bytes + f.size, files + 1))
}

fn over_quota(message: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "quota", message)
}

/// Upload a file to a session (raw body): 201 new, 200 replaced.
#[utoipa::path(put, path = "/v1/sessions/{s}/files/{name}", tag = "files",
    params(SessionParam, ("name" = String, Path,
        description = "a plain file name: letters, digits and `-_.+`, not starting with `.`")),
    request_body(content = FileBytes, content_type = "application/octet-stream",
        description = "the file's bytes, at most 256 MiB"),
    responses(
        (status = 201, description = "uploaded", body = UploadedFile),
        (status = 200, description = "replaced", body = UploadedFile),
        (status = 400, description = "invalid file name", body = ErrorBody),
        (status = 403, description = "another user's session", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody),
        (status = 409, description = "busy with a job or another upload; `elsewhere`: its nodes run on another server's host", body = ErrorBody),
        (status = 413, description = "`too_large`: over 256 MiB; `quota`: the session's uploads would pass 1 GiB or 100 files", body = ErrorBody)))]
pub(super) async fn upload(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let axum::extract::Path((s, name)) = path?;
    let session = resolve(&user, &s)?;
    model::check_file_name(&name)?;
    existing(&app, &session).await?;
    if let Some(id) = app.jobs.running(session.as_str()) {
        return Err(ApiError::busy(format!(
            "session `{session}` is busy with job `{id}`: upload when it ends"
        )));
    }
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > UPLOAD_LIMIT) {
        return Err(too_large());
    }
    let _slot = start_upload(&app, session.as_str())?;
    let uploads = stored::stored_uploads(&app, &session).await?;
    let replaced = uploads.iter().any(|f| f.name == name);
    let (bytes, files) = used(&uploads, &name);
    if files >= SESSION_FILES && !replaced {
        return Err(over_quota(format!(
            "session `{session}` holds {files} uploaded files, the most it may: delete one first"
        )));
    }
    let room = SESSION_QUOTA.saturating_sub(bytes);
    let quota = || {
        over_quota(format!(
            "session `{session}`'s uploads would pass {} MiB ({} MiB used): delete some first",
            SESSION_QUOTA / (1024 * 1024),
            bytes / (1024 * 1024)
        ))
    };
    if declared.is_some_and(|n| n > room) {
        return Err(quota());
    }
    let content = receive(body, room.min(UPLOAD_LIMIT)).await.map_err(|e| {
        if e.code == "too_large" && room < UPLOAD_LIMIT {
            quota()
        } else {
            e
        }
    })?;
    let row = stored::put_upload(&app, &session, &name, content).await?;
    let (size, sha256) = (row.size, row.sha256);
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(UploadedFile { name, size, sha256 })).into_response())
}

/// A request body, at most `limit` bytes (413 `too_large` past it).
async fn receive(body: axum::body::Body, limit: u64) -> ApiResult<Vec<u8>> {
    let mut stream = body.into_data_stream();
    let mut content = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("the upload stopped before its end: {e}"))
        })?;
        if (content.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        content.extend_from_slice(&chunk);
    }
    Ok(content)
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "an uploaded file is at most {} MiB",
            UPLOAD_LIMIT / (1024 * 1024)
        ),
    )
}

/// Check that an uploaded file `name` of a session's uploads is there,
/// for a deploy from it.
pub(super) fn check_uploaded(dir: &std::path::Path, name: &str) -> ApiResult<()> {
    model::check_file_name(name)?;
    match std::fs::metadata(dir.join(name)) {
        Ok(m) if m.is_file() => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_file",
            format!("no uploaded file `{name}`: upload it first (`PUT /v1/sessions/{{s}}/files/{name}`)"),
        )),
    }
}

/// The files uploaded to a session, sorted by name, each with its size
/// and SHA-256 (as `PUT` answered).
#[utoipa::path(get, path = "/v1/sessions/{s}/files", tag = "files",
    params(SessionParam),
    responses(
        (status = 200, description = "the uploaded files, sorted by name", body = [UploadedFile]),
        (status = 403, description = "another user's session", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody)))]
pub(super) async fn list(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Json<Vec<UploadedFile>>> {
    let axum::extract::Path(s) = path?;
    let session = resolve(&user, &s)?;
    existing(&app, &session).await?;
    let out = stored::stored_uploads(&app, &session)
        .await?
        .into_iter()
        .map(|f| UploadedFile {
            name: f.name,
            size: f.size,
            sha256: f.sha256,
        })
        .collect();
    Ok(Json(out))
}

/// Delete a file uploaded to a session: 204. Refused (409) while a job
/// runs and while the session's testbed uses the file (a package
/// deployed from it).
#[utoipa::path(delete, path = "/v1/sessions/{s}/files/{name}", tag = "files",
    params(SessionParam, ("name" = String, Path, description = "an uploaded file's name")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "invalid file name", body = ErrorBody),
        (status = 403, description = "another user's session", body = ErrorBody),
        (status = 404, description = "no such session; `no_such_file`: no such uploaded file", body = ErrorBody),
        (status = 409, description = "busy with a job; `in_use`: a package of the session is deployed from it", body = ErrorBody)))]
pub(super) async fn delete(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
) -> ApiResult<StatusCode> {
    let axum::extract::Path((s, name)) = path?;
    let session = resolve(&user, &s)?;
    model::check_file_name(&name)?;
    let m = existing(&app, &session).await?;
    if let Some(id) = app.jobs.running(session.as_str()) {
        return Err(ApiError::busy(format!(
            "session `{session}` is busy with job `{id}`: delete when it ends"
        )));
    }
    let dir = app.upload_dir(&session);
    check_uploaded(&dir, &name)?;
    if let Some((pkg, _)) = m
        .packages
        .iter()
        .find(|(_, p)| p.deb.as_deref() == Some(name.as_str()))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "in_use",
            format!(
                "the package `{pkg}` of session `{session}` is deployed from `{name}`: undeploy it first (`DELETE /v1/sessions/{{s}}/packages/{pkg}`)"
            ),
        ));
    }
    stored::remove_upload(&app, &session, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
