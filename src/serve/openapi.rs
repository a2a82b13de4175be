//! `GET /openapi.json`: the API's OpenAPI 3.1 document, generated from the
//! handlers' `#[utoipa::path]` attributes and the `wire` shapes, and kept
//! in `schemas/openapi.json` (a test checks the two are the same bytes:
//! `UPDATE_SCHEMAS=1 cargo test --test it serve_openapi` rewrites the file).
//!
//! Every route but `/healthz` and `/openapi.json` takes a bearer token
//! (scheme `bearer`), and every operation may answer an error document.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{RefOr, ResponseBuilder};
use utoipa::OpenApi;

use super::{admin, events, files, handlers, impair, jobs, model, wire};

/// Routes that need no token.
const OPEN: &[&str] = &["/healthz", "/openapi.json"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tg serve",
        description = "The REST API of `tg serve`: sessions, nodes, packages and jobs of tg test environments (see docs/serve.md)."
    ),
    paths(
        handlers::healthz,
        serve_document,
        handlers::open_session,
        handlers::list_sessions,
        handlers::show_session,
        handlers::close_session,
        handlers::export_testbed,
        files::upload,
        files::list,
        files::delete,
        handlers::allocate_node,
        handlers::list_nodes,
        handlers::show_node,
        handlers::release_node,
        handlers::exec,
        impair::impair_node,
        impair::clear_node,
        impair::impair_session,
        impair::clear_session,
        handlers::check_package,
        handlers::deploy,
        handlers::undeploy,
        handlers::show_job,
        events::job_events,
        admin::inventory,
        admin::pool_list,
        admin::pool_quarantine,
        admin::pool_release,
    ),
    components(schemas(wire::ErrorBody, jobs::JobEvent, model::PackageModel)),
    modifiers(&Security),
    tags(
        (name = "server"),
        (name = "sessions"),
        (name = "nodes"),
        (name = "packages"),
        (name = "files", description = "files uploaded to a session: `.deb` packages and files its testbed reads"),
        (name = "jobs"),
        (name = "pool", description = "admin only"),
    )
)]
struct ApiDoc;

/// Adds the bearer scheme, requires it on every route but [`OPEN`], and
/// gives every operation the error document as its `default` response.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "a token of the server's token file (`TOKEN USER [admin]`)",
                        ))
                        .build(),
                ),
            );
        let error = ResponseBuilder::new()
            .description(
                "an error: `{\"error\": {\"code\", \"message\"}}` (401 `unauthorized` without a valid token)",
            )
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build();
        for (path, item) in doc.paths.paths.iter_mut() {
            let open = OPEN.contains(&path.as_str());
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.put,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if !open {
                    op.security = Some(vec![SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                }
                op.responses
                    .responses
                    .insert("default".into(), RefOr::T(error.clone()));
            }
        }
    }
}

/// The document as served and as kept in `schemas/openapi.json`: pretty
/// JSON and a newline.
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// This document (no token needed).
#[utoipa::path(get, path = "/openapi.json", tag = "server",
    responses((status = 200, description = "this OpenAPI 3.1 document", content_type = "application/json")))]
pub(super) async fn serve_document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_and_secured() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/v1/sessions/{s}/nodes/{n}/exec",
            "/v1/jobs/{id}/events",
            "/v1/pool/{host}/quarantine",
        ] {
            assert!(paths.contains_key(p), "{p} missing");
        }
        assert!(paths["/healthz"]["get"].get("security").is_none());
        assert_eq!(
            paths["/v1/sessions"]["get"]["security"][0]["bearer"],
            serde_json::json!([])
        );
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    }
}
