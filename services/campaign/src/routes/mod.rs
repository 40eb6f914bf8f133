//! The HTTP API of campaign-service and its dashboard, one file per
//! resource.
//!
//! | route | what | file |
//! |---|---|---|
//! | `GET /` | the dashboard | [`dashboard`] |
//! | `GET /api/v1/campaign/create` | creates the demo campaign | [`campaigns`] |
//! | `POST /api/v1/campaigns` | creates a campaign from JSON | [`campaigns`] |
//! | `POST /api/v1/campaigns/preview` | renders templates for one recipient, creating nothing | [`preview`] |
//! | `GET /api/v1/campaigns?after=…&limit=…`, `GET /api/v1/campaigns/{id}` | status and exact progress (the list a page at a time) | [`campaigns`] |
//! | `GET /api/v1/campaigns/events` | the same, live: Server-Sent Events of what changed | [`live`] |
//! | `GET /api/v1/campaigns/{id}/failures?after=…&limit=…` | its recipients not sent, with why, a page at a time | [`campaigns`] |
//! | `GET /api/v1/streams` | every stream's length, groups, pending, lag, counters | [`streams`] |
//! | `GET /api/v1/dead-letters?stream=…&after=…&limit=…` | dead letters of a stream, a page at a time | [`dead_letters`] |
//! | `POST /api/v1/dead-letters/replay?stream=…&id=…` | replays one | [`dead_letters`] |
//! | `POST /api/v1/dead-letters/replay-all?stream=…` | replays every one | [`dead_letters`] |
//!
//! Writes, the demo endpoint and dead letters (their payloads hold
//! recipients' addresses) are behind the API token whenever one is set.
//!
//! Each handler is described in [`ApiDoc`], the OpenAPI document served at
//! `/api-docs/openapi.json`.

mod campaigns;
mod dashboard;
mod dead_letters;
pub mod live;
mod preview;
mod streams;

use axum::routing::{get, post};
use axum::{middleware, Router};
use contracts::Streams;
use servicekit::access::require_token;
use utoipa::openapi::{ObjectBuilder, OpenApi as Document, Type};
use utoipa::OpenApi;

use crate::domain::{NewCampaignRequest, TemplatesRequest};
use crate::state::AppState;
use crate::store::{Campaign, Failure, Progress};

/// The OpenAPI document of campaign-service's own routes (the shared ones
/// are added by [`servicekit::openapi::document`]).
#[derive(OpenApi)]
#[openapi(
    paths(
        dashboard::dashboard,
        campaigns::create_demo,
        campaigns::create,
        preview::preview,
        campaigns::list,
        live::events,
        campaigns::one,
        campaigns::failures,
        streams::streams,
        dead_letters::dead_letters,
        dead_letters::replay,
        dead_letters::replay_all
    ),
    components(schemas(
        Campaign,
        campaigns::CampaignPage,
        Progress,
        Failure,
        campaigns::FailurePage,
        dead_letters::DeadLetterPage,
        NewCampaignRequest,
        TemplatesRequest,
        preview::PreviewRequest,
        preview::Preview,
        dead_letters::Replayed,
        dead_letters::ReplayedAll,
        live::LiveEvent,
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

/// [`ApiDoc`] as this process serves it: every `stream` parameter lists
/// the names the server takes, which depend on how many partitions the
/// streams are split into, so that the document says exactly what the
/// server enforces.
pub fn document(streams: &Streams) -> Document {
    let mut document = ApiDoc::openapi();
    let names = streams.names();
    for item in document.paths.paths.values_mut() {
        for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.name == "stream" {
                    let schema = ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(names.clone()))
                        .examples([contracts::EMAILS]);
                    parameter.schema = Some(schema.into());
                }
            }
        }
    }
    document
}

/// The longest page of any list here.
const MAX_LIMIT: i64 = 500;

/// The routes: writes and personal data behind [`require_token`], the
/// rest open.
pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/api/v1/campaigns", post(campaigns::create))
        .route("/api/v1/campaigns/preview", post(preview::preview))
        .route("/api/v1/campaign/create", get(campaigns::create_demo))
        .route("/api/v1/campaigns/{id}/failures", get(campaigns::failures))
        .route("/api/v1/dead-letters", get(dead_letters::dead_letters))
        .route("/api/v1/dead-letters/replay", post(dead_letters::replay))
        .route("/api/v1/dead-letters/replay-all", post(dead_letters::replay_all))
        .route_layer(middleware::from_fn_with_state(
            state.access.clone(),
            require_token,
        ));
    Router::new()
        .route("/", get(dashboard::dashboard))
        .route("/api/v1/campaigns", get(campaigns::list))
        .route("/api/v1/campaigns/events", get(live::events))
        .route("/api/v1/campaigns/{id}", get(campaigns::one))
        .route("/api/v1/streams", get(streams::streams))
        .merge(guarded)
        .with_state(state)
}
