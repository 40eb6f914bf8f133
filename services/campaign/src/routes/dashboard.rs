//! `GET /`: the dashboard, one static page that reads the API, with its
//! scripts and styles as files of their own (`/dashboard/…`), so that its
//! Content-Security-Policy allows no inline script or style: a value that
//! reached the page unescaped could not run.
//!
//! Two of the page's parts read other services: the suppression list and
//! the audience's count (user-service), and a campaign's export
//! (notification-service). The page names where they are ([`Peers`], as
//! `<meta>` elements) and its policy lets it connect there; each of them
//! lets the dashboard's origin read it (and user-service lets it import).

use std::sync::Arc;

use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Extension, Router};
use servicekit::http::origin_of;

/// Where browsers reach the services the dashboard's page reads besides
/// campaign-service (`USER_SERVICE_URL`, `NOTIFICATION_SERVICE_URL`).
#[derive(Debug, Clone)]
pub struct Peers {
    /// user-service: the suppression list, the audience's count, the import.
    pub user_service: String,
    /// notification-service: a campaign's export.
    pub notification_service: String,
}

/// The page and its policy, made once from the settings.
#[derive(Clone)]
pub(super) struct Page {
    html: Arc<str>,
    policy: Arc<str>,
}

impl Page {
    /// The page naming `peers`, and a policy that allows its own script,
    /// styles and API (the live channel included) and reads from the
    /// peers, nothing inline, from nowhere else, in no frame.
    fn new(peers: &Peers) -> Self {
        let mut html = include_str!("../../static/index.html").to_string();
        let mut sources = Vec::new();
        for (name, url) in [
            ("user-service", &peers.user_service),
            ("notification-service", &peers.notification_service),
        ] {
            html = html.replace(
                &format!(r#"<meta name="{name}" content="">"#),
                &format!(
                    r#"<meta name="{name}" content="{}">"#,
                    escape_attribute(url.trim_end_matches('/'))
                ),
            );
            sources.extend(origin_of(url));
        }
        let sources = sources.join(" ");
        let policy = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; \
             connect-src 'self' {sources}; img-src 'self'; form-action 'none'; base-uri 'none'; \
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

/// The dashboard's page and the files it loads; the page reads `peers`.
pub(super) fn routes<S: Clone + Send + Sync + 'static>(peers: &Peers) -> Router<S> {
    let page = Page::new(peers);
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
            "/dashboard/limits.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/limits.js"),
            ),
        )
        .route(
            "/dashboard/relays.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/relays.js"),
            ),
        )
        .route(
            "/dashboard/users.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/users.js"),
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
            "/dashboard/webhooks.js",
            file(
                "text/javascript; charset=utf-8",
                include_str!("../../static/webhooks.js"),
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
    fn the_page_names_its_peers_and_its_policy_lets_it_read_there_only() {
        let page = Page::new(&Peers {
            user_service: "http://localhost:9182/".into(),
            notification_service: "http://localhost:9183".into(),
        });
        for meta in [
            r#"<meta name="user-service" content="http://localhost:9182">"#,
            r#"<meta name="notification-service" content="http://localhost:9183">"#,
        ] {
            assert!(page.html.contains(meta), "{meta}: {}", page.html);
        }
        assert!(page
            .policy
            .contains("connect-src 'self' http://localhost:9182 http://localhost:9183;"));
        let hostile = Page::new(&Peers {
            user_service: r#"http://x"><script>alert(1)</script>"#.into(),
            notification_service: String::new(),
        });
        assert!(!hostile.html.contains("<script>alert"), "{}", hostile.html);
    }
}
