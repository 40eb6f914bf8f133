//! Cross-site request forgery: a hostile page can make a browser send a
//! request to a service on this machine (a form's POST, a link to the
//! demo `GET /api/v1/campaign/create`), and in dev, without a token,
//! nothing else would refuse it. The browser says where the request comes
//! from, in `Origin` (on every cross-origin fetch and every POST) and in
//! `Sec-Fetch-Site`; a page cannot forge either.
//!
//! - Any request whose `Origin` is neither the service's own (the host and
//!   port it was reached at) nor an allowed one ([`Site`]) is refused.
//! - A write (any method but GET, HEAD and OPTIONS; and a GET that
//!   writes, behind [`writes_only_from_here`]) is refused when the browser
//!   says it comes from another site or another origin of this one
//!   (`Sec-Fetch-Site` other than `same-origin` or `none`, a URL typed
//!   in).
//!
//!   A route that takes writes from the allowed origins' pages
//!   ([`Site::writable_from_allowed_origins`]) takes them from those pages.
//!
//! Both answer 403 with a JSON error. A client that is not a browser
//! (curl, the tests, the health checks) sends neither header and goes on.
//! A route the service opened to every page ([`Site::open_to_every_page`])
//! is checked by neither.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::site::Site;
use super::ApiError;

/// Middleware of every route: 403 for a foreign `Origin`, and for a write
/// that another site or origin sent, but on a route open to every page.
/// It runs after routing (a layer of the router), so the request names
/// the pattern it matched.
pub(super) async fn check(State(site): State<Site>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|route| route.as_str().to_string())
        .unwrap_or_default();
    if site.is_open_to_every_page(&route) {
        return next.run(request).await;
    }
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = headers.get(header::HOST).and_then(|host| host.to_str().ok());
        if !site.allows_origin(origin, host) {
            return forbidden(format!(
                "requests from pages of `{}` are refused; add it to ALLOWED_ORIGINS if it is this service's",
                origin.escape_default()
            ));
        }
    }
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let trusted = headers
        .get(header::ORIGIN)
        .and_then(|origin| origin.to_str().ok())
        .is_some_and(|origin| site.takes_writes_from(origin, &route));
    if !safe && !trusted {
        if let Some(refused) = refused_write(headers) {
            return refused;
        }
    }
    next.run(request).await
}

/// Route middleware for a GET that writes (the demo endpoint): refused,
/// as any write, when the browser says another site or origin sent it; a
/// URL typed in, the service's own page and clients that are not browsers
/// go on.
pub async fn writes_only_from_here(request: Request, next: Next) -> Response {
    match refused_write(request.headers()) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// The 403 of a write the browser says another site or origin sent.
fn refused_write(headers: &HeaderMap) -> Option<Response> {
    let site = headers.get("sec-fetch-site")?.to_str().unwrap_or_default();
    (!matches!(site, "same-origin" | "none")).then(|| {
        forbidden(format!(
            "a write from another page (Sec-Fetch-Site: {}) is refused",
            site.escape_default()
        ))
    })
}

fn forbidden(message: String) -> Response {
    ApiError {
        status: StatusCode::FORBIDDEN,
        message,
    }
    .into_response()
}
