//! `GET /api/v1/streams`: the figures of every stream.

use axum::extract::State;
use axum::Json;
use eventstore::StreamStats;
use servicekit::http::ApiError;

use crate::state::AppState;

/// Every stream of comms: its length, dead letters, and per consumer group
/// pending, lag, handled, retried and dead-lettered entries; a stream split
/// into partitions has them added up, and each partition's beside them.
#[utoipa::path(
    get,
    path = "/api/v1/streams",
    tag = "streams",
    responses((status = 200, description = "Every stream's figures", body = Vec<eventstore::StreamStats>))
)]
pub(super) async fn streams(State(state): State<AppState>) -> Result<Json<Vec<StreamStats>>, ApiError> {
    Ok(Json(state.stream_stats().await?))
}
