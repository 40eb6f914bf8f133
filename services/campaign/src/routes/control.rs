//! Changing a campaign's course: pause, resume, cancel. Each changes the
//! database (guarded by the campaign's status: a 409 naming the status
//! when it does not allow the change, nothing changed), then the control
//! board the other services read ([`crate::control`]).

use axum::extract::State;
use axum::Json;
use servicekit::http::extract::ApiPath;
use servicekit::http::{ApiError, ErrorBody};

use crate::control::follow;
use crate::state::AppState;
use crate::store::{Campaign, Change};

/// Pauses a campaign being expanded or sent.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/pause",
    tag = "campaigns",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    responses(
        (status = 200, description = "The campaign, `paused`: no new email of it is sent (those already handed to the mail server finish) until it is resumed", body = Campaign),
        (status = 404, description = "No campaign with this id", body = ErrorBody),
        (status = 409, description = "The campaign is not expanding or sending (scheduled, paused, completed or cancelled): nothing changed", body = ErrorBody)
    )
)]
pub(super) async fn pause(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Campaign>, ApiError> {
    let change = state.tracker.store().pause(&id).await?;
    answer(&state, change, &id, "paused").await
}

/// Resumes a paused campaign.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/resume",
    tag = "campaigns",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    responses(
        (status = 200, description = "The campaign, `sending` again (`expanding` while its audience is not known yet): each recipient not yet sent is sent once", body = Campaign),
        (status = 404, description = "No campaign with this id", body = ErrorBody),
        (status = 409, description = "The campaign is not paused: nothing changed", body = ErrorBody)
    )
)]
pub(super) async fn resume(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Campaign>, ApiError> {
    let change = state.tracker.store().resume(&id).await?;
    answer(&state, change, &id, "resumed").await
}

/// Cancels a campaign that has not ended.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/cancel",
    tag = "campaigns",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    responses(
        (status = 200, description = "The campaign, `cancelled`: nothing more of it is sent, and every recipient not sent ends `cancelled` (`completed_at` is set once all have; at once for a scheduled campaign)", body = Campaign),
        (status = 404, description = "No campaign with this id", body = ErrorBody),
        (status = 409, description = "The campaign has ended (completed or cancelled): nothing changed", body = ErrorBody)
    )
)]
pub(super) async fn cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Campaign>, ApiError> {
    let change = state.tracker.store().cancel(&id).await?;
    answer(&state, change, &id, "cancelled").await
}

/// The answer to a change (`done`: what it did, for the log and the
/// refusal); a change made is put on the control board.
async fn answer(state: &AppState, change: Change, id: &str, done: &str) -> Result<Json<Campaign>, ApiError> {
    match change {
        Change::Done(campaign) => {
            tracing::info!(campaign = %campaign.id, "campaign {done}");
            if let Err(error) = follow(&state.board, &campaign).await {
                // The change stands; the board is mended within a round.
                tracing::warn!(campaign = %campaign.id, error = format!("{error:#}"), "the control board could not be updated; it is mended within seconds");
            }
            Ok(Json(campaign))
        }
        Change::Refused(campaign) => Err(refused(id, &campaign, done)),
        Change::NotFound => Err(ApiError::not_found(format!("no campaign with id {id}"))),
    }
}

/// The 409 of a change to `campaign` that its status does not allow.
pub(super) fn refused(id: &str, campaign: &Campaign, done: &str) -> ApiError {
    ApiError::conflict(format!(
        "campaign {id} is {}: it cannot be {done}",
        campaign.status.as_str()
    ))
}
