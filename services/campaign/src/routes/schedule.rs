//! A scheduled campaign, while it waits for its `send_at`, moved to another
//! time ([`crate::store::CampaignStore::reschedule`]): a 409 once the
//! campaign has started (or was cancelled), changing nothing. Cancelling
//! it is [`super::control`]'s.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use servicekit::http::extract::{ApiJson, ApiPath};
use servicekit::http::{ApiError, ErrorBody};
use utoipa::ToSchema;

use crate::domain::parse_send_at;
use crate::state::AppState;
use crate::store::{Campaign, Change};

/// The body of a reschedule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Reschedule {
    /// When to start sending instead (RFC 3339, with its offset, in the
    /// future).
    #[schema(format = DateTime, example = "2026-12-24T09:00:00+01:00")]
    send_at: String,
}

/// Moves a scheduled campaign's `send_at`.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/schedule",
    tag = "campaigns",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    request_body = Reschedule,
    responses(
        (status = 200, description = "The campaign, with its new `send_at`", body = Campaign),
        (status = 400, description = "A `send_at` that does not parse, or has passed (named)", body = ErrorBody),
        (status = 404, description = "No campaign with this id", body = ErrorBody),
        (status = 409, description = "The campaign is not scheduled (it started, or was cancelled): nothing changed", body = ErrorBody)
    )
)]
pub(super) async fn reschedule(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<Reschedule>,
) -> Result<Json<Campaign>, ApiError> {
    let send_at = parse_send_at(&request.send_at).map_err(ApiError::bad_request)?;
    let change = state.tracker.store().reschedule(&id, send_at).await?;
    answer(change, &id, "rescheduled")
}

/// The answer to a change (`done`: what it did, for the log and the
/// refusal).
fn answer(change: Change, id: &str, done: &str) -> Result<Json<Campaign>, ApiError> {
    match change {
        Change::Done(campaign) => {
            tracing::info!(campaign = %campaign.id, send_at = campaign.send_at, "campaign {done}");
            Ok(Json(campaign))
        }
        Change::Refused(campaign) => Err(super::control::refused(id, &campaign, done)),
        Change::NotFound => Err(ApiError::not_found(format!("no campaign with id {id}"))),
    }
}
