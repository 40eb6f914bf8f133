//! The dashboard's live channel: `GET /api/v1/campaigns/events`, Server-Sent
//! Events that carry changes, not lists. Every half second it looks at the
//! latest campaigns and the stream figures and sends:
//! - `campaign`: one campaign's JSON, for each campaign new or changed since
//!   this client's last event (its progress moved, it completed);
//! - `streams`: the figures of every stream, when any of them changed.
//!
//! The first tick sends everything, so a page needs no other request. The
//! stream ends when the client leaves or the service shuts down (a
//! graceful shutdown waits for open responses).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use utoipa::openapi::{RefOr, Schema};

use crate::state::AppState;

/// How often a client's view is compared with the store.
const TICK: Duration = Duration::from_millis(500);

/// Campaigns watched: the latest ones, as the dashboard lists them.
const WATCHED: i64 = 50;

/// What one client has been sent.
struct Client {
    state: AppState,
    campaigns: HashMap<String, String>,
    streams: String,
    first: bool,
}

impl Client {
    /// The events of the next tick; `None` once the service shuts down.
    async fn next_events(&mut self) -> Option<Vec<Event>> {
        if !self.first {
            tokio::select! {
                () = self.state.shutdown.cancelled() => return None,
                () = tokio::time::sleep(TICK) => {}
            }
        }
        self.first = false;
        let mut events = Vec::new();
        match self.state.tracker.store().list(WATCHED).await {
            Ok(campaigns) => {
                for campaign in campaigns {
                    let json = serde_json::to_string(&campaign).expect("a campaign serializes");
                    if self.campaigns.get(&campaign.id) != Some(&json) {
                        events.push(Event::default().event("campaign").data(&json));
                        self.campaigns.insert(campaign.id, json);
                    }
                }
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), "live campaigns: cannot list"),
        }
        match self.state.stream_stats().await {
            Ok(streams) => {
                let json = serde_json::to_string(&streams).expect("stream figures serialize");
                if json != self.streams {
                    events.push(Event::default().event("streams").data(&json));
                    self.streams = json;
                }
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), "live streams: cannot read"),
        }
        Some(events)
    }
}

/// The schema of one event of the channel, as OpenAPI 3.1 describes an
/// event stream (each event an object of its fields): `event` names it,
/// `data` is JSON of the schema that name gives.
pub(super) struct LiveEvent;

impl utoipa::PartialSchema for LiveEvent {
    fn schema() -> RefOr<Schema> {
        let event = |name: &str, data: serde_json::Value| {
            serde_json::json!({
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string", "enum": [name]},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": data
                    }
                }
            })
        };
        let schema = serde_json::json!({
            "oneOf": [
                event("campaign", serde_json::json!({"$ref": "#/components/schemas/Campaign"})),
                event("streams", serde_json::json!({
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/StreamStats"}
                }))
            ]
        });
        serde_json::from_value(schema).expect("the live event's schema is a schema")
    }
}

impl utoipa::ToSchema for LiveEvent {}

/// `GET /api/v1/campaigns/events`: Server-Sent Events, `campaign` (one
/// campaign's JSON, each time it changes) and `streams` (every stream's
/// figures, when they change), every 0.5 s, until the client leaves.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/events",
    tag = "campaigns",
    responses((
        status = 200,
        description = "A live channel: `event: campaign` with a Campaign, `event: streams` with every StreamStats",
        body = LiveEvent,
        content_type = "text/event-stream"
    ))
)]
pub async fn events(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let client = Client {
        state,
        campaigns: HashMap::new(),
        streams: String::new(),
        first: true,
    };
    let ticks = futures::stream::unfold(client, |mut client| async move {
        let events = client.next_events().await?;
        Some((futures::stream::iter(events.into_iter().map(Ok)), client))
    });
    Sse::new(ticks.flatten()).keep_alive(KeepAlive::default())
}
