//! What an email's outcome is to the others: the `email.delivery` event on
//! `comms:deliveries`, a hard bounce on `comms:consent`, and the label of
//! a send attempt in `comms_emails_total`.

use contracts::consent::{ConsentChanged, SuppressionReason};
use contracts::{DeliveryStatus, EmailDelivery, EmailRequested};
use eventstore::{Delivery, Envelope, Partitioned};

use crate::mailer::SendError;

/// How a send attempt ended, as the `outcome` label of
/// `comms_emails_total`.
pub fn outcome_label(result: &Result<(), SendError>) -> &'static str {
    match result {
        Ok(()) => "sent",
        Err(SendError::Permanent(_) | SendError::RecipientRefused(_)) => "failed",
        Err(SendError::Transient(_)) => "transient",
        Err(SendError::Throttled(_)) => "throttled",
        Err(SendError::Uncertain(_)) => "uncertain",
        Err(SendError::Connection(_)) => "connection",
        Err(SendError::Relay(_)) => "relay",
    }
}

/// The `email.delivery` event of `email`'s outcome, traced as `delivery`
/// was, and the partition of `deliveries` it goes to.
pub fn outcome_event<'s>(
    deliveries: &'s Partitioned,
    delivery: &Delivery,
    email: EmailRequested,
    status: DeliveryStatus,
    detail: Option<String>,
) -> anyhow::Result<(&'s str, Envelope)> {
    let partition = deliveries.for_key(&email.to_email);
    let id = email.notification_id;
    let event = EmailDelivery {
        notification_id: id.clone(),
        campaign_id: email.campaign_id,
        status,
        detail,
        recipient: Some(email.to_email),
        tries: Some(delivery.deliveries),
    };
    let envelope =
        Envelope::with_id(&event, format!("delivery:{id}"))?.traced(delivery.envelope.trace.clone());
    Ok((partition, envelope))
}

/// The consent change that a hard bounce of `email` (`detail`, the
/// server's reply) makes: its address suppressed as `hard_bounce`.
pub fn hard_bounce(email: &EmailRequested, detail: &str) -> ConsentChanged {
    ConsentChanged {
        user_id: None,
        address: Some(email.to_email.clone()),
        suppress: true,
        reason: SuppressionReason::HardBounce,
        campaign_id: Some(email.campaign_id.clone()),
        detail: Some(detail.to_string()),
        notification_id: Some(email.notification_id.clone()),
        at: servicekit::now_ms(),
    }
}
