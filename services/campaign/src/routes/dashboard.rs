//! `GET /`: the dashboard, one static page that reads the API, with its
//! scripts and styles as files of their own (`/dashboard/…`), so that its
//! Content-Security-Policy allows no inline script or style: a value that
//! reached the page unescaped could not run.
//!
//! The suppression list is user-service's: the page names where it is
//! (`<meta name="user-service">`, from `USER_SERVICE_URL`) and its policy
//! lets it read that origin, which lets the dashboard's pages read it.

use std::sync::Arc;

use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Extension, Router};
use servicekit::http::origin_of;

/// The page and its policy, made once from the settings.
#[derive(Clone)]
pub(super) struct Page {
    html: Arc<str>,
    policy: Arc<str>,
}

impl Page {
    /// The page naming `user_service_url`, and a policy that allows its
    /// own script, styles and API (the live channel included) and reads
    /// from user-service, nothing inline, from nowhere else, in no frame.
    fn new(user_service_url: &str) -> Self {
        let user_service = origin_of(user_service_url).unwrap_or_default();
        let html = include_str!("../../static/index.html").replace(
            r#"<meta name="user-service" content="">"#,
            &format!(
                r#"<meta name="user-service" content="{}">"#,
                escape_attribute(user_service_url.trim_end_matches('/'))
            ),
        );
        let policy = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; \
             connect-src 'self' {user_service}; img-src 'self'; form-action 'none'; base-uri 'none'; \
             frame-ancestors 'none'"
        );
        Self {
            html: html.into(),
            policy: policy.into(),
        }
    }
}

/// `text` safe inside a double-quoted attribute.
fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The dashboard: campaigns, their live progress, the streams and their
/// dead letters, and the suppression list.
#[utoipa::path(
    get,
    path = "/",
    tag = "campaigns",
    responses((status = 200, description = "The dashboard's page", body = String, content_type = "text/html"))
)]
pub(super) async fn dashboard(Extension(page): Extension<Page>) -> impl IntoResponse {
    (
        [(CONTENT_SECURITY_POLICY, page.policy.to_string())],
        Html(page.html.to_string()),
    )
}

/// The dashboard's page and the files it loads; the page reads the
/// suppression list at `user_service_url`.
pub(super) fn routes<S: Clone + Send + Sync + 'static>(user_service_url: &str) -> Router<S> {
    let page = Page::new(user_service_url);
    let file = |content_type: &'static str, body: &'static str| {
        let policy = page.policy.clone();
        get(move || async move {
            (
                [
                    (CONTENT_TYPE, content_type.to_string()),
                    (CONTENT_SECURITY_POLICY, policy.to_string()),
                ],
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
            "/dashboard/suppressions.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/suppressions.js"),
            ),
        )
        .route(
            "/dashboard/chart.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/chart.js"),
            ),
        )
        .route(
            "/dashboard/vendor/uPlot.iife.min.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/vendor/uPlot.iife.min.js"),
            ),
        )
        .route(
            "/dashboard/vendor/uPlot.min.css",
            file(
                "text/css; charset=utf-8",
                include_str!("../../static/vendor/uPlot.min.css"),
            ),
        )
        .route(
            "/dashboard/audience.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/audience.js"),
            ),
        )
        .route(
            "/dashboard/test_send.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/test_send.js"),
            ),
        )
        .route(
            "/dashboard/dashboard.css",
            file(
                "text/css; charset=utf-8",
                include_str!("../../static/dashboard.css"),
            ),
        )
        .layer(Extension(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_user_service_and_its_policy_lets_it_read_there_only() {
        let page = Page::new("http://localhost:9182/");
        assert!(
            page.html
                .contains(r#"<meta name="user-service" content="http://localhost:9182">"#),
            "{}",
            page.html
        );
        assert!(page.policy.contains("connect-src 'self' http://localhost:9182;"));
        let hostile = Page::new(r#"http://x"><script>alert(1)</script>"#);
        assert!(!hostile.html.contains("<script>alert"), "{}", hostile.html);
    }
}
