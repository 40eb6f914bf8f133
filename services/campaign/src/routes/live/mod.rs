//! The dashboard's live channel: `GET /api/v1/campaigns/events`, Server-Sent
//! Events that carry changes, not lists. Every half second it looks at the
//! latest campaigns and the stream figures (one read for every client, see
//! [`feed`]) and sends:
//! - `campaign`: one campaign's JSON, for each campaign new or changed since
//!   this client's last event (its progress moved, it completed);
//! - `streams`: the figures of every stream, when any of them changed.
//!
//! The first tick sends everything, so a page needs no other request. The
//! stream ends when the client leaves or the service shuts down (a
//! graceful shutdown waits for open responses).

mod feed;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use utoipa::openapi::{RefOr, Schema};

pub use feed::LiveFeed;
use feed::{Receiver, Snapshot};

use crate::state::AppState;

/// One client of the channel: all it keeps of its own is the snapshot it
/// was last shown, which the other clients share.
struct Client {
    snapshots: Receiver,
    shown: Option<Arc<Snapshot>>,
    shutdown: CancellationToken,
}

impl Client {
    /// The events of the next snapshot that changes what this client was
    /// shown; `None` once the service shuts down.
    async fn next_events(&mut self) -> Option<Vec<Event>> {
        loop {
            let newest = self.snapshots.borrow_and_update().clone();
            if let Some(newest) = newest {
                let events = changes(self.shown.as_deref(), &newest);
                self.shown = Some(newest);
                if !events.is_empty() {
                    return Some(events);
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                changed = self.snapshots.changed() => changed.ok()?,
            }
        }
    }
}

/// The events that take a client from `shown` to `newest`: each campaign
/// new or changed, and the streams' figures if they changed.
fn changes(shown: Option<&Snapshot>, newest: &Snapshot) -> Vec<Event> {
    let mut events = Vec::new();
    for (id, json) in &newest.campaigns {
        if shown.and_then(|shown| shown.campaign(id)) != Some(json.as_str()) {
            events.push(Event::default().event("campaign").data(json));
        }
    }
    if let Some(streams) = &newest.streams {
        if shown.and_then(|shown| shown.streams.as_ref()) != Some(streams) {
            events.push(Event::default().event("streams").data(streams));
        }
    }
    if let Some(limits) = &newest.limits {
        if shown.and_then(|shown| shown.limits.as_ref()) != Some(limits) {
            events.push(Event::default().event("limits").data(limits));
        }
    }
    if let Some(relays) = &newest.relays {
        if shown.and_then(|shown| shown.relays.as_ref()) != Some(relays) {
            events.push(Event::default().event("relays").data(relays));
        }
    }
    events
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
                })),
                event("limits", serde_json::json!({"$ref": "#/components/schemas/SendFigures"})),
                event("relays", serde_json::json!({
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/RelayFigures"}
                }))
            ]
        });
        serde_json::from_value(schema).expect("the live event's schema is a schema")
    }
}

impl utoipa::ToSchema for LiveEvent {}

/// `GET /api/v1/campaigns/events`: Server-Sent Events, `campaign` (one
/// campaign's JSON, each time it changes), `streams` (every stream's
/// figures, when they change) and `limits` (the send limits' figures, when
/// they change, once a send was limited), every 0.5 s, until the client
/// leaves.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/events",
    tag = "campaigns",
    responses((
        status = 200,
        description = "A live channel: `event: campaign` with a Campaign, `event: streams` with every StreamStats, `event: limits` with the SendFigures, `event: relays` with every RelayFigures",
        body = LiveEvent,
        content_type = "text/event-stream"
    ))
)]
pub async fn events(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let client = Client {
        snapshots: state.live.subscribe(),
        shown: None,
        shutdown: state.shutdown.clone(),
    };
    let ticks = futures::stream::unfold(client, |mut client| async move {
        let events = client.next_events().await?;
        Some((futures::stream::iter(events.into_iter().map(Ok)), client))
    });
    Sse::new(ticks.flatten()).keep_alive(KeepAlive::default())
}
