//! The HTTP API of campaign-service and its dashboard.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the dashboard |
//! | `GET /api/v1/campaign/create` | creates the demo campaign |
//! | `POST /api/v1/campaigns` | creates a campaign from JSON |
//! | `POST /api/v1/campaigns/preview` | renders templates for one recipient, creating nothing |
//! | `GET /api/v1/campaigns?after=…&limit=…`, `GET /api/v1/campaigns/{id}` | status and exact progress (the list a page at a time) |
//! | `GET /api/v1/campaigns/events` | the same, live: Server-Sent Events of what changed ([`crate::live`]) |
//! | `GET /api/v1/campaigns/{id}/failures?after=…&limit=…` | its recipients not sent, with why, a page at a time |
//! | `GET /api/v1/streams` | every stream's length, groups, pending, lag, counters |
//! | `GET /api/v1/dead-letters?stream=…&after=…&limit=…` | dead letters of a stream, a page at a time |
//! | `POST /api/v1/dead-letters/replay?stream=…&id=…` | replays one |
//! | `POST /api/v1/dead-letters/replay-all?stream=…` | replays every one |
//!
//! Writes, the demo endpoint and dead letters (their payloads hold
//! recipients' addresses) are behind the API token whenever one is set.
//!
//! Each handler is described in [`ApiDoc`], the OpenAPI document served at
//! `/api-docs/openapi.json`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use contracts::Streams;
use eventstore::{deadletter, partitioned_stats, DeadLetter, Redis, StreamStats};
use serde::{Deserialize, Serialize};
use servicekit::access::{require_token, Access};
use servicekit::http::{next_after, page_limit, ApiError, ErrorBody};
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::domain::{NewCampaign, NewCampaignRequest};
use crate::handlers::Tracker;
use crate::store::{Campaign, Failure, Progress};

/// The OpenAPI document of campaign-service's own routes (the shared ones
/// are added by [`servicekit::openapi::document`]).
#[derive(OpenApi)]
#[openapi(
    paths(
        dashboard,
        create_demo,
        create,
        preview,
        list,
        crate::live::events,
        one,
        failures,
        streams,
        dead_letters,
        replay,
        replay_all
    ),
    components(schemas(
        Campaign,
        CampaignPage,
        Progress,
        Failure,
        FailurePage,
        DeadLetterPage,
        NewCampaignRequest,
        PreviewRequest,
        Preview,
        Replayed,
        ReplayedAll,
        eventstore::StreamStats,
        eventstore::GroupStats,
        eventstore::ConsumerStats,
        eventstore::DeadLetter
    )),
    tags(
        (name = "campaigns", description = "Campaigns: creation, status and exact progress"),
        (name = "streams", description = "The event streams: figures and dead letters")
    )
)]
pub struct ApiDoc;

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    /// Campaign store and publisher.
    pub tracker: Tracker,
    /// For stream figures and dead letters.
    pub redis: Redis,
    /// The streams and their partitions.
    pub streams: Streams,
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
        .route("/", get(dashboard))
        .route("/api/v1/campaigns", get(list))
        .route("/api/v1/campaigns/events", get(crate::live::events))
        .route("/api/v1/campaigns/{id}", get(one))
        .route("/api/v1/streams", get(streams))
        .merge(guarded)
        .with_state(state)
}

/// The dashboard: campaigns, their live progress, the streams and their
/// dead letters.
#[utoipa::path(
    get,
    path = "/",
    tag = "campaigns",
    responses((status = 200, description = "The dashboard's page", body = String, content_type = "text/html"))
)]
async fn dashboard() -> Html<&'static str> {
    Html(include_str!("../static/index.html"))
}

