//! The `Host` check of every request. Through DNS rebinding a hostile
//! page gets its own name to resolve to 127.0.0.1, and its scripts then
//! read the service as a same-origin page would (the users list, say);
//! the one thing it cannot change is the name the browser puts in `Host`.
//! A request naming a host that is not the service's ([`Site`]) is
//! answered 421 Misdirected Request, with a JSON error naming the host.
//! A request without `Host` (HTTP/1.0, no browser sends one) goes on.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::site::Site;
use super::ApiError;

/// Middleware: 421 for a `Host` the service does not answer to.
pub(super) async fn check(State(site): State<Site>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|host| host.to_str().unwrap_or_default());
    match host {
        Some(host) if !site.allows_host(host) => ApiError {
            status: StatusCode::MISDIRECTED_REQUEST,
            message: format!(
                "this service does not answer to the host `{}`; add it to ALLOWED_HOSTS if it is this service's name",
                host.escape_default()
            ),
        }
        .into_response(),
        _ => next.run(request).await,
    }
}
