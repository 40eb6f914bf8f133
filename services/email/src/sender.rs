//! The handler of `comms:emails`: send each requested email once, and
//! publish its outcome to `comms:deliveries`.
//!
//! Order of effects: take the ledger lease → send (the lease renewed while
//! it runs) → record the outcome in the ledger → publish it → (the worker)
//! ack. A crash after the server's `250 OK` but before the ledger write is
//! one window that can send a duplicate; it carries the same `Message-ID`.
//!
//! The other is an uncertain send: the message went out and no reply came.
//! The server may have taken it, or not; losing an email is worse than a
//! duplicate that receivers can drop by its `Message-ID`, so it is sent
//! again, but not at once: its lease is kept, not released, so the retry
//! comes only after the lease lapses, when a slow server has long answered.
//! A sent outcome that cannot be recorded at once is retried (the lease
//! still renewed) rather than left to a resend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::group_commit::{pipelined, Batcher, PipelinedPublisher};
use contracts::{DeliveryStatus, EmailDelivery, EmailRequested, DELIVERIES};
use eventstore::{Delivery, Envelope, HandleError, Handler, Publisher};

use crate::ledger::{Claim, Final, Lease, Ledger};
use crate::mailer::{Mailer, SendError};

/// Quick retries of a transient failure inside one delivery, before the
/// entry is left for a later redelivery.
const QUICK_RETRIES: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(1_000)];

/// Ledger writes grouped per transaction at most.
const MAX_BATCH: usize = 256;

/// Pauses between attempts to record a sent outcome (about 30 s in all).
const RECORD_RETRIES: [Duration; 6] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(10),
    Duration::from_secs(15),
];

/// The leases of the sends in progress, renewed together.
type InFlight = Arc<Mutex<HashMap<String, i64>>>;

/// Holds a lease in the in-flight set while a send runs.
struct Holding {
    in_flight: InFlight,
    id: String,
}

impl Holding {
    fn new(in_flight: &InFlight, (id, generation): &Lease) -> Self {
        in_flight
            .lock()
            .expect("in-flight leases")
            .insert(id.clone(), *generation);
        Self {
            in_flight: in_flight.clone(),
            id: id.clone(),
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.in_flight.lock().expect("in-flight leases").remove(&self.id);
    }
}

/// The email handler's state. Ledger writes from concurrent handlers are
/// grouped into shared transactions (the ledger is written twice per email).
#[derive(Clone)]
pub struct Sender {
    mailer: Arc<Mailer>,
    ledger: Ledger,
    claims: Batcher<String, Claim>,
    finals: Batcher<Final, bool>,
    publisher: PipelinedPublisher,
    in_flight: InFlight,
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
        let in_flight = InFlight::default();
        tokio::spawn(renew_leases(ledger.clone(), Arc::downgrade(&in_flight)));
        Self {
            mailer: Arc::new(mailer),
            ledger,
            claims,
            finals,
            publisher: pipelined(publisher),
            in_flight,
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
            Claim::Acquired(generation) => {
                let lease = (id.clone(), generation);
                let _holding = Holding::new(&self.in_flight, &lease);
                match self.send_with_retries(&email).await {
                    Ok(()) => {
                        self.record((lease, DeliveryStatus::Sent, None)).await?;
                        (DeliveryStatus::Sent, None)
                    }
                    Err(SendError::Permanent(detail)) => {
                        self.record((lease, DeliveryStatus::Failed, Some(detail.clone())))
                            .await?;
                        (DeliveryStatus::Failed, Some(detail))
                    }
                    Err(SendError::Uncertain(detail)) => {
                        tracing::warn!(notification = %id, %detail, "uncertain send; it is sent again once its lease lapses");
                        return Err(HandleError::Retry(anyhow::anyhow!("sending {id}: {detail}")));
                    }
                    // Nothing about this recipient: never its final outcome.
                    Err(error @ (SendError::Transient(_) | SendError::Connection(_))) => {
                        self.ledger.release(&lease).await?;
                        return Err(HandleError::Retry(anyhow::anyhow!("sending {id}: {error}")));
                    }
                }
            }
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
            recipient: Some(email.to_email),
        };
        let envelope = Envelope::with_id(&event, format!("delivery:{id}"))
            .map_err(anyhow::Error::from)?
            .traced(delivery.envelope.trace.clone());
        self.publisher.submit((DELIVERIES, envelope)).await?;
        Ok(())
    }

    /// Records `outcome` in the ledger, retrying a failing write for a
    /// while (the lease is renewed meanwhile) so that a sent email is not
    /// sent again because one write failed.
    async fn record(&self, outcome: Final) -> Result<(), HandleError> {
        let mut pauses = RECORD_RETRIES.iter();
        loop {
            match self.finals.submit(outcome.clone()).await {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    tracing::warn!(notification = %outcome.0 .0, "lease lost before the outcome was recorded");
                    return Ok(());
                }
                Err(error) => match pauses.next() {
                    Some(pause) => {
                        tracing::warn!(notification = %outcome.0 .0, error = format!("{error:#}"), "recording an outcome failed; retrying");
                        tokio::time::sleep(*pause).await;
                    }
                    None => return Err(HandleError::Retry(error)),
                },
            }
        }
    }

    async fn send_with_retries(&self, email: &EmailRequested) -> Result<(), SendError> {
        let mut pauses = QUICK_RETRIES.iter();
        loop {
            let started = std::time::Instant::now();
            let result = self.mailer.send(email).await;
            metrics::histogram!("comms_smtp_send_seconds").record(started.elapsed().as_secs_f64());
            metrics::counter!("comms_emails_total", "outcome" => outcome_label(&result)).increment(1);
            match result {
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

/// How a send attempt ended, as the `outcome` label of
/// `comms_emails_total`.
fn outcome_label(result: &Result<(), SendError>) -> &'static str {
    match result {
        Ok(()) => "sent",
        Err(SendError::Permanent(_)) => "failed",
        Err(SendError::Transient(_)) => "transient",
        Err(SendError::Uncertain(_)) => "uncertain",
        Err(SendError::Connection(_)) => "connection",
    }
}

/// The worker runs [`Sender::handle`] on each request; when it gives an
/// entry up (its retry budget spent, or it crashed the process too often)
/// the request is `dead_lettered`, so its notification and campaign are
/// final. The
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
        metrics::counter!("comms_emails_total", "outcome" => "dead_lettered").increment(1);
        self.publish(&delivery, email, DeliveryStatus::DeadLettered, Some(detail))
            .await
    }
}

/// Renews the leases of the sends in progress three times per lease
/// duration, in one statement, until the sender is dropped.
async fn renew_leases(ledger: Ledger, in_flight: Weak<Mutex<HashMap<String, i64>>>) {
    let mut ticker = tokio::time::interval(ledger.lease_duration() / 3);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(in_flight) = in_flight.upgrade() else {
            return;
        };
        let leases: Vec<Lease> = in_flight
            .lock()
            .expect("in-flight leases")
            .iter()
            .map(|(id, generation)| (id.clone(), *generation))
            .collect();
        drop(in_flight);
        match ledger.renew_all(&leases).await {
            Ok(lost) if lost.is_empty() => {}
            Ok(lost) => tracing::warn!(lost = lost.len(), "leases lost while their sends ran"),
            Err(error) => tracing::warn!(error = format!("{error:#}"), "renewing send leases failed"),
        }
    }
}
