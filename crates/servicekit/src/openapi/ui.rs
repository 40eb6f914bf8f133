//! The browsable reference of a service's OpenAPI document, at
//! [`UI_PATH`](super::UI_PATH): Scalar's standalone bundle
//! (`@scalar/api-reference`), pinned and served by the service itself
//! from the binary. Loading it from a CDN instead would run a script of
//! whatever version the CDN holds that day on the origin that holds the
//! API token, and would leave the page blank on a machine without
//! internet. `crates/servicekit/assets/scalar/` holds the bundle, its
//! VERSION and its SHA256SUMS; `scripts/refresh-scalar.sh VERSION`
//! replaces them.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::Html;
use axum::routing::{get, MethodRouter};
use axum::Router;

/// The page, its script, and Scalar's bundle.
const PAGE: &str = include_str!("../../assets/openapi/index.html");
const REFERENCE: &str = include_str!("../../assets/openapi/reference.js");
const SCALAR: &str = include_str!("../../assets/scalar/standalone.js");

/// What the reference may load: its own scripts and document, the styles
/// Scalar writes into the page (inline: it builds them at run time), and
/// images and fonts of its own or inlined; nothing from elsewhere, and in
/// no frame.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     connect-src 'self'; img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; \
     form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /api-docs/` (the page), `/api-docs/reference.js` (which starts
/// Scalar on the service's document) and `/api-docs/scalar.js` (the
/// bundle), each under [`POLICY`].
pub(super) fn routes() -> Router {
    Router::new()
        .route(
            super::UI_PATH,
            get(|| async { ([(CONTENT_SECURITY_POLICY, POLICY)], Html(PAGE)) }),
        )
        .route("/api-docs/reference.js", script(REFERENCE))
        .route("/api-docs/scalar.js", script(SCALAR))
}

/// A GET answering `body` as JavaScript.
fn script(body: &'static str) -> MethodRouter {
    get(move || async move {
        (
            [
                (CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (CONTENT_SECURITY_POLICY, POLICY),
                (CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
    })
}
