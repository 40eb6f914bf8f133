//! The campaigns: creation (from JSON, or the demo behind a GET), the list
//! and one campaign with status and exact progress, and a campaign's
//! recipients not sent.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use servicekit::http::extract::{ApiJson, ApiPath, ApiQuery};
use servicekit::http::{fetch_page, found, ApiError, ErrorBody};
use utoipa::{IntoParams, ToSchema};

use super::MAX_LIMIT;
use crate::domain::{NewCampaign, NewCampaignRequest};
use crate::quota;
use crate::state::AppState;
use crate::store::{Campaign, Creation, Failure};

/// Creates the demo campaign (a write behind a GET, handy from a browser).
#[utoipa::path(
    get,
    path = "/api/v1/campaign/create",
    tag = "campaigns",
    security((), ("api_token" = [])),
    params(("traceparent" = Option<String>, Header, description = "A W3C traceparent (`00-<32 hex>-<16 hex>-<2 hex>`): everything the campaign causes carries its trace id, in every service's logs. Without it, or when it is not valid, the trace id is the campaign's id without dashes.")),
    responses(
        (status = 201, description = "The campaign created", body = Campaign, headers(("traceparent" = String, description = "The W3C traceparent the campaign's events carry: grep its trace id in the logs"))),
        (status = 429, description = "As many campaigns in progress as the quota allows (`CAMPAIGN_MAX_IN_PROGRESS`)", body = ErrorBody),
        (status = 503, description = "Redis is at its memory ceiling (`maxmemory`); nothing was created", body = ErrorBody)
    )
)]
pub(super) async fn create_demo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Answered, ApiError> {
    create_campaign(&state, NewCampaign::demo(), &headers, None).await
}

/// Creates a campaign to every user. Its templates are rendered once for a
/// sample recipient first: an undefined variable, a render over its budget
/// or an output over its size is refused with a 400. With an
/// `Idempotency-Key`, a retry of the same request gets the same campaign
/// back (200), never a second one.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns",
    tag = "campaigns",
    security((), ("api_token" = [])),
    request_body = NewCampaignRequest,
    params(
        ("traceparent" = Option<String>, Header, description = "A W3C traceparent (`00-<32 hex>-<16 hex>-<2 hex>`): everything the campaign causes carries its trace id, in every service's logs. Without it, or when it is not valid, the trace id is the campaign's id without dashes."),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters, new for each campaign: a creation retried with the same key and body (a client's timeout, a proxy's retry) gets the campaign the first one created (200), never a second; the same key with another body is a 409. A key names its campaign for good.")
    ),
    responses(
        (status = 200, description = "The campaign this `Idempotency-Key` created before, for the same body; nothing new", body = Campaign, headers(("traceparent" = String, description = "The W3C traceparent the campaign's events carry"))),
        (status = 201, description = "The campaign created", body = Campaign, headers(("traceparent" = String, description = "The W3C traceparent the campaign's events carry: grep its trace id in the logs"))),
        (status = 400, description = "Malformed JSON, an invalid value or `Idempotency-Key` (named)", body = ErrorBody),
        (status = 409, description = "This `Idempotency-Key` created a campaign from another body (named); nothing new", body = ErrorBody),
        (status = 429, description = "As many campaigns in progress as the quota allows (`CAMPAIGN_MAX_IN_PROGRESS`)", body = ErrorBody),
        (status = 503, description = "Redis is at its memory ceiling (`maxmemory`); nothing was created", body = ErrorBody)
    )
)]
pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<NewCampaignRequest>,
) -> Result<Answered, ApiError> {
    let key = idempotency_key(&headers)?;
    let campaign = tokio::task::spawn_blocking(move || NewCampaign::parse(request))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(ApiError::bad_request)?;
    create_campaign(&state, campaign, &headers, key.as_deref()).await
}

/// A campaign answered: 201 (created) or 200 (an idempotent retry's), its
/// `traceparent`, and the campaign.
pub(super) type Answered = (StatusCode, [(HeaderName, String); 1], Json<Campaign>);

/// The `Idempotency-Key` header, when there is one: 1 to
/// [`MAX_IDEMPOTENCY_KEY`] visible ASCII characters, else a 400.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|key| {
            (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()) && key.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .map(|key| Some(key.to_string()))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (no spaces)"
            ))
        })
}

/// Stores and announces `campaign`, in the trace of the request's
/// `traceparent` when it has a valid one (else in the campaign's own trace
/// id); once per idempotency `key` when given.
pub(super) async fn create_campaign(
    state: &AppState,
    campaign: NewCampaign,
    headers: &HeaderMap,
    key: Option<&str>,
) -> Result<Answered, ApiError> {
    let incoming = headers
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(contracts::trace_id_of);
    if !quota::redis_has_room(&state.redis).await {
        return Err(quota::redis_full());
    }
    let creation = state
        .tracker
        .store()
        .create(campaign, incoming.as_deref(), key, state.max_in_progress)
        .await?;
    let campaign = match creation {
        Creation::Created(campaign) if campaign.send_at.is_some() => {
            // Announced when its time comes (crate::scheduler).
            let traceparent = contracts::traceparent(&state.tracker.trace_id(&campaign).await?);
            tracing::info!(campaign = %campaign.id, send_at = campaign.send_at, "campaign scheduled");
            return Ok((StatusCode::CREATED, [(TRACEPARENT, traceparent)], Json(campaign)));
        }
        Creation::Created(campaign) => campaign,
        Creation::Replayed(campaign) => {
            // Announced by the first request (or re-announced since).
            let traceparent = contracts::traceparent(&state.tracker.trace_id(&campaign).await?);
            tracing::info!(campaign = %campaign.id, "creation retried with its idempotency key");
            return Ok((StatusCode::OK, [(TRACEPARENT, traceparent)], Json(campaign)));
        }
        Creation::KeyReused { campaign_id } => {
            return Err(ApiError::conflict(format!(
                "this Idempotency-Key created campaign {campaign_id} from another body; \
                 use a new key for a new campaign"
            )))
        }
        Creation::QuotaFull => return Err(quota::too_many(state.max_in_progress)),
    };
    let trace_id = match incoming {
        Some(trace_id) => trace_id,
        None => state.tracker.trace_id(&campaign).await?,
    };
    let traceparent = contracts::traceparent(&trace_id);
    // If this fails the campaign is re-announced later; the caller still
    // gets its id.
    if let Err(error) = state.tracker.announce(&campaign, &traceparent).await {
        tracing::warn!(campaign = %campaign.id, error = format!("{error:#}"), "announcing failed; will retry");
    }
    tracing::info!(campaign = %campaign.id, trace = %traceparent, "campaign created");
    Ok((StatusCode::CREATED, [(TRACEPARENT, traceparent)], Json(campaign)))
}

