//! Impairing a session's links: `PUT`/`DELETE .../nodes/{n}/impair` (every
//! link of one node) and `PUT`/`DELETE /v1/sessions/{s}/impair` (every
//! node's link to the session's network).
//!
//! The impairment is part of the session's document (an `impair` block in
//! the node's block or the network's), so it stays through later changes
//! and shows in the exported testbed; each call is a job that plans and
//! applies the document like any other change, and a platform that
//! changes links in place (netns) updates the node rather than replacing
//! it. A `PUT` sets the block to exactly the keys given. Not here: the
//! values' parser (`platform::Impairment::set`, through
//! `model::parse_impairment`), how links are impaired (the platform).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Map, Value};

use super::auth::User;
use super::error::ApiResult;
use super::handlers::{no_node, resolve, AppState, Body, Params};
use super::model;
use super::run::change;
use super::wire::{ErrorBody, Impairment, JobAccepted, NodeParam, SessionParam};

/// Job `impair_node`: impair every link of a node (its `impair` block
/// becomes exactly these keys).
#[utoipa::path(put, path = "/v1/sessions/{s}/nodes/{n}/impair", tag = "nodes",
    params(SessionParam, NodeParam), request_body = Impairment,
    responses((status = 202, body = JobAccepted),
        (status = 400, description = "no key, an unknown key, or an invalid value (the message names the key and why)", body = ErrorBody),
        (status = 403, description = "another user's session", body = ErrorBody),
        (status = 404, description = "no such session or node", body = ErrorBody),
        (status = 409, description = "busy with a job; `changed`: another server changed the session meanwhile (retry); `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn impair_node(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
    body: Body<Map<String, Value>>,
) -> ApiResult<Response> {
    let Path((s, n)) = path?;
    let session = resolve(&user, &s)?;
    let Json(body) = body?;
    let imp = model::parse_impairment(&body)?;
    let sess = session.clone();
    change(&app, &user, &session, "impair_node", move |m| {
        set_node(m, &sess, &n, imp)?;
        Ok(json!({ "node": n, "impair": Impairment::from(&imp) }))
    })
    .await
}

/// Job `clear_node_impairment`: remove a node's own impairment (the
/// session's still applies to its link).
#[utoipa::path(delete, path = "/v1/sessions/{s}/nodes/{n}/impair", tag = "nodes",
    params(SessionParam, NodeParam),
    responses((status = 202, body = JobAccepted),
        (status = 400, description = "the session's impairment alone would not do for the link", body = ErrorBody),
        (status = 404, description = "no such session or node", body = ErrorBody),
        (status = 409, description = "busy with a job; `changed`: another server changed the session meanwhile (retry); `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn clear_node(
    State(app): AppState,
    user: User,
    path: Params<(String, String)>,
) -> ApiResult<Response> {
    let Path((s, n)) = path?;
    let session = resolve(&user, &s)?;
    let sess = session.clone();
    change(&app, &user, &session, "clear_node_impairment", move |m| {
        set_node(m, &sess, &n, Default::default())?;
        Ok(json!({ "node": n }))
    })
    .await
}

/// Job `impair_session`: impair every node's link to the session's
/// network (the network's `impair` block becomes exactly these keys; a
/// node's own impairment overrides it key by key).
#[utoipa::path(put, path = "/v1/sessions/{s}/impair", tag = "sessions",
    params(SessionParam), request_body = Impairment,
    responses((status = 202, body = JobAccepted),
        (status = 400, description = "no key, an unknown key, or an invalid value (the message names the key and why)", body = ErrorBody),
        (status = 403, description = "another user's session", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody),
        (status = 409, description = "busy with a job; `changed`: another server changed the session meanwhile (retry); `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn impair_session(
    State(app): AppState,
    user: User,
    path: Params<String>,
    body: Body<Map<String, Value>>,
) -> ApiResult<Response> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    let Json(body) = body?;
    let imp = model::parse_impairment(&body)?;
    change(&app, &user, &session, "impair_session", move |m| {
        m.impair = imp;
        m.check_links()?;
        Ok(json!({ "impair": Impairment::from(&imp) }))
    })
    .await
}

/// Job `clear_session_impairment`: remove the session network's
/// impairment (nodes' own stay).
#[utoipa::path(delete, path = "/v1/sessions/{s}/impair", tag = "sessions",
    params(SessionParam),
    responses((status = 202, body = JobAccepted),
        (status = 400, description = "a node's own impairment would not do alone", body = ErrorBody),
        (status = 404, description = "no such session", body = ErrorBody),
        (status = 409, description = "busy with a job; `changed`: another server changed the session meanwhile (retry); `elsewhere`: its nodes run on another server's host", body = ErrorBody)))]
pub(super) async fn clear_session(
    State(app): AppState,
    user: User,
    path: Params<String>,
) -> ApiResult<Response> {
    let Path(s) = path?;
    let session = resolve(&user, &s)?;
    change(
        &app,
        &user,
        &session,
        "clear_session_impairment",
        move |m| {
            m.impair = Default::default();
            m.check_links()?;
            Ok(json!({ "cleared": true }))
        },
    )
    .await
}

/// Node `n`'s own impairment becomes `imp`, if every link still makes sense.
fn set_node(
    m: &mut model::SessionModel,
    session: &crate::names::SessionName,
    n: &str,
    imp: crate::platform::impairment::Impairment,
) -> ApiResult<()> {
    m.nodes
        .get_mut(n)
        .ok_or_else(|| no_node(session, n))?
        .impair = imp;
    m.check_links()
}
