//! The handler of `comms:emails`: send each requested email once, and
//! publish its outcome to `comms:deliveries`.
//!
//! Order of effects: take the ledger lease → send → record the outcome in
//! the ledger → publish it → (the worker) ack. A crash after the server's
//! `250 OK` but before the ledger write is the one window that can send a
//! duplicate; it carries the same `Message-ID`.

use std::time::Duration;

use contracts::{DeliveryStatus, EmailDelivery, EmailRequested, DELIVERIES};
use eventstore::{Delivery, Envelope, HandleError, Publisher};

use crate::ledger::{Claim, Ledger};
use crate::mailer::{Mailer, SendError};

/// Quick retries of a transient failure inside one delivery, before the
/// entry is left for a later redelivery.
const QUICK_RETRIES: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(1_000)];

/// The email handler's state.
#[derive(Clone)]
pub struct Sender {
    /// SMTP client.
    pub mailer: Mailer,
    /// Send ledger.
    pub ledger: Ledger,
    /// Where outcomes go.
    pub publisher: Publisher,
    /// Deliveries after which a transient failure becomes final.
    pub max_deliveries: u64,
}

impl Sender {
    /// Handles one `email.requested`.
    pub async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        let email: EmailRequested = delivery.envelope.decode()?;
        let id = email.notification_id.clone();
        let outcome = match self.ledger.claim(&id).await? {
            Claim::Sent => (DeliveryStatus::Sent, None),
            Claim::Failed(detail) => (DeliveryStatus::Failed, Some(detail)),
            Claim::Busy => {
                return Err(HandleError::Retry(anyhow::anyhow!(
                    "{id} is being sent by another instance"
                )))
            }
            Claim::Acquired => match self.send_with_retries(&email).await {
                Ok(()) => {
                    self.ledger.finish(&id, "sent", None).await?;
                    (DeliveryStatus::Sent, None)
                }
                Err(SendError::Permanent(detail)) => {
                    self.ledger.finish(&id, "failed", Some(&detail)).await?;
                    (DeliveryStatus::Failed, Some(detail))
                }
                Err(SendError::Transient(detail)) if delivery.deliveries >= self.max_deliveries => {
                    let detail = format!("gave up after {} deliveries: {detail}", delivery.deliveries);
                    self.ledger.finish(&id, "failed", Some(&detail)).await?;
                    (DeliveryStatus::Failed, Some(detail))
                }
                Err(SendError::Transient(detail)) => {
                    self.ledger.release(&id).await?;
                    return Err(HandleError::Retry(anyhow::anyhow!("sending {id}: {detail}")));
                }
            },
        };
        let (status, detail) = outcome;
        let event = EmailDelivery {
            notification_id: id.clone(),
            campaign_id: email.campaign_id,
            status,
            detail,
        };
        let envelope = Envelope::with_id(&event, format!("delivery:{id}"))
            .map_err(anyhow::Error::from)?
            .traced(delivery.envelope.trace.clone());
        self.publisher
            .publish(DELIVERIES, &envelope)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(())
    }

    async fn send_with_retries(&self, email: &EmailRequested) -> Result<(), SendError> {
        let mut pauses = QUICK_RETRIES.iter();
        loop {
            match self.mailer.send(email).await {
                Err(SendError::Transient(detail)) => match pauses.next() {
                    Some(pause) => {
                        tracing::debug!(notification = %email.notification_id, %detail, "transient SMTP failure; retrying");
                        tokio::time::sleep(*pause).await;
                    }
                    None => return Err(SendError::Transient(detail)),
                },
                result => return result,
            }
        }
    }
}
