//! `GET /api/v1/notifications/{id}` and
//! `GET /api/v1/campaigns/{id}/notifications` (counts per status).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use servicekit::http::ApiError;

use crate::store::{Notification, NotificationStore};

/// The routes, on `store`.
pub fn router(store: NotificationStore) -> Router {
    Router::new()
        .route("/api/v1/notifications/{id}", get(one))
        .route("/api/v1/campaigns/{id}/notifications", get(counts))
        .with_state(store)
}

async fn one(
    State(store): State<NotificationStore>,
    Path(id): Path<String>,
) -> Result<Json<Notification>, ApiError> {
    store
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no notification with id {id}")))
}

async fn counts(
    State(store): State<NotificationStore>,
    Path(campaign_id): Path<String>,
) -> Result<Json<BTreeMap<String, i64>>, ApiError> {
    Ok(Json(store.counts(&campaign_id).await?.into_iter().collect()))
}
