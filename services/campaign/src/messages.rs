//! Publishing again the transactional messages whose entries may have
//! been lost: stored `queued` ([`crate::store::Stored`]) but whose
//! `email.requested` never reached `comms:messages`, because the service
//! died between the two, or Redis lost its last second of writes, or was
//! unreachable when the request came (answered 503).
//!
//! A message still `queued` [`AFTER`] after its last publication is
//! published again, once per cluster every [`EVERY`]. One still waiting
//! (email-service down, or sending slowly) is published twice: its id is
//! its email's notification id, so email-service's send ledger sends it
//! once.

use std::time::Duration;

use contracts::{EmailRequested, Streams};
use eventstore::{Envelope, Publisher};

use crate::store::CampaignStore;

/// How often the cluster looks for messages to publish again.
pub const EVERY: Duration = Duration::from_secs(10);

/// How long after its last publication a message still `queued` is
/// published again.
pub const AFTER: Duration = Duration::from_secs(60);

/// Most messages published again in one round.
const PER_ROUND: i64 = 500;

/// One round: publishes again the messages still `queued` longer than
/// `after` ([`AFTER`]) since their last publication.
pub async fn reannounce(store: &CampaignStore, publisher: &Publisher, streams: &Streams, after: Duration) {
    let after = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    let emails = match store.messages_to_announce(after, PER_ROUND).await {
        Ok(emails) => emails,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot list the messages to publish again"
            );
            return;
        }
    };
    let mut events = Vec::with_capacity(emails.len());
    for json in &emails {
        let email: EmailRequested = match serde_json::from_str(json) {
            Ok(email) => email,
            Err(error) => {
                tracing::error!(%error, "a stored message's email does not parse");
                continue;
            }
        };
        match entry(streams, &email) {
            Ok(event) => events.push(event),
            Err(error) => {
                tracing::error!(%error, message = %email.notification_id, "cannot encode a message's email");
            }
        }
    }
    if events.is_empty() {
        return;
    }
    match publisher.publish_many(&events).await {
        Ok(_) => tracing::info!(messages = events.len(), "messages published again"),
        Err(error) => tracing::warn!(error = format!("{error:#}"), "publishing messages again failed"),
    }
}

/// The entry of message `email` on `comms:messages`: its stream and its
/// envelope, whose id is the message's.
pub fn entry(streams: &Streams, email: &EmailRequested) -> Result<(String, Envelope), serde_json::Error> {
    let stream = streams.messages.for_key(&email.to_email).to_string();
    Ok((stream, Envelope::with_id(email, email.notification_id.clone())?))
}
