//! What a transactional message publishes ([`Outgoing`]), and publishing
//! it again when its entry may have been lost: stored `queued`
//! ([`crate::store::Stored`]) but whose `email.requested` never reached
//! `comms:messages` (or, to a user id, whose `message.to_user` never
//! reached `comms:message-users`), because the service
//! died between the two, or Redis lost its last second of writes, or was
//! unreachable when the request came (answered 503).
//!
//! A message still `queued` [`AFTER`] after its last publication is
//! published again, once per cluster every [`EVERY`]. One still waiting
//! (email-service down, or sending slowly) is published twice: its id is
//! its email's notification id, so email-service's send ledger sends it
//! once.

use std::time::Duration;

use contracts::messages::{email_entry, to_user_entry, MessageToUser};
use contracts::{EmailRequested, Streams};
use eventstore::{Envelope, Publisher};
use serde::{Deserialize, Serialize};

use crate::store::CampaignStore;

/// What a message publishes, and keeps to publish again: its email, when
/// it names an address, or, when it names a user, the message for
/// user-service to address ([`contracts::messages`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outgoing {
    /// The rendered email, for `comms:messages`.
    Email(EmailRequested),
    /// The message to a user id, for `comms:message-users`.
    ToUser(MessageToUser),
}

impl Outgoing {
    /// The message's id.
    pub fn id(&self) -> &str {
        match self {
            Outgoing::Email(email) => &email.notification_id,
            Outgoing::ToUser(message) => &message.message_id,
        }
    }

    /// Whom it is for, as the message shows it: the address, or
    /// `user <id>` until the outcome brings the user's address.
    pub fn recipient(&self) -> String {
        match self {
            Outgoing::Email(email) => email.to_email.clone(),
            Outgoing::ToUser(message) => format!("user {}", message.user_id),
        }
    }

    /// The subject: rendered, or the template for a user.
    pub fn subject(&self) -> &str {
        match self {
            Outgoing::Email(email) => &email.subject,
            Outgoing::ToUser(message) => &message.subject,
        }
    }

    /// Its entry: its stream and envelope, whose id is the message's.
    pub fn entry(&self, streams: &Streams) -> Result<(String, Envelope), serde_json::Error> {
        match self {
            Outgoing::Email(email) => email_entry(streams, email),
            Outgoing::ToUser(message) => to_user_entry(streams, message),
        }
    }
}

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
        let outgoing: Outgoing = match serde_json::from_str(json) {
            Ok(outgoing) => outgoing,
            Err(error) => {
                tracing::error!(%error, "a stored message's email does not parse");
                continue;
            }
        };
        match outgoing.entry(streams) {
            Ok(event) => events.push(event),
            Err(error) => {
                tracing::error!(%error, message = %outgoing.id(), "cannot encode a message's email");
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
