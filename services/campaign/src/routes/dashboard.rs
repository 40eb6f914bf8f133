//! `GET /`: the dashboard, one static page that reads the API, with its
//! script and styles as files of their own (`/dashboard/…`), so that its
//! Content-Security-Policy allows no inline script or style: a value that
//! reached the page unescaped could not run.

use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

/// What the dashboard may load and do: its own script, styles and API
/// (the live channel included), nothing inline, from nowhere else, and in
/// no frame.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard: campaigns, their live progress, the streams and their
/// dead letters.
#[utoipa::path(
    get,
    path = "/",
    tag = "campaigns",
    responses((status = 200, description = "The dashboard's page", body = String, content_type = "text/html"))
)]
pub(super) async fn dashboard() -> impl IntoResponse {
    (
        [(CONTENT_SECURITY_POLICY, POLICY)],
        Html(include_str!("../../static/index.html")),
    )
}

/// The dashboard's page and the files it loads.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let file = |content_type: &'static str, body: &'static str| {
        get(move || async move {
            (
                [(CONTENT_TYPE, content_type), (CONTENT_SECURITY_POLICY, POLICY)],
                body,
            )
        })
    };
    Router::new()
        .route("/", get(dashboard))
        .route(
            "/dashboard/dashboard.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/dashboard.js"),
            ),
        )
        .route(
            "/dashboard/dashboard.css",
            file(
                "text/css; charset=utf-8",
                include_str!("../../static/dashboard.css"),
            ),
        )
}
