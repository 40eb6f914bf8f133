//! `GET /api/v1/notifications/{id}`, `GET /api/v1/campaigns/{id}/notifications`
//! (counts per status) and `GET /api/v1/campaigns/{id}/export` (every
//! recipient, as CSV: [`crate::export`]), described in [`ApiDoc`], the
//! OpenAPI document served at `/api-docs/openapi.json`. A notification
//! holds its recipient's address, so reading one, or the export, needs the
//! API token whenever one is set (always in `prod`); the counts hold no
//! personal data and stay open.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{middleware, Json, Router};
use servicekit::access::{require_token, Access};
use servicekit::http::extract::ApiPath;
use servicekit::http::{found, ApiError, ErrorBody};
use utoipa::OpenApi;

use crate::store::{Notification, NotificationStore};

/// The OpenAPI document of notification-service's own routes (the shared
/// ones are added by [`servicekit::openapi::document`]).
#[derive(OpenApi)]
#[openapi(
    paths(one, counts, crate::export::export),
    components(schemas(Notification)),
    tags((name = "notifications", description = "One notification per campaign and user, and its status"))
)]
pub struct ApiDoc;

/// The reads run at the idle priority
/// ([`servicekit::service::Service::read_at_idle_priority`]): their
/// handlers read only the store, on the service's read connections. The
/// export streams its body from the service's own runtime.
pub const READ_AT_IDLE_PRIORITY: &[&str] = &[
    "/api/v1/notifications/{id}",
    "/api/v1/campaigns/{id}/notifications",
];

/// The routes, on `store`; the one returning personal data behind
/// `access`.
pub fn router(store: NotificationStore, access: Access) -> Router {
    let personal = Router::new()
        .route("/api/v1/notifications/{id}", get(one))
        .route("/api/v1/campaigns/{id}/export", get(crate::export::export))
        .route_layer(middleware::from_fn_with_state(access, require_token));
    Router::new()
        .merge(personal)
        .route("/api/v1/campaigns/{id}/notifications", get(counts))
        .with_state(store)
}

/// One notification and its status.
#[utoipa::path(
    get,
    path = "/api/v1/notifications/{id}",
    tag = "notifications",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The notification's id (a UUID v5 of campaign and user)")),
    responses(
        (status = 200, description = "The notification", body = Notification),
        (status = 404, description = "No notification with this id", body = ErrorBody)
    )
)]
async fn one(
    State(store): State<NotificationStore>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Notification>, ApiError> {
    found(store.get(&id).await?, "notification", &id)
}

/// How many of a campaign's notifications are in each status (`pending`,
/// `sent`, `failed`, `dead_lettered`); a status no notification is in is
/// absent, and an unknown campaign has none.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/notifications",
    tag = "notifications",
    params(("id" = String, Path, description = "The campaign's id")),
    responses(
        (status = 200, description = "Counts per status", body = BTreeMap<String, i64>,
         example = json!({"sent": 2990, "failed": 10}))
    )
)]
async fn counts(
    State(store): State<NotificationStore>,
    ApiPath(campaign_id): ApiPath<String>,
) -> Result<Json<BTreeMap<String, i64>>, ApiError> {
    Ok(Json(store.counts(&campaign_id).await?.into_iter().collect()))
}
