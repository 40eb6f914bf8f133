//! The OpenAPI 3 documents of the services, generated from their code.
//!
//! Each service annotates its own handlers (`#[utoipa::path]`) and gathers
//! them in a `#[derive(OpenApi)]`; [`routes`] adds what every service shares
//! and serves the result:
//!
//! - `GET /api-docs/openapi.json`: the document;
//! - `GET /api-docs/`: a browsable reference of it (Scalar, pinned and
//!   served by the service itself: see [`ui`]).
//!
//! What is shared: `/health`, `/ready` and `/metrics`, the one error shape
//! ([`ErrorBody`]) and the API token's security scheme ([`API_TOKEN`]).
//! Every operation is documented with the errors any route may answer
//! ([`ApiError`](crate::http::ApiError): 500, and 503 past the request
//! limit), and with 405 for a method the route does not take; every
//! operation that names the token's scheme, with the 401 of
//! [`require_token`](crate::access::require_token); every operation that
//! takes a JSON body, with the 413, 415 and 422 that
//! [`ApiJson`](crate::http::extract::ApiJson) and the body limit answer
//! (an operation documents one of these itself where it says more).

use axum::response::Redirect;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::http::{ErrorBody, Health, Readiness, Status};

mod ui;

/// The name of the security scheme of the guarded endpoints
/// (`Authorization: Bearer <API_TOKEN>`, needed whenever a token is set);
/// an operation names it with `security((), ("api_token" = []))`, and
/// [`document`] adds its 401.
pub const API_TOKEN: &str = "api_token";

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api-docs/openapi.json";

/// Where its browsable reference is served.
pub const UI_PATH: &str = "/api-docs/";

/// What every service's document holds.
#[derive(OpenApi)]
#[openapi(
    paths(crate::http::health, crate::http::ready, crate::http::metrics_text),
    components(schemas(ErrorBody, Health, Readiness, Status)),
    modifiers(&TokenScheme),
    tags((name = "health", description = "Liveness, readiness and metrics, the same on every service"))
)]
struct Shared;

/// Adds the API token's bearer scheme.
struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <API_TOKEN>`: needed whenever the service has a \
                         token (always in prod); without one (dev's default) the endpoint is open",
                    ))
                    .build(),
            ),
        );
    }
}

/// `service`'s document (its title, version and description stay), with the
/// shared paths, schemas and security scheme, and the errors any route may
/// answer added to each operation that does not document them (the 401 to
/// each that names the token's scheme).
pub fn document(service: Document) -> Document {
    let mut document = service;
    document.merge(Shared::openapi());
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            add_common_errors(operation);
        }
    }
    document
}

fn add_common_errors(operation: &mut Operation) {
    let guarded = SecurityRequirement::new(API_TOKEN, Vec::<String>::new());
    if operation
        .security
        .iter()
        .flatten()
        .any(|requirement| *requirement == guarded)
    {
        // Said once here rather than on each guarded route: the answer of
        // `require_token`, the one middleware that guards them all.
        operation
            .responses
            .responses
            .entry("401".to_string())
            .or_insert_with(|| RefOr::T(error_response("A token is set and the request lacks it")));
    }
    let takes_json = operation
        .request_body
        .as_ref()
        .is_some_and(|body| body.content.contains_key("application/json"));
    let json_errors: &[(&str, &str)] = if takes_json { &JSON_BODY_ERRORS } else { &[] };
    for (status, description) in COMMON_ERRORS.iter().chain(json_errors) {
        operation
            .responses
            .responses
            .entry((*status).to_string())
            .or_insert_with(|| RefOr::T(error_response(description)));
    }
}

/// What any route may answer.
const COMMON_ERRORS: [(&str, &str); 3] = [
    ("405", "The route does not take this method"),
    ("500", "The service failed (the details are in its log)"),
    ("503", "The request took longer than the service's limit (30 s)"),
];

/// What any route that reads a JSON body may answer besides: the body
/// limit's 413 and the refusals of
/// [`ApiJson`](crate::http::extract::ApiJson).
const JSON_BODY_ERRORS: [(&str, &str); 3] = [
    ("413", "A body over 256 KiB"),
    ("415", "No JSON content type"),
    ("422", "JSON of the wrong shape (the field named)"),
];

/// A response documented with the one error shape, [`ErrorBody`].
pub fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// The routes of the documentation: [`DOCUMENT_PATH`] (the JSON document,
/// see [`document`]) and [`UI_PATH`] (Scalar's reference, with its
/// scripts; `/api-docs` redirects to it).
pub fn routes(service: Document) -> Router {
    let document = document(service);
    let json = serde_json::to_value(&document).expect("an OpenAPI document serializes");
    Router::new()
        .route(DOCUMENT_PATH, get(move || async move { Json(json) }))
        .route("/api-docs", get(|| async { Redirect::permanent(UI_PATH) }))
        .merge(ui::routes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(OpenApi)]
    #[openapi(info(title = "example"), paths(take_json, take_json_saying_more))]
    struct Example;

    #[utoipa::path(post, path = "/json", request_body = Health, responses((status = 204)))]
    #[allow(dead_code)]
    fn take_json() {}

    #[utoipa::path(
        post,
        path = "/json-saying-more",
        request_body = Health,
        responses((status = 422, description = "An unknown kind", body = ErrorBody))
    )]
    #[allow(dead_code)]
    fn take_json_saying_more() {}

    #[test]
    fn the_shared_parts_are_in_every_document() {
        let document = document(Example::openapi());
        assert_eq!(document.info.title, "example");
        for path in ["/health", "/ready", "/metrics"] {
            let item = &document.paths.paths[path];
            let responses = &item.get.as_ref().unwrap().responses.responses;
            for status in ["405", "500", "503"] {
                assert!(responses.contains_key(status), "{path} {status}");
            }
        }
        let responses = |path: &str| {
            let item = &document.paths.paths[path];
            let operation = item.post.as_ref().or(item.get.as_ref()).unwrap();
            operation.responses.responses.clone()
        };
        for status in ["413", "415", "422"] {
            assert!(responses("/json").contains_key(status), "{status}");
            assert!(!responses("/health").contains_key(status), "{status}");
        }
        let RefOr::T(said) = &responses("/json-saying-more")["422"] else {
            panic!("a response of its own");
        };
        assert_eq!(said.description, "An unknown kind");
        let components = document.components.unwrap();
        assert!(components.schemas.contains_key("ErrorBody"));
        assert!(components.security_schemes.contains_key(API_TOKEN));
    }
}
