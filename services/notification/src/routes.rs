//! `GET /api/v1/notifications/{id}` and
//! `GET /api/v1/campaigns/{id}/notifications` (counts per status), both
//! described in [`ApiDoc`], the OpenAPI document served at
//! `/api-docs/openapi.json`.

use std::collections::BTreeMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use servicekit::http::{ApiError, ErrorBody};
use utoipa::OpenApi;

use crate::store::{Notification, NotificationStore};

/// The OpenAPI document of notification-service's own routes (the shared
/// ones are added by [`servicekit::openapi::document`]).
#[derive(OpenApi)]
#[openapi(
    paths(one, counts),
    components(schemas(Notification)),
    tags((name = "notifications", description = "One notification per campaign and user, and its status"))
)]
pub struct ApiDoc;

/// The routes, on `store`.
pub fn router(store: NotificationStore) -> Router {
    Router::new()
        .route("/api/v1/notifications/{id}", get(one))
        .route("/api/v1/campaigns/{id}/notifications", get(counts))
        .with_state(store)
}

/// One notification and its status.
#[utoipa::path(
    get,
    path = "/api/v1/notifications/{id}",
    tag = "notifications",
    params(("id" = String, Path, description = "The notification's id (a UUID v5 of campaign and user)")),
    responses(
        (status = 200, description = "The notification", body = Notification),
        (status = 404, description = "No notification with this id", body = ErrorBody)
    )
)]
async fn one(
    State(store): State<NotificationStore>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Notification>, ApiError> {
    let Path(id) = id?;
    store
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no notification with id {id}")))
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
    campaign_id: Result<Path<String>, PathRejection>,
) -> Result<Json<BTreeMap<String, i64>>, ApiError> {
    let Path(campaign_id) = campaign_id?;
    Ok(Json(store.counts(&campaign_id).await?.into_iter().collect()))
}
