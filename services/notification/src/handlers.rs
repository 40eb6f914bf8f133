//! The two streams notification-service consumes.
//!
//! - `comms:notifications`: record the notification (batched with other
//!   handlers' records into one transaction), render it, request its email.
//!   A notification already final is not requested again.
//! - `comms:deliveries`: move the record to its final status, once; a
//!   redelivered outcome changes nothing.

use contracts::{DeliveryStatus, EmailDelivery, EmailRequested, NotificationRequested, DELIVERIES, EMAILS};
use eventstore::{Delivery, Envelope, HandleError, Publisher};
use servicekit::batch::{pipelined, Batcher, PipelinedPublisher};

use crate::render::render;
use crate::store::NotificationStore;

/// Records written per transaction at most.
const MAX_BATCH: usize = 512;

/// A final outcome to record: notification id, status, detail.
type Outcome = (String, DeliveryStatus, Option<String>);

/// Shared state of both handlers.
#[derive(Clone)]
pub struct Notifier {
    publisher: PipelinedPublisher,
    recorder: Batcher<NotificationRequested, bool>,
    finisher: Batcher<Outcome, ()>,
}

impl Notifier {
    /// Handlers writing to `store` and publishing with `publisher`.
    pub fn new(store: NotificationStore, publisher: Publisher) -> Self {
        let recording = store.clone();
        let recorder = Batcher::spawn(MAX_BATCH, move |requests: Vec<NotificationRequested>| {
            let store = recording.clone();
            async move { store.record(&requests).await }
        });
        let finisher = Batcher::spawn(MAX_BATCH, move |outcomes: Vec<Outcome>| {
            let store = store.clone();
            async move { store.finish(&outcomes).await }
        });
        Self {
            publisher: pipelined(publisher),
            recorder,
            finisher,
        }
    }

    /// Handles one `notification.requested`.
    pub async fn on_request(&self, delivery: Delivery) -> Result<(), HandleError> {
        let request: NotificationRequested = delivery.envelope.decode()?;
        let pending = self.recorder.submit(request.clone()).await?;
        if !pending {
            return Ok(());
        }
        let trace = delivery.envelope.trace.clone();
        let (stream, envelope) = match render(&request.subject, &request.body, &request.name, &request.email)
        {
            Ok(rendered) => {
                let email = EmailRequested {
                    notification_id: request.notification_id.clone(),
                    campaign_id: request.campaign_id,
                    to_email: request.email,
                    to_name: request.name,
                    subject: rendered.subject,
                    body: rendered.body,
                };
                (EMAILS, Envelope::with_id(&email, request.notification_id))
            }
            Err(error) => {
                let failure = EmailDelivery {
                    notification_id: request.notification_id.clone(),
                    campaign_id: request.campaign_id,
                    status: DeliveryStatus::Failed,
                    detail: Some(format!("cannot render the template: {error}")),
                };
                (DELIVERIES, Envelope::with_id(&failure, request.notification_id))
            }
        };
        let envelope = envelope.map_err(anyhow::Error::from)?.traced(trace);
        self.publisher.submit((stream, envelope)).await?;
        Ok(())
    }

    /// Handles one `email.delivery`.
    pub async fn on_delivery(&self, delivery: Delivery) -> Result<(), HandleError> {
        let outcome: EmailDelivery = delivery.envelope.decode()?;
        self.finisher
            .submit((outcome.notification_id, outcome.status, outcome.detail))
            .await?;
        Ok(())
    }
}
