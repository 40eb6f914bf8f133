//! The three streams notification-service consumes.
//!
//! - `comms:campaigns`: keep the templates of each `campaign.created`
//!   (the only place they travel).
//! - `comms:notifications`: record the notification (batched with other
//!   handlers' records into one transaction), render it with its campaign's
//!   templates, request its email. A notification already final is not
//!   requested again. A request whose campaign's templates are not known
//!   yet (its `campaign.created` not yet read here) is retried later.
//!   A request the worker gives up on (its retry budget spent, say)
//!   becomes a `dead_lettered` outcome on `comms:deliveries`, so that its
//!   campaign still completes and shows it.
//! - `comms:deliveries`: move the record to its final status, once; a
//!   redelivered outcome changes nothing.
//!
//! Rendering runs template code: it is bounded in fuel and output (the
//! `templates` crate) and runs on the blocking pool, so a costly template
//! never stalls the other handlers or `/health`. A template that fails for
//! a recipient fails that notification, with the reason.

use contracts::{
    CampaignCreated, DeliveryStatus, EmailDelivery, EmailRequested, NotificationRequested, DELIVERIES, EMAILS,
};
use eventstore::{Delivery, Envelope, Event, HandleError, Handler, Publisher};
use servicekit::batch::{pipelined, Batcher, PipelinedPublisher};

use crate::store::NotificationStore;
use crate::templates::TemplateCache;

/// Records written per transaction at most.
const MAX_BATCH: usize = 512;

/// A final outcome to record: notification id, status, detail.
type Outcome = (String, DeliveryStatus, Option<String>);

/// Shared state of the handlers.
#[derive(Clone)]
pub struct Notifier {
    store: NotificationStore,
    templates: TemplateCache,
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
        let finishing = store.clone();
        let finisher = Batcher::spawn(MAX_BATCH, move |outcomes: Vec<Outcome>| {
            let store = finishing.clone();
            async move { store.finish(&outcomes).await }
        });
        Self {
            templates: TemplateCache::new(store.clone()),
            store,
            publisher: pipelined(publisher),
            recorder,
            finisher,
        }
    }

    /// Handles one entry of `comms:campaigns`: keeps the templates of
    /// `campaign.created`, ignores the stream's other event types.
    pub async fn on_campaign_event(&self, delivery: Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != CampaignCreated::TYPE {
            return Ok(());
        }
        let campaign: CampaignCreated = delivery.envelope.decode()?;
        self.store
            .save_templates(&campaign.campaign_id, &campaign.subject, &campaign.body)
            .await?;
        Ok(())
    }

    /// Handles one `notification.requested`.
    pub async fn on_request(&self, delivery: Delivery) -> Result<(), HandleError> {
        let request: NotificationRequested = delivery.envelope.decode()?;
        let pending = self.recorder.submit(request.clone()).await?;
        if !pending {
            return Ok(());
        }
        let templates = self.templates.get(&request.campaign_id).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "the templates of campaign {} are not known yet",
                request.campaign_id
            )
        })?;
        let (name, email) = (request.name.clone(), request.email.clone());
        let rendered = tokio::task::spawn_blocking(move || match templates.as_ref() {
            Ok(templates) => templates.render(&name, &email),
            Err(error) => Err(error.clone()),
        })
        .await
        .map_err(anyhow::Error::from)?;
        let trace = delivery.envelope.trace.clone();
        let (stream, envelope) = match rendered {
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
                    recipient: Some(request.email),
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

/// The handler of `comms:notifications`: [`Notifier::on_request`], and a
/// `dead_lettered` outcome for each request the worker gives up on.
pub struct RequestHandler(pub Notifier);

impl Handler for RequestHandler {
    fn handle(
        &self,
        delivery: Delivery,
    ) -> impl std::future::Future<Output = Result<(), HandleError>> + Send {
        self.0.on_request(delivery)
    }

    async fn give_up(&self, delivery: Delivery, reason: &str) -> Result<(), HandleError> {
        let request: NotificationRequested = delivery.envelope.decode()?;
        let outcome = EmailDelivery {
            notification_id: request.notification_id.clone(),
            campaign_id: request.campaign_id,
            status: DeliveryStatus::DeadLettered,
            detail: Some(format!("dead-lettered: {reason}")),
            recipient: Some(request.email),
        };
        let envelope = Envelope::with_id(&outcome, format!("delivery:{}", request.notification_id))
            .map_err(anyhow::Error::from)?
            .traced(delivery.envelope.trace.clone());
        self.0.publisher.submit((DELIVERIES, envelope)).await?;
        Ok(())
    }
}
