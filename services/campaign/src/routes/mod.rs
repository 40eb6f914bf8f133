//! The HTTP API of campaign-service and its dashboard, one file per
//! resource.
//!
//! | route | what | file |
//! |---|---|---|
//! | `GET /` | the dashboard (its script and styles under `/dashboard/`) | [`dashboard`] |
//! | `GET /api/v1/campaign/create` | creates the demo campaign | [`campaigns`] |
//! | `POST /api/v1/campaigns` | creates a campaign from JSON | [`campaigns`] |
//! | `POST /api/v1/campaigns/preview` | renders templates for one recipient, creating nothing | [`preview`] |
//! | `POST /api/v1/campaigns/test-send`, `POST /api/v1/campaigns/{id}/test-send` | a draft's or a campaign's email sent now to a few addresses, marked as a test | [`test_send`] |
//! | `GET /api/v1/campaigns?after=…&limit=…`, `GET /api/v1/campaigns/{id}` | status and exact progress (the list a page at a time) | [`campaigns`] |
//! | `GET /api/v1/campaigns/events` | the same, live: Server-Sent Events of what changed | [`live`] |
//! | `GET /api/v1/campaigns/{id}/failures?after=…&limit=…` | its recipients not sent, with why, a page at a time | [`campaigns`] |
//! | `POST /api/v1/campaigns/{id}/pause`, `…/resume`, `…/cancel` | a campaign paused, resumed or cancelled | [`control`] |
//! | `POST /api/v1/campaigns/{id}/schedule` | a scheduled campaign moved | [`schedule`] |
//! | `POST /api/v1/campaigns/{id}/resend` | a new campaign to a finished one's recipients not reached | [`resend`] |
//! | `GET /api/v1/streams` | every stream's length, groups, pending, lag, counters | [`streams`] |
//! | `GET /api/v1/dead-letters?stream=…&after=…&limit=…` | dead letters of a stream, a page at a time | [`dead_letters`] |
//! | `POST /api/v1/dead-letters/replay?stream=…&id=…` | replays one | [`dead_letters`] |
//! | `POST /api/v1/dead-letters/replay-all?stream=…` | replays every one | [`dead_letters`] |
//! | `POST /api/v1/webhooks`, `GET /api/v1/webhooks`, `GET`/`DELETE /api/v1/webhooks/{id}` | signed webhook endpoints: registered, listed, removed | [`webhooks`] |
//! | `GET /api/v1/webhooks/{id}/dead`, `POST /api/v1/webhooks/{id}/replay` | an endpoint's events whose tries ran out, and replaying them | [`webhooks`] |
//! | `GET /unsubscribe/{token}` | an email's unsubscribe link: a page asking to confirm, changing nothing | [`unsubscribe`] |
//! | `POST /unsubscribe/{token}` | unsubscribes (`List-Unsubscribe=One-Click`) or resubscribes (`action=resubscribe`) | [`unsubscribe`] |
//!
//! Writes, the demo endpoint and dead letters (their payloads hold
//! recipients' addresses) are behind the API token whenever one is set.
//! The unsubscribe link is not: its signed token is its authority, and
//! it takes POSTs from any page (mail providers post from their own).
//!
//! Each handler is described in [`ApiDoc`], the OpenAPI document served at
//! `/api-docs/openapi.json`.

mod campaigns;
mod control;
mod dashboard;
mod dead_letters;
pub mod live;
mod messages;
mod preview;
mod resend;
mod schedule;
mod streams;
mod templates;
pub mod test_send;
pub mod unsubscribe;
mod webhooks;

use axum::routing::{get, post};
use axum::{middleware, Router};
use contracts::Streams;
use servicekit::access::require_token;
use servicekit::http::writes_only_from_here;
use utoipa::openapi::{ObjectBuilder, OpenApi as Document, Type};
use utoipa::OpenApi;

