//! The handler of `comms:emails`: send each requested email once, and
//! publish its outcome to `comms:deliveries`.
//!
//! Order of effects: take the ledger lease → send → record the outcome in
//! the ledger → publish it → (the worker) ack. A crash after the server's
//! `250 OK` but before the ledger write is the one window that can send a
//! duplicate; it carries the same `Message-ID`.

use std::sync::Arc;
use std::time::Duration;

use contracts::{DeliveryStatus, EmailDelivery, EmailRequested, DELIVERIES};
use eventstore::{Delivery, Envelope, HandleError, Handler, Publisher};
use servicekit::batch::{pipelined, Batcher, PipelinedPublisher};

use crate::ledger::{Claim, Final, Ledger};
use crate::mailer::{Mailer, SendError};

/// Quick retries of a transient failure inside one delivery, before the
/// entry is left for a later redelivery.
const QUICK_RETRIES: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(1_000)];

/// Ledger writes grouped per transaction at most.
const MAX_BATCH: usize = 256;

/// The email handler's state. Ledger writes from concurrent handlers are
/// grouped into shared transactions (the ledger is written twice per email).
#[derive(Clone)]
pub struct Sender {
    mailer: Arc<Mailer>,
    ledger: Ledger,
    claims: Batcher<String, Claim>,
    finals: Batcher<Final, ()>,
    publisher: PipelinedPublisher,
}

impl Sender {
    /// A handler sending with `mailer`, keeping `ledger`, publishing
    /// outcomes with `publisher`. A transient failure is retried by the
    /// worker within its retry budget; past it, [`Handler::give_up`]
    /// publishes the final `failed`.
    pub fn new(mailer: Mailer, ledger: Ledger, publisher: Publisher) -> Self {
        let claiming = ledger.clone();
        let claims = Batcher::spawn(MAX_BATCH, move |ids: Vec<String>| {
            let ledger = claiming.clone();
            async move { ledger.claim_all(&ids).await }
        });
        let finishing = ledger.clone();
        let finals = Batcher::spawn(MAX_BATCH, move |outcomes: Vec<Final>| {
            let ledger = finishing.clone();
            async move { ledger.finish_all(&outcomes).await }
        });
        Self {
            mailer: Arc::new(mailer),
            ledger,
            claims,
            finals,
            publisher: pipelined(publisher),
        }
    }

    /// Handles one `email.requested`.
    pub async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        let email: EmailRequested = delivery.envelope.decode()?;
        let id = email.notification_id.clone();
        let outcome = match self.claims.submit(id.clone()).await? {
            Claim::Sent => (DeliveryStatus::Sent, None),
            Claim::Failed(detail) => (DeliveryStatus::Failed, Some(detail)),
            Claim::Busy => {
                return Err(HandleError::Retry(anyhow::anyhow!(
                    "{id} is being sent by another instance"
                )))
            }
            Claim::Acquired => match self.send_with_retries(&email).await {
                Ok(()) => {
                    self.finals
                        .submit((id.clone(), DeliveryStatus::Sent, None))
                        .await?;
                    (DeliveryStatus::Sent, None)
                }
                Err(SendError::Permanent(detail)) => {
                    self.finals
                        .submit((id.clone(), DeliveryStatus::Failed, Some(detail.clone())))
                        .await?;
                    (DeliveryStatus::Failed, Some(detail))
                }
                Err(SendError::Transient(detail)) => {
                    self.ledger.release(&id).await?;
                    return Err(HandleError::Retry(anyhow::anyhow!("sending {id}: {detail}")));
                }
            },
        };
        let (status, detail) = outcome;
        self.publish(&delivery, email, status, detail).await
    }

    /// Publishes the outcome of `email`, which `delivery` carried.
    async fn publish(
        &self,
        delivery: &Delivery,
        email: EmailRequested,
        status: DeliveryStatus,
        detail: Option<String>,
    ) -> Result<(), HandleError> {
        let id = email.notification_id;
        let event = EmailDelivery {
            notification_id: id.clone(),
            campaign_id: email.campaign_id,
            status,
            detail,
        };
        let envelope = Envelope::with_id(&event, format!("delivery:{id}"))
            .map_err(anyhow::Error::from)?
            .traced(delivery.envelope.trace.clone());
        self.publisher.submit((DELIVERIES, envelope)).await?;
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

/// The worker runs [`Sender::handle`] on each request; when it gives an
/// entry up (its retry budget spent, or it crashed the process too often)
/// the request is `failed`, so its notification and campaign are final. The
/// ledger is left as it is: a replayed dead letter may still send once.
impl Handler for Sender {
    fn handle(
        &self,
        delivery: Delivery,
    ) -> impl std::future::Future<Output = Result<(), HandleError>> + Send {
        Sender::handle(self, delivery)
    }

    async fn give_up(&self, delivery: Delivery, reason: &str) -> Result<(), HandleError> {
        let email: EmailRequested = delivery.envelope.decode()?;
        let detail = format!("dead-lettered: {reason}");
        self.publish(&delivery, email, DeliveryStatus::Failed, Some(detail))
            .await
    }
}