/// Creates the demo campaign (a write behind a GET, handy from a browser).
#[utoipa::path(
    get,
    path = "/api/v1/campaign/create",
    tag = "campaigns",
    security((), ("api_token" = [])),
    params(("traceparent" = Option<String>, Header, description = "A W3C traceparent (`00-<32 hex>-<16 hex>-<2 hex>`): everything the campaign causes carries its trace id, in every service's logs. Without it, or when it is not valid, the trace id is the campaign's id without dashes.")),
    responses(
        (status = 201, description = "The campaign created", body = Campaign, headers(("traceparent" = String, description = "The W3C traceparent the campaign's events carry: grep its trace id in the logs"))),
        (status = 401, description = "A token is set and the request lacks it", body = ErrorBody)
    )
)]
async fn create_demo(State(state): State<AppState>, headers: HeaderMap) -> Result<Created, ApiError> {
    create_campaign(&state, NewCampaign::demo(), &headers).await
}

/// Creates a campaign to every user. Its templates are rendered once for a
/// sample recipient first: an undefined variable, a render over its budget
/// or an output over its size is refused with a 400.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns",
    tag = "campaigns",
    security((), ("api_token" = [])),
    request_body = NewCampaignRequest,
    params(("traceparent" = Option<String>, Header, description = "A W3C traceparent (`00-<32 hex>-<16 hex>-<2 hex>`): everything the campaign causes carries its trace id, in every service's logs. Without it, or when it is not valid, the trace id is the campaign's id without dashes.")),
    responses(
        (status = 201, description = "The campaign created", body = Campaign, headers(("traceparent" = String, description = "The W3C traceparent the campaign's events carry: grep its trace id in the logs"))),
        (status = 400, description = "Malformed JSON, or an invalid value (named)", body = ErrorBody),
        (status = 401, description = "A token is set and the request lacks it", body = ErrorBody),
        (status = 413, description = "A body over 256 KiB", body = ErrorBody),
        (status = 415, description = "No JSON content type", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody)
    )
)]
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<NewCampaignRequest>, JsonRejection>,
) -> Result<Created, ApiError> {
    let Json(request) = body?;
    let campaign = tokio::task::spawn_blocking(move || NewCampaign::parse(request))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(ApiError::bad_request)?;
    create_campaign(&state, campaign, &headers).await
}

/// A created campaign: 201, its `traceparent`, and the campaign.
type Created = (StatusCode, [(HeaderName, String); 1], Json<Campaign>);

/// The JSON body of `POST /api/v1/campaigns/preview`: templates, and the
/// recipient to render them for (the sample recipient by default).
#[derive(Deserialize, ToSchema)]
struct PreviewRequest {
    /// Subject template.
    #[schema(example = "Hello {{ name }}")]
    subject: String,
    /// Body template.
    #[schema(example = "Dear {{ name }}, this was sent to {{ email }}.")]
    body: String,
    /// The recipient's name (the sample recipient's by default).
    #[serde(default = "sample_name")]
    #[schema(default = "Ada Lovelace")]
    name: String,
    /// The recipient's address (the sample recipient's by default).
    #[serde(default = "sample_email")]
    #[schema(default = "ada.lovelace@example.com")]
    email: String,
}

/// An email rendered for one recipient.
#[derive(Serialize, ToSchema)]
struct Preview {
    /// The subject.
    subject: String,
    /// The body.
    body: String,
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
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/preview",
    tag = "campaigns",
    security((), ("api_token" = [])),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The email as that recipient would get it", body = Preview),
        (status = 400, description = "Malformed JSON, or an invalid template (named)", body = ErrorBody),
        (status = 401, description = "A token is set and the request lacks it", body = ErrorBody),
        (status = 413, description = "A body over 256 KiB", body = ErrorBody),
        (status = 415, description = "No JSON content type", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody)
    )
)]
async fn preview(body: Result<Json<PreviewRequest>, JsonRejection>) -> Result<Json<Preview>, ApiError> {
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
    Ok(Json(Preview {
        subject: rendered.subject,
        body: rendered.body,
    }))
}

