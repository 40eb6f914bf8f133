//! The HTTP API of campaign-service and its dashboard.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the dashboard |
//! | `GET /api/v1/campaign/create` | creates the demo campaign |
//! | `POST /api/v1/campaigns` | creates a campaign from JSON |
//! | `POST /api/v1/campaigns/preview` | renders templates for one recipient, creating nothing |
//! | `GET /api/v1/campaigns`, `GET /api/v1/campaigns/{id}` | status and exact progress |
//! | `GET /api/v1/campaigns/events` | the same, live: Server-Sent Events of what changed ([`crate::live`]) |
//! | `GET /api/v1/campaigns/{id}/failures?after=…&limit=…` | its recipients not sent, with why, a page at a time |
//! | `GET /api/v1/streams` | every stream's length, groups, pending, lag, counters |
//! | `GET /api/v1/dead-letters?stream=…` | dead letters of a stream |
//! | `POST /api/v1/dead-letters/replay?stream=…&id=…` | replays one |
//! | `POST /api/v1/dead-letters/replay-all?stream=…` | replays every one |
//!
//! Writes, the demo endpoint and dead letters (their payloads hold
//! recipients' addresses) are behind the API token whenever one is set.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use eventstore::{deadletter, stream_stats, ConnectionManager, DeadLetter, StreamStats};
use serde::Deserialize;
use serde_json::{json, Value};
use servicekit::access::{require_token, Access};
use servicekit::http::ApiError;
use tokio_util::sync::CancellationToken;

use crate::domain::{NewCampaign, NewCampaignRequest};
use crate::handlers::Tracker;
use crate::store::Campaign;

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    /// Campaign store and publisher.
    pub tracker: Tracker,
    /// For stream figures and dead letters.
    pub redis: ConnectionManager,
    /// Who may write.
    pub access: Access,
    /// Ends the live channels at shutdown.
    pub shutdown: CancellationToken,
}

/// The routes: writes and personal data behind [`require_token`], the
/// rest open.
pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/api/v1/campaigns", post(create))
        .route("/api/v1/campaigns/preview", post(preview))
        .route("/api/v1/campaign/create", get(create_demo))
        .route("/api/v1/campaigns/{id}/failures", get(failures))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/replay", post(replay))
        .route("/api/v1/dead-letters/replay-all", post(replay_all))
        .route_layer(middleware::from_fn_with_state(
            state.access.clone(),
            require_token,
        ));
    Router::new()
        .route("/", get(|| async { Html(include_str!("../static/index.html")) }))
        .route("/api/v1/campaigns", get(list))
        .route("/api/v1/campaigns/events", get(crate::live::events))
        .route("/api/v1/campaigns/{id}", get(one))
        .route("/api/v1/streams", get(streams))
        .merge(guarded)
        .with_state(state)
}

async fn create_demo(State(state): State<AppState>) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    create_campaign(&state, NewCampaign::demo()).await
}

async fn create(
    State(state): State<AppState>,
    body: Result<Json<NewCampaignRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    let Json(request) = body?;
    let campaign = tokio::task::spawn_blocking(move || NewCampaign::parse(request))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(ApiError::bad_request)?;
    create_campaign(&state, campaign).await
}

/// The JSON body of `POST /api/v1/campaigns/preview`: templates, and the
/// recipient to render them for (the sample recipient by default).
#[derive(Deserialize)]
struct PreviewRequest {
    subject: String,
    body: String,
    #[serde(default = "sample_name")]
    name: String,
    #[serde(default = "sample_email")]
    email: String,
}

fn sample_name() -> String {
    templates::SAMPLE_NAME.into()
}

fn sample_email() -> String {
    templates::SAMPLE_EMAIL.into()
}

