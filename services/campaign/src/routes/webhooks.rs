//! The webhook endpoints: registered, listed, removed, and their dead
//! events (tries run out) listed and replayed. Every route is behind the
//! API token whenever one is set: an endpoint's URL and its events name
//! recipients. How receivers verify a POST: docs/webhooks.md.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use servicekit::http::extract::{whole_number, ApiJson, ApiPath, ApiQuery};
use servicekit::http::{fetch_page, found, ApiError, ErrorBody};
use servicekit::now_ms;
use utoipa::{IntoParams, ToSchema};

use super::MAX_LIMIT;
use crate::state::AppState;
use crate::webhooks::event::EventType;
use crate::webhooks::sign;
use crate::webhooks::store::{DeadEvent, Endpoint, Target};
use crate::webhooks::target::check_url;

/// The most events one POST may carry.
const MAX_BATCH: i64 = 100;

/// The JSON body of `POST /api/v1/webhooks`.
#[derive(Deserialize, ToSchema)]
pub(super) struct NewWebhook {
    /// Where to POST: an `http` or `https` URL, not to a link-local or
    /// cloud metadata address.
    #[schema(
        example = "https://hooks.example.com/comms",
        max_length = 2000,
        pattern = "^https?://[^/?#@\\s]+([/?#]\\S*)?$"
    )]
    url: String,
    /// The kinds of event it receives: one or more.
    #[schema(min_items = 1)]
    events: Vec<EventType>,
    /// Events per POST: 1 (the default) sends each event as the body; more
    /// sends `{"events": [...]}` of up to this many.
    #[serde(default = "one_event", deserialize_with = "whole_number")]
    #[schema(default = 1, minimum = 1, maximum = 100)]
    batch_size: i64,
    /// The signing secret, `whsec_` and the base64 of 24 to 64 bytes;
    /// absent, comms makes one (shown once, in the answer).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: Option<String>,
}

fn one_event() -> i64 {
    1
}

/// An endpoint just registered, with its secret: the one time it is shown.
#[derive(Serialize, ToSchema)]
pub(super) struct NewEndpoint {
    /// The endpoint.
    #[serde(flatten)]
    endpoint: Endpoint,
    /// The secret its POSTs are signed with.
    secret: String,
}

/// Every endpoint.
#[derive(Serialize, ToSchema)]
pub(super) struct Endpoints {
    /// The oldest first.
    webhooks: Vec<Endpoint>,
}

/// `?after=&limit=` of a page of dead events.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeadQuery {
    /// The page after this event id (the last page's `next_after`); empty
    /// or absent: the first page.
    #[serde(default)]
    #[param(pattern = "^[0-9a-f-]{0,36}$")]
    after: String,
    /// How many at most.
    #[serde(default = "hundred")]
    #[param(default = 100, minimum = 1, maximum = 500)]
    limit: i64,
}

fn hundred() -> i64 {
    100
}

/// One page of an endpoint's dead events.
#[derive(Serialize, ToSchema)]
pub(super) struct DeadPage {
    /// By event id.
    dead: Vec<DeadEvent>,
    /// The `after` of the next page; `null` on the last one.
    next_after: Option<String>,
}

/// Dead events tried again.
#[derive(Serialize, ToSchema)]
pub(super) struct ReplayedEvents {
    /// How many.
    replayed: u64,
}

/// Registers an endpoint: from now on, each event of the kinds it names
/// is POSTed to it, signed.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security((), ("api_token" = [])),
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Registered: its secret is in the answer, and only there", body = NewEndpoint),
        (status = 400, description = "A URL that is not http(s) or goes to a link-local or metadata address, no event kind, a batch size out of 1 to 100, a malformed secret (named)", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (an unknown event kind)", body = ErrorBody)
    )
)]
pub(super) async fn add(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<NewEndpoint>), ApiError> {
    let url = check_url(&request.url, state.allow_link_local).map_err(ApiError::bad_request)?;
    let mut events = request.events;
    events.dedup();
    if events.is_empty() {
        return Err(ApiError::bad_request("events names no kind of event"));
    }
    if !(1..=MAX_BATCH).contains(&request.batch_size) {
        return Err(ApiError::bad_request(format!(
            "batch_size must be between 1 and {MAX_BATCH}"
        )));
    }
    let secret = match request.secret {
        Some(secret) => {
            sign::key_of(&secret).map_err(ApiError::bad_request)?;
            secret
        }
        None => sign::new_secret(),
    };
    let target = Target {
        id: uuid::Uuid::new_v4().to_string(),
        url: url.to_string(),
        secret,
        batch_size: request.batch_size,
        failures: 0,
    };
    let endpoint = state.webhooks.add(&target, &events, now_ms()).await?;
    state.subscribers.forget().await;
    Ok((
        StatusCode::CREATED,
        Json(NewEndpoint {
            endpoint,
            secret: target.secret,
        }),
    ))
}

/// Every endpoint, with what waits for each and how its last POSTs went.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security((), ("api_token" = [])),
    responses((status = 200, description = "Every endpoint", body = Endpoints))
)]
pub(super) async fn list(State(state): State<AppState>) -> Result<Json<Endpoints>, ApiError> {
    Ok(Json(Endpoints {
        webhooks: state.webhooks.list().await?,
    }))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        (status = 404, description = "No endpoint of this id", body = ErrorBody)
    )
)]
pub(super) async fn one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Endpoint>, ApiError> {
    found(state.webhooks.get(&id).await?, "webhook", &id)
}

/// Removes an endpoint and every event waiting for it.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No endpoint of this id", body = ErrorBody)
    )
)]
pub(super) async fn remove(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if state.webhooks.delete(&id).await? {
        state.subscribers.forget().await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown(&id))
    }
}

/// A 404 unless endpoint `id` exists.
async fn known(state: &AppState, id: &str) -> Result<(), ApiError> {
    match state.webhooks.get(id).await? {
        Some(_) => Ok(()),
        None => Err(unknown(id)),
    }
}

/// The 404 of an endpoint `id` that does not exist.
fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("no webhook with id {id}"))
}

/// An endpoint's dead events (their tries ran out), a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/dead",
    tag = "webhooks",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The endpoint's id"), DeadQuery),
    responses(
        (status = 200, description = "A page of dead events", body = DeadPage),
        (status = 400, description = "A limit out of 1 to 500", body = ErrorBody),
        (status = 404, description = "No endpoint of this id", body = ErrorBody)
    )
)]
pub(super) async fn dead(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeadQuery>,
) -> Result<Json<DeadPage>, ApiError> {
    known(&state, &id).await?;
    let (dead, next_after) = fetch_page(
        query.limit,
        MAX_LIMIT,
        || state.webhooks.dead(&id, &query.after, query.limit),
        |dead: &DeadEvent| dead.event["id"].as_str().unwrap_or_default().to_string(),
    )
    .await?;
    Ok(Json(DeadPage { dead, next_after }))
}

/// Tries every dead event of an endpoint again, from now, with as long to
/// succeed as a new one.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/replay",
    tag = "webhooks",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "How many were put back", body = ReplayedEvents),
        (status = 404, description = "No endpoint of this id", body = ErrorBody)
    )
)]
pub(super) async fn replay(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReplayedEvents>, ApiError> {
    known(&state, &id).await?;
    Ok(Json(ReplayedEvents {
        replayed: state.webhooks.replay(&id, now_ms()).await?,
    }))
}