/// Stores and announces `campaign`, in the trace of the request's
/// `traceparent` when it has a valid one (else in the campaign's own trace id).
async fn create_campaign(
    state: &AppState,
    campaign: NewCampaign,
    headers: &HeaderMap,
) -> Result<Created, ApiError> {
    let incoming = headers
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(contracts::trace_id_of);
    let campaign = state
        .tracker
        .store()
        .create(campaign, incoming.as_deref())
        .await?;
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

/// The W3C trace context header.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// `?after=&limit=` of the campaign list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// The page after this campaign id (the last page's `next_after`);
    /// empty or absent: the first page.
    #[serde(default)]
    after: String,
    /// How many campaigns, the latest first.
    #[serde(default = "default_limit")]
    #[param(default = 50, minimum = 1, maximum = 500)]
    limit: i64,
}

/// One page of campaigns.
#[derive(Serialize, ToSchema)]
struct CampaignPage {
    /// The latest first.
    campaigns: Vec<Campaign>,
    /// The `after` of the next page; `null` on the last one.
    next_after: Option<String>,
}

/// The longest page of any list here.
const MAX_LIMIT: i64 = 500;

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
        (status = 400, description = "A limit out of range, or not a number, or an `after` that is no campaign", body = ErrorBody)
    )
)]
async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<CampaignPage>, ApiError> {
    let Query(query) = query?;
    page_limit(query.limit, MAX_LIMIT)?;
    let store = state.tracker.store();
    let campaigns = if query.after.is_empty() {
        store.list(query.limit).await?
    } else {
        store
            .list_after(&query.after, query.limit)
            .await?
            .ok_or_else(|| ApiError::bad_request(format!("after: no campaign with id {}", query.after)))?
    };
    let next_after = next_after(&campaigns, query.limit, |campaign| campaign.id.clone());
    Ok(Json(CampaignPage {
        campaigns,
        next_after,
    }))
}

/// `?after=&limit=` of a list paged by id.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
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
struct FailurePage {
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
    params(("id" = String, Path, description = "The campaign's id"), PageQuery),
    responses(
        (status = 200, description = "The campaign's recipients not sent (`failed` or `dead_lettered`), with the server's reply or the reason", body = FailurePage),
        (status = 400, description = "A limit out of range, or not a number", body = ErrorBody),
        (status = 401, description = "A token is set and the request lacks it", body = ErrorBody),
        (status = 404, description = "No campaign with this id", body = ErrorBody)
    )
)]
async fn failures(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<FailurePage>, ApiError> {
    let Path(id) = id?;
    let Query(query) = query?;
    page_limit(query.limit, MAX_LIMIT)?;
    let store = state.tracker.store();
    if store.get(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no campaign with id {id}")));
    }
    let failures = store.failures(&id, &query.after, query.limit).await?;
    let next_after = next_after(&failures, query.limit, |failure| failure.notification_id.clone());
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
async fn one(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Campaign>, ApiError> {
    let Path(id) = id?;
    state
        .tracker
        .store()
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no campaign with id {id}")))
}

/// Every stream of comms: its length, dead letters, and per consumer group
/// pending, lag, handled, retried and dead-lettered entries; a stream split
/// into partitions has them added up, and each partition's beside them.
#[utoipa::path(
    get,
    path = "/api/v1/streams",
    tag = "streams",
    responses((status = 200, description = "Every stream's figures", body = Vec<eventstore::StreamStats>))
)]
async fn streams(State(state): State<AppState>) -> Result<Json<Vec<StreamStats>>, ApiError> {
    Ok(Json(all_stream_stats(&state).await?))
}

/// The figures of every stream of comms.
pub(crate) async fn all_stream_stats(state: &AppState) -> anyhow::Result<Vec<StreamStats>> {
    let mut conn = state.redis.clone();
    let mut all = Vec::new();
    for stream in state.streams.all() {
        all.push(partitioned_stats(&mut conn, stream).await?);
    }
    Ok(all)
}

/// `?stream=` of a list of dead letters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamQuery {
    /// The stream: `comms:campaigns`, `comms:notifications`,
    /// `comms:emails` or `comms:deliveries` (all its partitions), or one
    /// partition of a split stream (`comms:emails:{2}`).
    #[param(
        example = "comms:emails",
        pattern = "^comms:(campaigns|notifications|emails|deliveries)(:[{][0-9]+[}])?$"
    )]
    stream: String,
}

