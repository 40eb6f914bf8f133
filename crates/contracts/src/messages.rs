//! Transactional messages (`POST /api/v1/messages`): one email to one
//! recipient, now, on a lane of its own.
//!
//! ```text
//! campaign-service ─ email.requested ─► comms:messages ─► email-service          (to an address)
//! campaign-service ─ message.to_user ─► comms:message-users ─► user-service      (to a user id)
//! user-service ─ email.requested ─► comms:messages ─► email-service              (the user found)
//! user-service ─ email.delivery (failed) ─► comms:deliveries ─► campaign-service (no such user)
//! ```
//!
//! A message to an address is rendered by campaign-service. One to a user
//! id travels unrendered to user-service, which owns the users: it renders
//! it with the user's name and address and requests its email, or settles
//! it `failed` when there is no such user. Either way the email's
//! notification id is the message's id, so email-service's send ledger
//! sends it once however often it is requested.

use std::collections::BTreeMap;

use eventstore::{Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::{EmailRequested, Streams, MESSAGE_CAMPAIGN};

/// Messages addressed to a user id, read by user-service.
pub const MESSAGE_USERS: &str = "comms:message-users";

/// A message to the user `user_id`, its templates as the request gave them
/// (checked at the door against its variables).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageToUser {
    /// The message's id, its email's notification id.
    pub message_id: String,
    /// The user it is for.
    pub user_id: i64,
    /// The display name the request gave (absent: the user's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The subject template.
    pub subject: String,
    /// The text body template.
    pub body: String,
    /// The HTML body template, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The message's own variables beside `name` and `email`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

impl Event for MessageToUser {
    const TYPE: &'static str = "message.to_user";
    const VERSION: u32 = 1;
}

impl EmailRequested {
    /// The email of message `id` to `to_email` (`to_name`), with its
    /// rendered parts: no unsubscribe link (a message is not marketing),
    /// not a test, no campaign's rate.
    pub fn message(
        id: String,
        to_email: String,
        to_name: String,
        subject: String,
        body: String,
        html: Option<String>,
    ) -> Self {
        Self {
            notification_id: id,
            campaign_id: MESSAGE_CAMPAIGN.into(),
            to_email,
            to_name,
            subject,
            body,
            unsubscribe_url: None,
            unsubscribe_mailto: None,
            html,
            test: false,
            rate_per_s: None,
        }
    }
}

/// The entry of message email `email` on `comms:messages`: its stream and
/// its envelope, whose id is the message's.
pub fn email_entry(
    streams: &Streams,
    email: &EmailRequested,
) -> Result<(String, Envelope), serde_json::Error> {
    let stream = streams.messages.for_key(&email.to_email).to_string();
    Ok((stream, Envelope::with_id(email, email.notification_id.clone())?))
}

/// The entry of `message` on `comms:message-users`, whose id is the
/// message's.
pub fn to_user_entry(
    streams: &Streams,
    message: &MessageToUser,
) -> Result<(String, Envelope), serde_json::Error> {
    let stream = streams.message_users.name().to_string();
    Ok((stream, Envelope::with_id(message, message.message_id.clone())?))
}
