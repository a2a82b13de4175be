//! API sessions kept in the state store, so every `tg serve` on one store
//! serves them (two servers on one PostgreSQL state, or a server restarted
//! with a fresh data dir).
//!
//! The store keeps, per session ([`crate::state::files`]), the model
//! (`session.json`) and the uploaded files (`files/NAME`). Each edit of the
//! model is a compare-and-swap on the revision it was read at, so two
//! servers changing one session at once never lose one's change: the
//! second gets a 409 `changed` and retries. The session's folder on this
//! server (`sessions/OWNER/NAME/`, what plan and apply read) is a copy,
//! brought up to date from the store each time the session is read: the
//! model, the document rendered from it, the catalog's files, the uploads
//! (copied when their SHA-256 differs from the copy's, recorded in the
//! folder's `.uploads.json`).
//!
//! A session whose nodes are local (netns) records the machine they run
//! on ([`SessionModel::host`]); another server answers 409 `elsewhere`
//! naming it. Not here: what the model means ([`super::model`]), the
//! routes ([`super::handlers`], [`super::files`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use super::model::{self, SessionModel};
use super::App;
use crate::names::SessionName;
use crate::state::{Expect, StateError, StateStore, StoredFile};

/// The name uploads have in the store: `files/NAME`.
fn upload_key(name: &str) -> String {
    format!("{}/{name}", model::UPLOADS)
}

/// The copy's record of which uploads it holds: name → SHA-256.
const UPLOADS_INDEX: &str = ".uploads.json";

/// Run store work off the async threads, with the API's errors
/// ([`super::run::state_error`]: a refused compare-and-swap is a 409
/// `changed`).
async fn on_store<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&dyn StateStore) -> Result<T, StateError> + Send + 'static,
) -> ApiResult<T> {
    let store: Arc<dyn StateStore> = app.store.clone();
    super::run::blocking(move || f(store.as_ref())).await
}

/// The model in the store's text, with the revision it was read at.
fn decode(session: &str, row: &StoredFile, text: &[u8]) -> ApiResult<SessionModel> {
    let mut m: SessionModel = serde_json::from_slice(text).map_err(|e| {
        ApiError::internal(format!(
            "the stored model of session `{session}` is damaged: {e}"
        ))
    })?;
    m.revision = Some(row.revision);
    Ok(m)
}

/// The session's model (`None`: no such session), after checking this
/// server may serve it and bringing its folder up to date.
pub async fn load(app: &App, session: &SessionName) -> ApiResult<Option<SessionModel>> {
    let name = session.as_str().to_string();
    let read = on_store(app, move |s| s.read_session_file(&name, model::MODEL)).await?;
    let Some((row, text)) = read else {
        return Ok(None);
    };
    let m = decode(session.as_str(), &row, &text)?;
    if let Some(h) = m.host.as_deref().filter(|h| *h != app.config.netns_host) {
        return Err(held_by(session, h));
    }
    let uploads = stored_uploads(app, session).await?;
    let dir = app.session_dir(session);
    refresh_folder(app, session, &dir, &m, &uploads).await?;
    Ok(Some(m))
}

/// The store's revision of the session's model (`None`: no such session).
pub async fn revision(app: &App, session: &SessionName) -> ApiResult<Option<i64>> {
    let name = session.as_str().to_string();
    let rows = on_store(app, move |s| s.session_files(&name)).await?;
    Ok(rows
        .into_iter()
        .find(|f| f.name == model::MODEL)
        .map(|f| f.revision))
}

/// The testbed of `session` as the store keeps it: the document rendered
/// from its model, then the catalog files it was opened with (sorted);
/// `None`: no such session. For `tg session export` without the data dir.
pub fn testbed_in_store(
    store: &dyn StateStore,
    session: &str,
) -> Result<Option<Vec<(String, String)>>, String> {
    let err = |e: StateError| e.to_string();
    let Some((row, text)) = store
        .read_session_file(session, model::MODEL)
        .map_err(err)?
    else {
        return Ok(None);
    };
    let m = decode(session, &row, &text).map_err(|e| e.message)?;
    let mut files = vec![(model::DOCUMENT.to_string(), m.render())];
    for f in store.session_files(session).map_err(err)? {
        if !f.name.starts_with(model::CATALOG_PREFIX) {
            continue;
        }
        if let Some((_, text)) = store.read_session_file(session, &f.name).map_err(err)? {
            files.push((f.name, String::from_utf8_lossy(&text).into_owned()));
        }
    }
    Ok(Some(files))
}