/// `?stream=&id=` of a replay.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReplayQuery {
    /// The stream: `comms:campaigns`, `comms:notifications`,
    /// `comms:emails` or `comms:deliveries` (all its partitions), or one
    /// partition of a split stream (`comms:emails:{2}`).
    #[param(
        example = "comms:emails",
        pattern = "^comms:(campaigns|notifications|emails|deliveries)(:[{][0-9]+[}])?$"
    )]
    stream: String,
    /// The dead letter's id (as listed), e.g. `1700000000000-0`.
    #[param(required = true, pattern = "^[0-9]+-[0-9]+$", example = "1700000000000-0")]
    id: Option<String>,
}

/// A dead letter put back on its stream.
#[derive(Serialize, ToSchema)]
struct Replayed {
    /// The dead letter's id.
    replayed: String,
    /// The id of the entry added to the stream.
    new_id: String,
}

/// Every dead letter of a stream put back on it.
#[derive(Serialize, ToSchema)]
struct ReplayedAll {
    /// The stream.
    stream: String,
    /// How many were put back.
    replayed: usize,
}

/// The partitions `stream` names: every one of a stream of comms, or the
/// one partition named; 400 for any other name.
fn partitions_of<'s>(state: &'s AppState, stream: &str) -> Result<&'s [String], ApiError> {
    state.streams.select(stream).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown stream `{stream}`; one of {} (or one of their partitions)",
            contracts::ALL_STREAMS.join(", ")
        ))
    })
}

/// `?stream=&after=&limit=` of a page of dead letters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeadLetterPageQuery {
    /// The stream: `comms:campaigns`, `comms:notifications`,
    /// `comms:emails` or `comms:deliveries` (all its partitions), or one
    /// partition of a split stream (`comms:emails:{2}`).
    #[param(
        example = "comms:emails",
        pattern = "^comms:(campaigns|notifications|emails|deliveries)(:[{][0-9]+[}])?$"
    )]
    stream: String,
    /// The page after this dead letter id (the last page's `next_after`);
    /// empty or absent: the first page.
    #[serde(default)]
    after: String,
    /// How many at most.
    #[serde(default = "default_dead_letter_limit")]
    #[param(default = 100, minimum = 1, maximum = 500)]
    limit: i64,
}

fn default_dead_letter_limit() -> i64 {
    100
}

/// One page of a stream's dead letters.
#[derive(Serialize, ToSchema)]
struct DeadLetterPage {
    /// The oldest first.
    dead_letters: Vec<DeadLetter>,
    /// The `after` of the next page; `null` on the last one.
    next_after: Option<String>,
}

/// A stream's dead letters with their reason, the oldest first, a page at
/// a time.
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "streams",
    security((), ("api_token" = [])),
    params(DeadLetterPageQuery),
    responses(
        (status = 200, description = "The stream's dead letters (their payloads hold recipients' addresses)", body = DeadLetterPage),
        (status = 400, description = "No stream, or an unknown one, a limit out of range, or an `after` that is not a stream id", body = ErrorBody),
        (status = 401, description = "A token is set and the request lacks it", body = ErrorBody)
    )
)]
async fn dead_letters(
    State(state): State<AppState>,
    query: Result<Query<DeadLetterPageQuery>, QueryRejection>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let Query(query) = query?;
    let partitions = partitions_of(&state, &query.stream)?;
    page_limit(query.limit, MAX_LIMIT)?;
    let mut conn = state.redis.clone();
    let after = Some(query.after.as_str()).filter(|after| !after.is_empty());
    let dead_letters = deadletter::page_over(&mut conn, partitions, after, query.limit as usize)
        .await
        .map_err(|error| match error {
            eventstore::Error::InvalidId(_) => ApiError::bad_request(error.to_string()),
            error => anyhow::Error::from(error).into(),
        })?;
    let next_after = next_after(&dead_letters, query.limit, |letter| letter.id.clone());
    Ok(Json(DeadLetterPage {
        dead_letters,
        next_after,
    }))
}

