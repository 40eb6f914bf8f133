//! The headers every answer carries, so that what a service sends is only
//! ever what it says it is: no content sniffing (a JSON error holding
//! `<script>` is not a page), no referrer leaking a URL to elsewhere, and,
//! unless a page sets its own policy (the dashboard, the API reference),
//! a Content-Security-Policy that lets an answer load nothing, run
//! nothing and sit in no frame.

use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::HeaderValue;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy of an answer that sets none: a JSON body, an error.
const NOTHING: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `app` with the headers above on every answer.
pub(super) fn add(app: Router) -> Router {
    app.layer(SetResponseHeaderLayer::if_not_present(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(NOTHING),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ))
}