/// Renders templates for one recipient with the checks and bounds of a
/// new campaign, so a form can show the email, or what is wrong with it,
/// before anything is created.
async fn preview(body: Result<Json<PreviewRequest>, JsonRejection>) -> Result<Json<Value>, ApiError> {
    let Json(request) = body?;
    let rendered = tokio::task::spawn_blocking(move || {
        let campaign = NewCampaign::parse(NewCampaignRequest {
            name: "preview".into(),
            subject: request.subject,
            body: request.body,
        })?;
        templates::Templates::compile(&campaign.subject, &campaign.body)
            .and_then(|templates| templates.render(&request.name, &request.email))
            .map_err(|error| error.to_string())
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(ApiError::bad_request)?;
    Ok(Json(
        json!({ "subject": rendered.subject, "body": rendered.body }),
    ))
}

async fn create_campaign(
    state: &AppState,
    campaign: NewCampaign,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    let campaign = state.tracker.store().create(campaign).await?;
    // If this fails the campaign is re-announced later; the caller still
    // gets its id.
    if let Err(error) = state.tracker.announce(&campaign).await {
        tracing::warn!(campaign = %campaign.id, error = format!("{error:#}"), "announcing failed; will retry");
    }
    tracing::info!(campaign = %campaign.id, "campaign created");
    Ok((StatusCode::CREATED, Json(campaign)))
}

/// `?limit=` of the campaign list.
#[derive(Deserialize)]
struct ListQuery {
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<Campaign>>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    if !(1..=500).contains(&query.limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    Ok(Json(state.tracker.store().list(query.limit).await?))
}

/// `?after=&limit=` of a list paged by id.
#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    after: String,
    #[serde(default = "default_limit")]
    limit: i64,
}

/// `GET /api/v1/campaigns/{id}/failures`: `{"failures": [...], "next_after":
/// <id or null>}`, the style of every paged list in comms (pass
/// `next_after` as `after` for the next page).
async fn failures(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    if !(1..=500).contains(&query.limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    let store = state.tracker.store();
    if store.get(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no campaign with id {id}")));
    }
    let failures = store.failures(&id, &query.after, query.limit).await?;
    let next_after = (failures.len() as i64 == query.limit)
        .then(|| failures.last().map(|failure| failure.notification_id.clone()))
        .flatten();
    Ok(Json(json!({ "failures": failures, "next_after": next_after })))
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Campaign>, ApiError> {
    state
        .tracker
        .store()
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no campaign with id {id}")))
}

async fn streams(State(state): State<AppState>) -> Result<Json<Vec<StreamStats>>, ApiError> {
    Ok(Json(all_stream_stats(&state).await?))
}

/// The figures of every stream of comms.
pub(crate) async fn all_stream_stats(state: &AppState) -> anyhow::Result<Vec<StreamStats>> {
    let mut conn = state.redis.clone();
    let mut all = Vec::new();
    for stream in contracts::ALL_STREAMS {
        all.push(stream_stats(&mut conn, stream).await?);
    }
    Ok(all)
}

/// `?stream=` (and `&id=` for a replay).
#[derive(Deserialize)]
struct DeadLetterQuery {
    stream: String,
    id: Option<String>,
}

fn known_stream(stream: &str) -> Result<(), ApiError> {
    if contracts::ALL_STREAMS.contains(&stream) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "unknown stream `{stream}`; one of {}",
            contracts::ALL_STREAMS.join(", ")
        )))
    }
}

async fn dead_letters(
    State(state): State<AppState>,
    query: Result<Query<DeadLetterQuery>, QueryRejection>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    known_stream(&query.stream)?;
    let mut conn = state.redis.clone();
    let letters = deadletter::list(&mut conn, &query.stream, 100)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Json(letters))
}

async fn replay(
    State(state): State<AppState>,
    query: Result<Query<DeadLetterQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    known_stream(&query.stream)?;
    let id = query
        .id
        .ok_or_else(|| ApiError::bad_request("missing query parameter `id`"))?;
    let mut conn = state.redis.clone();
    let replayed = deadletter::replay(&mut conn, &query.stream, &id)
        .await
        .map_err(|error| match error {
            eventstore::Error::InvalidId(_) => ApiError::bad_request(error.to_string()),
            error => anyhow::Error::from(error).into(),
        })?;
    match replayed {
        Some(new_id) => Ok(Json(json!({ "replayed": id, "new_id": new_id }))),
        None => Err(ApiError::not_found(format!(
            "no dead letter {id} on {}",
            query.stream
        ))),
    }
}

/// `?stream=` of a replay of every dead letter.
#[derive(Deserialize)]
struct StreamQuery {
    stream: String,
}

async fn replay_all(
    State(state): State<AppState>,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    known_stream(&query.stream)?;
    let mut conn = state.redis.clone();
    let replayed = deadletter::replay_all(&mut conn, &query.stream)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Json(json!({ "stream": query.stream, "replayed": replayed })))
}