/// Puts one dead letter back on its stream, for its groups to handle again.
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/replay",
    tag = "streams",
    security((), ("api_token" = [])),
    params(ReplayQuery),
    responses(
        (status = 200, description = "Replayed", body = Replayed),
        (status = 400, description = "No stream or id, an unknown stream, or an id that is not a stream id", body = ErrorBody),
        (status = 401, description = "A token is set and the request lacks it", body = ErrorBody),
        (status = 404, description = "No such dead letter on this stream", body = ErrorBody),
        (status = 409, description = "Two partitions of the stream hold a dead letter with this id (they number their entries on their own): name the partition, as each dead letter's `stream` does", body = ErrorBody)
    )
)]
async fn replay(
    State(state): State<AppState>,
    query: Result<Query<ReplayQuery>, QueryRejection>,
) -> Result<Json<Replayed>, ApiError> {
    let Query(query) = query?;
    let partitions = partitions_of(&state, &query.stream)?;
    let id = query
        .id
        .ok_or_else(|| ApiError::bad_request("missing query parameter `id`"))?;
    let mut conn = state.redis.clone();
    let replayed = deadletter::replay_over(&mut conn, partitions, &id)
        .await
        .map_err(|error| match error {
            eventstore::Error::InvalidId(_) => ApiError::bad_request(error.to_string()),
            eventstore::Error::AmbiguousId { .. } => ApiError::conflict(error.to_string()),
            error => anyhow::Error::from(error).into(),
        })?;
    match replayed {
        Some(new_id) => Ok(Json(Replayed { replayed: id, new_id })),
        None => Err(ApiError::not_found(format!(
            "no dead letter {id} on {}",
            query.stream
        ))),
    }
}

/// Puts every dead letter of a stream back on it.
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/replay-all",
    tag = "streams",
    security((), ("api_token" = [])),
    params(StreamQuery),
    responses(
        (status = 200, description = "Replayed, with how many", body = ReplayedAll),
        (status = 400, description = "No stream, or an unknown one", body = ErrorBody),
        (status = 401, description = "A token is set and the request lacks it", body = ErrorBody)
    )
)]
async fn replay_all(
    State(state): State<AppState>,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Json<ReplayedAll>, ApiError> {
    let Query(query) = query?;
    let partitions = partitions_of(&state, &query.stream)?;
    let mut conn = state.redis.clone();
    let mut replayed = 0;
    for partition in partitions {
        replayed += deadletter::replay_all(&mut conn, partition)
            .await
            .map_err(anyhow::Error::from)?;
    }
    Ok(Json(ReplayedAll {
        stream: query.stream,
        replayed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the document says a stream's name is.
    const STREAM_PATTERN: &str = "^comms:(campaigns|notifications|emails|deliveries)(:[{][0-9]+[}])?$";

    #[test]
    fn the_documented_stream_pattern_names_every_stream() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/api/v1/dead-letters",
            "/api/v1/dead-letters/replay",
            "/api/v1/dead-letters/replay-all",
        ] {
            let operation = &document["paths"][path];
            let operation = operation.get("get").unwrap_or(&operation["post"]);
            assert_eq!(operation["parameters"][0]["name"], "stream");
            let pattern = operation["parameters"][0]["schema"]["pattern"].as_str().unwrap();
            assert_eq!(pattern, STREAM_PATTERN, "{path}");
        }
        let names = STREAM_PATTERN
            .strip_prefix("^comms:(")
            .and_then(|rest| rest.strip_suffix(")(:[{][0-9]+[}])?$"))
            .expect("the pattern's shape");
        let documented: Vec<String> = names.split('|').map(|name| format!("comms:{name}")).collect();
        assert_eq!(documented, contracts::ALL_STREAMS);
    }
}