/// The 409 of a session whose nodes run on machine `host`.
pub fn held_by(session: &SessionName, host: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "elsewhere",
        format!(
            "session `{session}` is held by the tg serve on host `{host}` (its nodes run there): open it there"
        ),
    )
}

/// Every session the store keeps a model of, sorted by name (those this
/// server cannot read are left out).
pub async fn list(app: &App) -> ApiResult<Vec<SessionModel>> {
    let rows = on_store(app, |s| {
        let mut out = Vec::new();
        for name in s.sessions_with_file(model::MODEL)? {
            if let Some(found) = s.read_session_file(&name, model::MODEL)? {
                out.push((name, found));
            }
        }
        Ok(out)
    })
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, (row, text))| decode(&name, &row, &text).ok())
        .collect())
}

/// Write the session's model: new when it has no revision (refused when
/// the store has one meanwhile), else over the revision it was read at
/// (409 `changed` when another writer came first). Its folder follows.
pub async fn save(app: &App, session: &SessionName, m: &mut SessionModel) -> ApiResult<()> {
    let text = serde_json::to_vec_pretty(&*m)
        .map_err(|e| ApiError::internal(format!("cannot encode the session: {e}")))?;
    let expect = m.revision.map_or(Expect::Absent, Expect::Revision);
    let name = session.as_str().to_string();
    // A new session keeps the catalog's files it was opened with, so its
    // testbed can be exported from the store alone.
    let catalog: Vec<(String, String)> = match expect {
        Expect::Absent => app
            .catalog_files
            .iter()
            .map(|(f, text)| (format!("{}{f}", model::CATALOG_PREFIX), text.clone()))
            .collect(),
        _ => Vec::new(),
    };
    let row = on_store(app, move |s| {
        let row = s.write_session_file(&name, model::MODEL, &text, expect)?;
        for (f, text) in &catalog {
            s.write_session_file(&name, f, text.as_bytes(), Expect::Any)?;
        }
        Ok(row)
    })
    .await?;
    m.revision = Some(row.revision);
    write_model(app, &app.session_dir(session), m)
}

/// Forget the session: its files in the store and its folder here.
pub async fn forget(app: &App, session: &SessionName) -> ApiResult<()> {
    let name = session.as_str().to_string();
    on_store(app, move |s| s.remove_session_files(&name, None)).await?;
    match std::fs::remove_dir_all(app.session_dir(session)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ApiError::internal(format!(
            "cannot remove the session folder: {e}"
        ))),
    }
}

/// The session's uploads in the store, by file name (without `files/`).
pub async fn stored_uploads(app: &App, session: &SessionName) -> ApiResult<Vec<StoredFile>> {
    let name = session.as_str().to_string();
    let rows = on_store(app, move |s| s.session_files(&name)).await?;
    let prefix = upload_key("");
    Ok(rows
        .into_iter()
        .filter_map(|mut f| {
            let short = f.name.strip_prefix(&prefix)?.to_string();
            // Only names an upload could have: a row written by hand
            // never names a path outside the folder.
            model::check_file_name(&short).ok()?;
            f.name = short;
            Some(f)
        })
        .collect())
}

/// Keep `content` as the session's uploaded file `name`: into the store,
/// then into the folder (atomically: a job never reads half a file).
pub async fn put_upload(
    app: &App,
    session: &SessionName,
    name: &str,
    content: Vec<u8>,
) -> ApiResult<StoredFile> {
    let dir = app.upload_dir(session);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("cannot create the upload folder: {e}")))?;
    let (s, key) = (session.as_str().to_string(), upload_key(name));
    let (mut row, content) = on_store(app, move |st| {
        let row = st.write_session_file(&s, &key, &content, Expect::Any)?;
        Ok((row, content))
    })
    .await?;
    model::write_atomic(&dir.join(name), &content)?;
    let mut index = read_index(&dir);
    index.insert(name.to_string(), row.sha256.clone());
    write_index(&dir, &index)?;
    row.name = name.to_string();
    Ok(row)
}