pub use dashboard::Peers;

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
        test_send::draft,
        test_send::campaign,
        messages::send,
        messages::one,
        templates::add,
        templates::latest,
        templates::version,
        campaigns::list,
        live::events,
        campaigns::one,
        campaigns::failures,
        control::pause,
        control::resume,
        control::cancel,
        resend::resend,
        schedule::reschedule,
        streams::streams,
        dead_letters::dead_letters,
        dead_letters::replay,
        dead_letters::replay_all,
        webhooks::add,
        webhooks::list,
        webhooks::one,
        webhooks::remove,
        webhooks::dead,
        webhooks::replay,
        unsubscribe::page,
        unsubscribe::choose
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
        test_send::DraftTestSend,
        test_send::CampaignTestSend,
        test_send::TestSent,
        messages::SendMessage,
        messages::MessageQueued,
        crate::store::Message,
        crate::store::Attempt,
        templates::NewTemplate,
        crate::store::StoredTemplate,
        schedule::Reschedule,
        dead_letters::Replayed,
        dead_letters::ReplayedAll,
        live::LiveEvent,
        eventstore::StreamStats,
        eventstore::rate::SendFigures,
        contracts::relays::RelayFigures,
        eventstore::GroupStats,
        eventstore::ConsumerStats,
        eventstore::DeadLetter,
        webhooks::NewWebhook,
        webhooks::NewEndpoint,
        webhooks::Endpoints,
        webhooks::DeadPage,
        webhooks::ReplayedEvents,
        crate::webhooks::store::Endpoint,
        crate::webhooks::store::DeadEvent,
        crate::webhooks::event::EventType,
        unsubscribe::Choice,
        unsubscribe::Consent
    )),
    tags(
        (name = "campaigns", description = "Campaigns: creation, status and exact progress"),
        (name = "messages", description = "Transactional messages: one email to one address, sent now"),
        (name = "webhooks", description = "Signed webhooks: every outcome POSTed to the endpoints registered"),
        (name = "streams", description = "The event streams: figures and dead letters"),
        (name = "consent", description = "The unsubscribe link of every email (RFC 8058 one-click)")
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

/// The reads that dashboards and scripts may ask for as fast as they are
/// answered, run at the idle priority
/// ([`servicekit::service::Service::read_at_idle_priority`]): their
/// handlers read the store through [`AppState::reads`] and Redis through
/// [`AppState::redis`], the routes' own connection. Not the live channel:
/// its feed is one read per tick for every client, and runs at the usual
/// priority, so that the dashboard goes on showing a campaign however
/// busy the machine is.
pub const READ_AT_IDLE_PRIORITY: &[&str] = &[
    "/api/v1/campaigns",
    "/api/v1/campaigns/{id}",
    "/api/v1/campaigns/{id}/failures",
    "/api/v1/streams",
    "/api/v1/dead-letters",
];

/// The routes: writes and personal data behind [`require_token`], the
/// rest open; every write refused when a browser says another site sent
/// it (servicekit's checks, and [`writes_only_from_here`] for the demo
/// GET), but the unsubscribe link's, which the service opens to every
/// page ([`unsubscribe::ROUTE`]). The dashboard reads `peers` too.
pub fn router(state: AppState, peers: &Peers) -> Router {
    let guarded = Router::new()
        .route("/api/v1/campaigns", post(campaigns::create))
        .route("/api/v1/campaigns/preview", post(preview::preview))
        .route("/api/v1/campaigns/test-send", post(test_send::draft))
        .route("/api/v1/messages", post(messages::send))
        .route("/api/v1/messages/{id}", get(messages::one))
        .route("/api/v1/templates", post(templates::add))
        .route("/api/v1/campaigns/{id}/test-send", post(test_send::campaign))
        // A write behind a GET: from curl, a URL typed in or the
        // dashboard's own button, not from another site's link.
        .route(
            "/api/v1/campaign/create",
            get(campaigns::create_demo).layer(middleware::from_fn(writes_only_from_here)),
        )
        .route("/api/v1/campaigns/{id}/failures", get(campaigns::failures))
        .route("/api/v1/campaigns/{id}/pause", post(control::pause))
        .route("/api/v1/campaigns/{id}/resume", post(control::resume))
        .route("/api/v1/campaigns/{id}/cancel", post(control::cancel))
        .route("/api/v1/campaigns/{id}/resend", post(resend::resend))
        .route("/api/v1/campaigns/{id}/schedule", post(schedule::reschedule))
        .route("/api/v1/dead-letters", get(dead_letters::dead_letters))
        .route("/api/v1/dead-letters/replay", post(dead_letters::replay))
        .route("/api/v1/dead-letters/replay-all", post(dead_letters::replay_all))
        .route("/api/v1/webhooks", post(webhooks::add).get(webhooks::list))
        .route(
            "/api/v1/webhooks/{id}",
            get(webhooks::one).delete(webhooks::remove),
        )
        .route("/api/v1/webhooks/{id}/dead", get(webhooks::dead))
        .route("/api/v1/webhooks/{id}/replay", post(webhooks::replay))
        .route_layer(middleware::from_fn_with_state(
            state.access.clone(),
            require_token,
        ));
    dashboard::routes(peers)
        .route("/api/v1/campaigns", get(campaigns::list))
        .route("/api/v1/campaigns/events", get(live::events))
        .route("/api/v1/campaigns/{id}", get(campaigns::one))
        .route("/api/v1/streams", get(streams::streams))
        .route("/api/v1/templates/{name}", get(templates::latest))
        .route(
            "/api/v1/templates/{name}/versions/{version}",
            get(templates::version),
        )
        .route(
            unsubscribe::ROUTE,
            get(unsubscribe::page).post(unsubscribe::choose),
        )
        .merge(guarded)
        .with_state(state)
}