/// The header that makes a creation idempotent (the IETF's
/// `Idempotency-Key` draft, as Stripe and others take it).
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The longest `Idempotency-Key`, in characters.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The W3C trace context header.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// `?after=&limit=` of the campaign list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// The page after this campaign id (the last page's `next_after`);
    /// empty or absent: the first page.
    #[serde(default)]
    #[param(
        pattern = "^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$",
        example = "2646e6d8-cbf4-4283-afa9-95781beda304"
    )]
    after: String,
    /// How many campaigns, the latest first.
    #[serde(default = "default_limit")]
    #[param(default = 50, minimum = 1, maximum = 500)]
    limit: i64,
}

/// One page of campaigns.
#[derive(Serialize, ToSchema)]
pub(super) struct CampaignPage {
    /// The latest first.
    campaigns: Vec<Campaign>,
    /// The `after` of the next page; `null` on the last one.
    next_after: Option<String>,
}

fn default_limit() -> i64 {
    50
}

/// The latest campaigns, with status and exact progress.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns",
    tag = "campaigns",
    params(ListQuery),
    responses(
        (status = 200, description = "The latest campaigns first, a page at a time", body = CampaignPage),
        (status = 400, description = "A limit out of range, or not a number, or an `after` that is not a campaign id", body = ErrorBody),
        (status = 404, description = "An `after` that names no campaign", body = ErrorBody)
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<CampaignPage>, ApiError> {
    let store = &state.reads;
    let (campaigns, next_after) = fetch_page(
        query.limit,
        MAX_LIMIT,
        || async {
            if query.after.is_empty() {
                return Ok(store.list(query.limit).await?);
            }
            let unknown = format!("after: no campaign with id {}", query.after);
            if !is_campaign_id(&query.after) {
                return Err(ApiError::bad_request(unknown));
            }
            store
                .list_after(&query.after, query.limit)
                .await?
                .ok_or_else(|| ApiError::not_found(unknown))
        },
        |campaign| campaign.id.clone(),
    )
    .await?;
    Ok(Json(CampaignPage {
        campaigns,
        next_after,
    }))
}

/// Whether `id` has the shape of a campaign's id: a UUID, lowercase and
/// hyphenated, as the API gives them.
fn is_campaign_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|uuid| uuid.hyphenated().to_string() == id)
}

/// `?after=&limit=` of a campaign's recipients not sent.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct FailureQuery {
    /// The page after this notification id (the last page's `next_after`);
    /// empty or absent: the first page.
    #[serde(default)]
    after: String,
    /// How many at most.
    #[serde(default = "default_limit")]
    #[param(default = 50, minimum = 1, maximum = 500)]
    limit: i64,
}

/// One page of a campaign's recipients not sent.
#[derive(Serialize, ToSchema)]
pub(super) struct FailurePage {
    /// In notification-id order.
    failures: Vec<Failure>,
    /// The `after` of the next page; `null` on the last one.
    next_after: Option<String>,
}

/// `GET /api/v1/campaigns/{id}/failures`: `{"failures": [...], "next_after":
/// <id or null>}`, the style of every paged list in comms (pass
/// `next_after` as `after` for the next page).
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/failures",
    tag = "campaigns",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The campaign's id"), FailureQuery),
    responses(
        (status = 200, description = "The campaign's recipients not sent (`failed` or `dead_lettered`), with the server's reply or the reason", body = FailurePage),
        (status = 400, description = "A limit out of range, or not a number", body = ErrorBody),
        (status = 404, description = "No campaign with this id", body = ErrorBody)
    )
)]
pub(super) async fn failures(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<FailureQuery>,
) -> Result<Json<FailurePage>, ApiError> {
    let store = &state.reads;
    let (failures, next_after) = fetch_page(
        query.limit,
        MAX_LIMIT,
        || async {
            // An unknown campaign is a 404, not an empty page.
            let _campaign = found(store.get(&id).await?, "campaign", &id)?;
            Ok::<_, ApiError>(store.failures(&id, &query.after, query.limit).await?)
        },
        |failure| failure.notification_id.clone(),
    )
    .await?;
    Ok(Json(FailurePage { failures, next_after }))
}

/// One campaign, with status and exact progress.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    responses(
        (status = 200, description = "The campaign", body = Campaign),
        (status = 404, description = "No campaign with this id", body = ErrorBody)
    )
)]
pub(super) async fn one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Campaign>, ApiError> {
    found(state.reads.get(&id).await?, "campaign", &id)
}
