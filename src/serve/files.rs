//! Files uploaded to a session: `.deb` packages to deploy
//! (`POST .../packages {deb}`) and files its testbed reads (the catalog's
//! profiles name them `files/NAME`).
//!
//! They live in the session's folder, `files/` ([`super::model::UPLOADS`]),
//! one of the two places its testbed may read (the other is the catalog:
//! see [`super::App::workspace`]). A name is a plain file name
//! ([`super::model::check_file_name`]); a body is written to a hidden
//! temporary file and renamed into place, so a job never reads half a file.
//! Not here: deploying from a `.deb` (`handlers::deploy`).

use std::io::Write as _;
use std::path::PathBuf;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};

use super::auth::User;
use super::error::{ApiError, ApiResult};
use super::handlers::{existing, resolve, AppState, Params};
use super::model;
use super::wire::{ErrorBody, FileBytes, SessionParam, UploadedFile};

/// Largest uploaded file (413 past it).
pub const UPLOAD_LIMIT: u64 = 256 * 1024 * 1024;

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
        (status = 409, description = "busy with a job", body = ErrorBody),
        (status = 413, description = "`too_large`: over 256 MiB", body = ErrorBody)))]
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
    existing(&app, &session)?;
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
    let dir = app.upload_dir(&session);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("cannot create the upload folder: {e}")))?;
    let target = dir.join(&name);
    let tmp = dir.join(format!(".upload-{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = receive(body, &tmp).await;
    let (size, sha256) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let replaced = target.exists();
    if let Err(e) = std::fs::rename(&tmp, &target) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ApiError::internal(format!(
            "cannot store the file `{name}`: {e}"
        )));
    }
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(UploadedFile { name, size, sha256 })).into_response())
}

/// Write a request body to `path`: its size and SHA-256.
async fn receive(body: axum::body::Body, path: &PathBuf) -> ApiResult<(u64, String)> {
    let io = |e: std::io::Error| ApiError::internal(format!("cannot store the upload: {e}"));
    let mut file = std::fs::File::create(path).map_err(io)?;
    let mut stream = body.into_data_stream();
    let mut hash = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("the upload stopped before its end: {e}"))
        })?;
        size += chunk.len() as u64;
        if size > UPLOAD_LIMIT {
            return Err(too_large());
        }
        hash.update(&chunk);
        file.write_all(&chunk).map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    let sha256 = hash
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Ok((size, sha256))
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
