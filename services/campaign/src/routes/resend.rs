//! `POST /api/v1/campaigns/{id}/resend`: a new campaign, with the same
//! templates, to exactly the recipients of a finished campaign that were
//! not reached (`failed` or `dead_lettered`), derived from their outcomes
//! by notification-service, which owns them: no one already sent is
//! emailed again. Created like any campaign (the quota, an
//! `Idempotency-Key`), and paused, resumed or cancelled like one.

use axum::extract::State;
use axum::http::HeaderMap;
use servicekit::http::extract::ApiPath;
use servicekit::http::{ApiError, ErrorBody};

use super::campaigns::{create_campaign, idempotency_key, Answered};
use crate::domain::NewCampaign;
use crate::state::AppState;
use crate::store::Campaign;

/// Resends a finished campaign to its recipients not reached.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/resend",
    tag = "campaigns",
    security((), ("api_token" = [])),
    params(
        ("id" = String, Path, description = "The finished campaign's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key gives back the same resend (200)")
    ),
    responses(
        (status = 201, description = "The resend, a new campaign (`resend_of`: this one) to the recipients that `failed` or were `dead_lettered`", body = Campaign),
        (status = 200, description = "The resend this Idempotency-Key created before", body = Campaign),
        (status = 400, description = "A malformed Idempotency-Key", body = ErrorBody),
        (status = 404, description = "No campaign with this id", body = ErrorBody),
        (status = 409, description = "The campaign has not ended, or reached every recipient it could: nothing to resend; or the key was used for another request", body = ErrorBody),
        (status = 429, description = "As many campaigns are in progress as the quota allows", body = ErrorBody)
    )
)]
pub(super) async fn resend(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Answered, ApiError> {
    let key = idempotency_key(&headers)?;
    let Some(of) = state.tracker.store().get(&id).await? else {
        return Err(ApiError::not_found(format!("no campaign with id {id}")));
    };
    if of.completed_at.is_none() {
        return Err(ApiError::conflict(format!(
            "campaign {id} is {} and has not ended: it can be resent once every recipient has an outcome",
            of.status.as_str()
        )));
    }
    let not_reached = of.progress.failed + of.progress.dead_lettered;
    if not_reached == 0 {
        return Err(ApiError::conflict(format!(
            "campaign {id} has no recipient that failed or was dead-lettered: nothing to resend"
        )));
    }
    create_campaign(&state, NewCampaign::resend(&of), &headers, key.as_deref()).await
}
