//! The HTTP side every service shares: `/health`, `/ready`, binding with a
//! clear error, serving until shutdown, the limits every route has (a
//! largest body, a longest answer, a JSON 404 for unknown routes), and the
//! checks of who is asking ([`Site`]: the `Host` every request names, the
//! page a browser sends it from).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use eventstore::Redis;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;

pub mod capacity;
mod connections;
mod error;
pub mod extract;
mod headers;
mod hosts;
mod origin;
mod page;
mod read_runtime;
mod site;

pub use error::{found, ApiError, ErrorBody};
pub use origin::writes_only_from_here;
pub use page::{fetch_page, next_after, page_limit};
pub use site::{origin_of, Site, SiteSettings};

/// What a service depends on to do its work; `/ready` checks each.
#[derive(Clone)]
pub struct Dependencies {
    /// The event store.
    pub redis: Redis,
    /// The service's own database.
    pub db: AnyPool,
}

/// `/health` (the process answers), `/ready` (its Redis and database
/// answer: 200, or 503 with the failing part named) and `/metrics`
/// (Prometheus's text format).
pub fn health_routes(deps: Dependencies) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/ready", get(ready))
        .with_state(Arc::new(deps))
}

/// The process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "The process answers", body = Health))
)]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: Status::Ok })
}

/// The service's figures, in Prometheus's text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((
        status = 200,
        description = "Counters, gauges and histograms (Prometheus's text format)",
        body = String,
        content_type = "text/plain"
    ))
)]
pub(crate) async fn metrics_text() -> Response {
    crate::metrics::render().into_response()
}

/// Whether the service can work: its Redis and its database answer.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    responses(
        (status = 200, description = "Redis and the database answer", body = Readiness),
        (status = 503, description = "Redis or the database does not answer (named)", body = Readiness)
    )
)]
pub(crate) async fn ready(State(deps): State<Arc<Dependencies>>) -> Response {
    let mut redis = deps.redis.clone();
    let redis_ok = redis::cmd("PING").query_async::<String>(&mut redis).await.is_ok();
    let db_ok = sqlx::query("SELECT 1").execute(&deps.db).await.is_ok();
    let part = |ok: bool| if ok { Status::Ok } else { Status::Unreachable };
    let body = Json(Readiness {
        redis: part(redis_ok),
        database: part(db_ok),
    });
    let status = if redis_ok && db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

/// The state of a process or of one thing it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It answers.
    Ok,
    /// It does not answer.
    Unreachable,
}

/// The body of `/health`: `{"status": "ok"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answered.
    pub status: Status,
}

/// The body of `/ready`: `{"redis": "ok", "database": "unreachable"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// The event store.
    pub redis: Status,
    /// The service's own database.
    pub database: Status,
}

/// Binds `port` on `host`; a port in use is reported in one line naming the
/// variable that moves it.
pub async fn bind(host: &str, port: u16, port_variable: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|error| anyhow::anyhow!("invalid listen address {host}:{port}: {error}"))?;
    TcpListener::bind(addr).await.map_err(|error| {
        if error.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("port {port} is already in use; set {port_variable} to another port")
        } else {
            anyhow::anyhow!("cannot listen on {addr}: {error}")
        }
    })
}

/// What any one request may cost a service.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body read (a campaign's templates are the
    /// largest legitimate one); a larger one is refused with 413.
    pub body_bytes: usize,
    /// How long a request may take; past it, the caller gets a 503 and the
    /// work stops, so that a stuck database cannot pile up requests.
    pub timeout: Duration,
    /// How long a client may take to send a request's headers; past it the
    /// connection is closed, so that half-sent requests cannot hold
    /// connections open.
    pub header_read: Duration,
    /// Route patterns exempt from `timeout`: they read a body of any size
    /// for as long as it comes (an import of users), and bound how long
    /// they wait for each part of it themselves.
    pub untimed_routes: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 256 * 1024,
            timeout: Duration::from_secs(30),
            header_read: Duration::from_secs(10),
            untimed_routes: Vec::new(),
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, within `limits`, to the
/// callers `site` accepts, letting requests in progress finish.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    limits: Limits,
    site: Site,
) {
    let timeout = limits.timeout;
    let untimed: Arc<[String]> = limits.untimed_routes.into();
    let app = app
        .route_layer(middleware::from_fn(record_latency))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "this route does not take this method".into(),
            }
        })
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let untimed = request
                .extensions()
                .get::<MatchedPath>()
                .is_some_and(|route| untimed.iter().any(|open| open == route.as_str()));
            async move {
                if untimed {
                    next.run(request).await
                } else {
                    within(timeout, request, next).await
                }
            }
        }))
        .layer(site.cors())
        .layer(middleware::from_fn_with_state(site.clone(), origin::check))
        .layer(middleware::from_fn_with_state(site, hosts::check));
    let app = headers::add(app).layer(TraceLayer::new_for_http());
    connections::serve(listener, app, shutdown, limits.header_read).await;
}

/// Records how long each request to a route took, by method, route
/// pattern (not the path: ids would make one series per campaign) and
/// status.
async fn record_latency(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |path| path.as_str().to_string());
    let response = next.run(request).await;
    metrics::histogram!(
        "comms_http_request_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// Runs `request` for at most `timeout`; past it, answers 503 (the
/// handler's future is dropped, which cancels its work). The limit bounds
/// the time to the response's head, whatever the request's headers say:
/// an event stream answers at once and then streams its body for as long
/// as the client stays (bounded by the client and the service's
/// shutdown), while a handler that has not answered within the limit is
/// cut, even for a client that asked for an event stream.
async fn within(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the request took longer than {} ms", timeout.as_millis()),
        }
        .into_response(),
    }
}
