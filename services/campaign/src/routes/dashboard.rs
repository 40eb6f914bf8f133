//! `GET /`: the dashboard, one static page that reads the API.

use axum::response::Html;

/// The dashboard: campaigns, their live progress, the streams and their
/// dead letters.
#[utoipa::path(
    get,
    path = "/",
    tag = "campaigns",
    responses((status = 200, description = "The dashboard's page", body = String, content_type = "text/html"))
)]
pub(super) async fn dashboard() -> Html<&'static str> {
    Html(include_str!("../../static/index.html"))
}
