//! Addresses the transactional messages sent to a user id: each
//! `message.to_user` of `comms:message-users` becomes the email of its
//! message, rendered with the user's name and address and requested on
//! `comms:messages` like a message to an address, or, when there is no
//! such user (never was, or erased), the message's outcome `failed` on
//! `comms:deliveries` ([`contracts::messages`]).
//!
//! Read again after a crash, an entry does the same again: the email's
//! notification id is the message's, so email-service's send ledger sends
//! it once, and campaign-service settles a message once.

use contracts::messages::{email_entry, MessageToUser};
use contracts::{DeliveryStatus, EmailDelivery, EmailRequested, Streams, MESSAGE_CAMPAIGN};
use eventstore::{Delivery, Envelope, Event, HandleError, Publisher};
use templates::message::MessageTemplates;
use templates::Sources;

use crate::store::UserStore;

/// The handler of `comms:message-users`.
#[derive(Clone)]
pub struct Addresser {
    users: UserStore,
    publisher: Publisher,
    streams: Streams,
}

impl Addresser {
    /// Finds users in `users`, publishes with `publisher` on `streams`.
    pub fn new(users: UserStore, publisher: Publisher, streams: Streams) -> Self {
        Self {
            users,
            publisher,
            streams,
        }
    }

    /// Handles one entry of `comms:message-users`.
    pub async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != MessageToUser::TYPE {
            return Ok(());
        }
        let message: MessageToUser = delivery.envelope.decode()?;
        let entry = match self.users.get(message.user_id).await? {
            Some(user) => match render(&message, user.email, user.name) {
                Ok(email) => email_entry(&self.streams, &email).map_err(anyhow::Error::from)?,
                Err(reason) => self.failed(&message, reason)?,
            },
            None => self.failed(&message, format!("no user with id {}", message.user_id))?,
        };
        let (stream, envelope) = entry;
        let envelope = envelope.traced(delivery.envelope.trace.clone());
        self.publisher
            .publish(&stream, &envelope)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(())
    }

    /// The outcome `failed` of `message`, naming `reason`, on
    /// `comms:deliveries`.
    fn failed(&self, message: &MessageToUser, reason: String) -> anyhow::Result<(String, Envelope)> {
        tracing::info!(message = %message.message_id, %reason, "a message to a user id cannot be sent");
        let outcome = EmailDelivery {
            notification_id: message.message_id.clone(),
            campaign_id: MESSAGE_CAMPAIGN.into(),
            status: DeliveryStatus::Failed,
            detail: Some(reason),
            recipient: None,
            tries: None,
        };
        let stream = self.streams.deliveries.for_key(&message.message_id).to_string();
        Ok((stream, Envelope::new(&outcome)?))
    }
}

/// The email of `message` to `email`, the name the request gave or else
/// `name`; why it cannot be rendered otherwise (the templates were checked
/// against the variables at the door, so only a render's bounds remain).
fn render(message: &MessageToUser, email: String, name: String) -> Result<EmailRequested, String> {
    let name = message.name.clone().unwrap_or(name);
    let sources = Sources {
        subject: &message.subject,
        body: &message.body,
        html: message.html.as_deref(),
    };
    let rendered = MessageTemplates::check(&sources, &message.variables)
        .and_then(|templates| templates.render(&name, &email, &message.variables))
        .map_err(|error| format!("the templates do not render: {error}"))?;
    Ok(EmailRequested::message(
        message.message_id.clone(),
        email,
        name,
        rendered.subject,
        rendered.body,
        rendered.html,
    ))
}