/// Remove the session's uploaded file `name`, from the store and the folder.
pub async fn remove_upload(app: &App, session: &SessionName, name: &str) -> ApiResult<()> {
    let (s, key) = (session.as_str().to_string(), upload_key(name));
    on_store(app, move |st| st.remove_session_files(&s, Some(&key))).await?;
    let dir = app.upload_dir(session);
    remove_local(&dir, name)?;
    let mut index = read_index(&dir);
    index.remove(name);
    write_index(&dir, &index)
}

fn remove_local(dir: &Path, name: &str) -> ApiResult<()> {
    match std::fs::remove_file(dir.join(name)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ApiError::internal(format!(
            "cannot delete the file `{name}`: {e}"
        ))),
    }
}

/// Which model the folder holds: the session's `id` (a new session of the
/// same name is another one) and the revision.
const COPY_OF: &str = ".copy-of.json";

/// Write the model, its document and the catalog's files into `dir`,
/// unless the folder holds this session's model at this revision or a
/// newer one already: a slow request never puts an older document back
/// under a job that is about to plan the newer one. One writer at a time
/// per server (`App::folders`).
fn write_model(app: &App, dir: &Path, m: &SessionModel) -> ApiResult<()> {
    let _one = app
        .folders
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let have: Option<(String, i64)> = std::fs::read(dir.join(COPY_OF))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok());
    let want = (m.id.clone(), m.revision.unwrap_or(0));
    let current = have
        .as_ref()
        .is_some_and(|(id, rev)| *id == want.0 && *rev >= want.1);
    if current && dir.join(model::MODEL).is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| ApiError::internal(format!("cannot create the session folder: {e}")))?;
    super::run::save(app, dir, m)?;
    let text = serde_json::to_string(&want).unwrap_or_default();
    model::write_atomic(&dir.join(COPY_OF), &text)
}

/// Bring the folder `dir` to what the store holds: the model (when the
/// copy's is older) and the uploads (copied when missing or changed,
/// removed when the store has them no more).
async fn refresh_folder(
    app: &App,
    session: &SessionName,
    dir: &Path,
    m: &SessionModel,
    uploads: &[StoredFile],
) -> ApiResult<()> {
    write_model(app, dir, m)?;
    let files = dir.join(model::UPLOADS);
    let mut index = read_index(&files);
    let before = index.clone();
    for gone in before
        .keys()
        .filter(|n| !uploads.iter().any(|u| &u.name == *n))
    {
        remove_local(&files, gone)?;
        index.remove(gone);
    }
    for u in uploads {
        let have = index.get(&u.name) == Some(&u.sha256) && files.join(&u.name).is_file();
        if have {
            continue;
        }
        let (s, key) = (session.as_str().to_string(), upload_key(&u.name));
        let Some((_, content)) = on_store(app, move |st| st.read_session_file(&s, &key)).await?
        else {
            continue;
        };
        std::fs::create_dir_all(&files)
            .map_err(|e| ApiError::internal(format!("cannot create the upload folder: {e}")))?;
        model::write_atomic(&files.join(&u.name), &content)?;
        index.insert(u.name.clone(), crate::state::files::sha256_hex(&content));
    }
    if index != before {
        write_index(&files, &index)?;
    }
    Ok(())
}

fn read_index(files: &Path) -> BTreeMap<String, String> {
    std::fs::read(files.join(UPLOADS_INDEX))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

fn write_index(files: &Path, index: &BTreeMap<String, String>) -> ApiResult<()> {
    std::fs::create_dir_all(files)
        .map_err(|e| ApiError::internal(format!("cannot record the uploads: {e}")))?;
    model::write_atomic(
        &files.join(UPLOADS_INDEX),
        serde_json::to_vec(index).unwrap_or_default(),
    )
}
