//! The streams notification-service consumes (`comms:erasures` aside,
//! handled by `servicekit::erasure`).
//!
//! - `comms:campaigns`: keep the templates of each `campaign.created`
//!   (the only place they travel).
//! - `comms:notifications`: record the notifications of one read in one
//!   transaction, render each with its campaign's templates, request their
//!   emails in one pipeline. A notification already final is not
//!   requested again. A request for a suppressed recipient is not
//!   rendered: its `suppressed` outcome goes straight to
//!   `comms:deliveries`. A request whose campaign's templates are not known
//!   yet (its `campaign.created` not yet read here) is retried later.
//!   A request whose campaign is paused is held back (`held`, in the
//!   records, not in Redis: [`crate::held`] requests it again on resume);
//!   one whose campaign is cancelled gets its `cancelled` outcome at once.
//!   A request the worker gives up on (its retry budget spent, say)
//!   becomes a `dead_lettered` outcome on `comms:deliveries`, so that its
//!   campaign still completes and shows it.
//! - `comms:consent`: note on a sent notification's record that its
//!   email bounced, or was reported as spam, after the send.
//! - `comms:deliveries`: move the records of one read to their final
//!   statuses in one transaction, each once; a redelivered outcome changes
//!   nothing.
//!
//! Rendering runs template code: it is bounded in fuel and output (the
//! `templates` crate) and runs on the blocking pool, so a costly template
//! never stalls the other handlers or `/health`. A template that fails for
//! a recipient fails that notification, with the reason. Each email
//! carries its recipient's unsubscribe link ([`crate::links`]).

use std::collections::HashMap;
use std::sync::Arc;

use contracts::consent::ConsentChanged;
use contracts::control::{Control, ControlBoard};
use contracts::{
    CampaignCreated, DeliveryStatus, EmailDelivery, EmailRequested, NotificationRequested, Streams,
};
use eventstore::{Delivery, Envelope, Event, HandleError, Handler, Publisher};
use servicekit::batch::{decode_each, decode_then, Answers};

use crate::links::UnsubscribeLinks;
use crate::store::{NotificationStore, Recorded, StoredTemplates};
use crate::templates::{Compiled, TemplateCache};

/// Shared state of the handlers.
#[derive(Clone)]
pub struct Notifier {
    store: NotificationStore,
    templates: TemplateCache,
    publisher: Publisher,
    /// Where emails and failures go, and their partitions.
    streams: Arc<Streams>,
    /// Each email's unsubscribe link.
    links: Arc<UnsubscribeLinks>,
    /// Which campaigns are paused or cancelled.
    board: ControlBoard,
}

impl Notifier {
    /// Handlers writing to `store` and publishing to `streams` with
    /// `publisher`, giving each email its link from `links`.
    pub fn new(
        store: NotificationStore,
        publisher: Publisher,
        streams: Streams,
        links: UnsubscribeLinks,
        board: ControlBoard,
    ) -> Self {
        Self {
            board,
            templates: TemplateCache::new(store.clone()),
            store,
            publisher,
            streams: Arc::new(streams),
            links: Arc::new(links),
        }
    }

    /// Handles one entry of `comms:campaigns`: keeps the templates of
    /// `campaign.created`, ignores the stream's other event types.
    pub async fn on_campaign_event(&self, delivery: Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != CampaignCreated::TYPE {
            return Ok(());
        }
        let campaign: CampaignCreated = delivery.envelope.decode()?;
        let templates = StoredTemplates {
            subject: campaign.subject,
            body: campaign.body,
            html: campaign.html,
            rate_per_s: campaign.rate_per_s,
        };
        self.store
            .save_templates(&campaign.campaign_id, &templates)
            .await?;
        Ok(())
    }

    /// Handles the `notification.requested` entries of one read: records
    /// them in one transaction, renders the pending ones together on the
    /// blocking pool, and publishes their email requests (or their
    /// failures) in one pipeline. Only a request seen for the first time
    /// is held or settled `cancelled` here, by its campaign's control: one
    /// seen before may have had its email requested already, so it is
    /// requested again and email-service settles it by its ledger (sent
    /// stays sent).
    pub async fn on_requests(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandleError>> {
        let mut answers = Answers::new(deliveries.len());
        let (indexes, requests): (Vec<usize>, Vec<NotificationRequested>) =
            decode_each(&deliveries, &mut answers).into_iter().unzip();
        if requests.is_empty() {
            return answers.into_results();
        }
        let recorded = match self.store.record(&requests).await {
            Ok(recorded) => recorded,
            Err(error) => {
                answers.answer_all(indexes, &Err(error));
                return answers.into_results();
            }
        };
        let new_campaigns = requests
            .iter()
            .zip(&recorded)
            .filter(|(_, recorded)| **recorded == Recorded::New)
            .map(|(request, _)| request.campaign_id.as_str());
        let controls = match self.board.of_batch(new_campaigns).await {
            Ok(controls) => controls,
            Err(error) => {
                answers.answer_all(indexes, &Err(anyhow::Error::from(error)));
                return answers.into_results();
            }
        };
        let mut to_render = Vec::new();
        let mut settled = Vec::new();
        let mut to_hold = Vec::new();
        let mut templates: HashMap<String, Option<Compiled>> = HashMap::new();
        for ((index, request), recorded) in indexes.into_iter().zip(requests).zip(recorded) {
            if recorded == Recorded::Settled {
                answers.answer(index, Ok(()));
                continue;
            }
            let trace = deliveries[index].envelope.trace.clone();
            if request.suppressed {
                let detail = "on the suppression list when the audience was expanded";
                let outcome =
                    unsent_outcome(request, DeliveryStatus::Suppressed, detail, trace, &self.streams);
                settled.push((index, outcome));
                continue;
            }
            // A request seen before may have had its email requested and
            // sent: it is requested again whatever its campaign's control,
            // and email-service, with its send ledger, settles it.
            let control = controls
                .get(&request.campaign_id)
                .filter(|_| recorded == Recorded::New);
            match control {
                Some(Control::Cancelled) => {
                    let detail = "the campaign was cancelled before its email was requested";
                    let outcome =
                        unsent_outcome(request, DeliveryStatus::Cancelled, detail, trace, &self.streams);
                    settled.push((index, outcome));
                    continue;
                }
                Some(Control::Paused) => {
                    to_hold.push((index, (request.notification_id, request.campaign_id)));
                    continue;
                }
                None => {}
            }
            let compiled = match templates.get(&request.campaign_id) {
                Some(compiled) => compiled.clone(),
                None => match self.templates.get(&request.campaign_id).await {
                    Ok(compiled) => {
                        templates.insert(request.campaign_id.clone(), compiled.clone());
                        compiled
                    }
                    Err(error) => {
                        answers.answer(index, Err(HandleError::Retry(error)));
                        continue;
                    }
                },
            };
            let Some(compiled) = compiled else {
                let error = anyhow::anyhow!(
                    "the templates of campaign {} are not known yet",
                    request.campaign_id
                );
                answers.answer(index, Err(HandleError::Retry(error)));
                continue;
            };
            to_render.push((index, request, compiled, trace));
        }
        if !to_hold.is_empty() {
            let (held_indexes, held): (Vec<usize>, Vec<(String, String)>) = to_hold.into_iter().unzip();
            answers.answer_all(held_indexes, &self.store.hold(&held).await);
        }
        let streams = self.streams.clone();
        let links = self.links.clone();
        let rendered = match tokio::task::spawn_blocking(move || {
            to_render
                .into_iter()
                .map(|(index, request, compiled, trace)| {
                    (index, render(request, &compiled, trace, &streams, &links))
                })
                .chain(settled)
                .collect::<Vec<_>>()
        })
        .await
        {
            Ok(rendered) => rendered,
            Err(error) => {
                let error = anyhow::Error::from(error).context("rendering the batch failed");
                answers.answer_all(0..deliveries.len(), &Err(error));
                return answers.into_results();
            }
        };
        answers.publish(&self.publisher, rendered).await;
        answers.into_results()
    }

    /// Requests again the emails of `requests`, all of campaign
    /// `campaign_id`, held back while it was paused: rendered as at first,
    /// published in one pipeline. The caller moves them back to `pending`.
    pub async fn request_again(
        &self,
        campaign_id: &str,
        requests: Vec<NotificationRequested>,
    ) -> anyhow::Result<()> {
        let compiled = self
            .templates
            .get(campaign_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the templates of campaign {campaign_id} are not known"))?;
        let (streams, links) = (self.streams.clone(), self.links.clone());
        let events = tokio::task::spawn_blocking(move || {
            requests
                .into_iter()
                .map(|request| render(request, &compiled, None, &streams, &links))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .await??;
        self.publisher.publish_many(&events).await?;
        Ok(())
    }

    /// Settles `requests`, held back while their campaign was paused, as
    /// `cancelled` now that it is cancelled: their outcomes published (for
    /// campaign-service's counts) and recorded here.
    pub async fn cancel_held(&self, requests: Vec<NotificationRequested>) -> anyhow::Result<()> {
        let detail = "the campaign was cancelled while it was paused";
        let events = requests
            .into_iter()
            .map(|request| unsent_outcome(request, DeliveryStatus::Cancelled, detail, None, &self.streams))
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.publisher.publish_many(&events).await?;
        let outcomes = events
            .iter()
            .map(|(_, envelope)| envelope.decode::<EmailDelivery>())
            .collect::<Result<Vec<_>, _>>()?;
        self.store.finish(&outcomes).await
    }

    /// The store.
    pub fn store(&self) -> &NotificationStore {
        &self.store
    }

    /// The control board.
    pub fn board(&self) -> &ControlBoard {
        &self.board
    }

    /// Handles the `email.delivery` entries of one read: their
    /// notifications move to their final statuses in one transaction.
    pub async fn on_deliveries(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandleError>> {
        decode_then(deliveries, |outcomes: Vec<EmailDelivery>| async move {
            self.store.finish(&outcomes).await
        })
        .await
    }
}

/// The outcome `status` (`suppressed`, `cancelled`: not sent, because
/// `detail`) of `request`, traced as `trace`, for its recipient's
/// partition of `comms:deliveries`.
pub(crate) fn unsent_outcome(
    request: NotificationRequested,
    status: DeliveryStatus,
    detail: &str,
    trace: Option<String>,
    streams: &Streams,
) -> anyhow::Result<(String, Envelope)> {
    let stream = streams.deliveries.for_key(&request.email).to_string();
    let outcome = EmailDelivery {
        notification_id: request.notification_id.clone(),
        campaign_id: request.campaign_id,
        status,
        detail: Some(detail.into()),
        recipient: None,
        tries: None,
    };
    Ok((
        stream,
        Envelope::with_id(&outcome, request.notification_id)?.traced(trace),
    ))
}

/// Handles one entry of `comms:consent`: a bounce or complaint report that
/// names the notification its email belonged to is noted on its record
/// (user-service, reading the same entry, suppresses the address).
pub async fn on_consent(store: &NotificationStore, delivery: Delivery) -> Result<(), HandleError> {
    if delivery.envelope.event_type != ConsentChanged::TYPE {
        return Ok(());
    }
    let change: ConsentChanged = delivery.envelope.decode()?;
    if let (true, Some(id)) = (change.suppress, &change.notification_id) {
        let detail = format!(
            "{} after the send: {}",
            change.reason.as_str(),
            change.detail.as_deref().unwrap_or("reported")
        );
        store.note_after_send(id, &detail).await?;
    }
    Ok(())
}

/// The event that follows `request`: its email, rendered with `compiled`
/// and carrying its unsubscribe link from `links`, or, if it does not
/// render, its failure. Both carry `trace`, and go to the recipient's
/// partition of their stream in `streams`.
fn render(
    request: NotificationRequested,
    compiled: &Compiled,
    trace: Option<String>,
    streams: &Streams,
    links: &UnsubscribeLinks,
) -> anyhow::Result<(String, Envelope)> {
    let link = links.for_recipient(request.user_id, &request.campaign_id);
    let rendered = match &compiled.templates {
        Ok(templates) => templates.render(&templates::Recipient {
            name: &request.name,
            email: &request.email,
            unsubscribe_url: &link.url,
        }),
        Err(error) => Err(error.clone()),
    };
    let (stream, envelope) = match rendered {
        Ok(rendered) => {
            let email = EmailRequested {
                notification_id: request.notification_id.clone(),
                campaign_id: request.campaign_id,
                to_email: request.email,
                to_name: request.name,
                subject: rendered.subject,
                body: rendered.body,
                unsubscribe_url: Some(link.url),
                unsubscribe_mailto: link.mailto,
                html: rendered.html,
                test: false,
                rate_per_s: compiled.rate_per_s,
            };
            let stream = streams.emails.for_key(&email.to_email).to_string();
            (stream, Envelope::with_id(&email, request.notification_id))
        }
        Err(error) => {
            let stream = streams.deliveries.for_key(&request.email).to_string();
            let failure = EmailDelivery {
                notification_id: request.notification_id.clone(),
                campaign_id: request.campaign_id,
                status: DeliveryStatus::Failed,
                detail: Some(format!("cannot render the template: {error}")),
                recipient: Some(request.email),
                tries: None,
            };
            (stream, Envelope::with_id(&failure, request.notification_id))
        }
    };
    Ok((stream, envelope?.traced(trace)))
}

/// The handler of `comms:notifications`: [`Notifier::on_requests`], and a
/// `dead_lettered` outcome for each request the worker gives up on.
pub struct RequestHandler(pub Notifier);

impl Handler for RequestHandler {
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl std::future::Future<Output = Vec<Result<(), HandleError>>> + Send {
        self.0.on_requests(deliveries)
    }

    async fn give_up(&self, delivery: Delivery, reason: &str) -> Result<(), HandleError> {
        let request: NotificationRequested = delivery.envelope.decode()?;
        let stream = self.0.streams.deliveries.for_key(&request.email);
        let outcome = EmailDelivery {
            notification_id: request.notification_id.clone(),
            campaign_id: request.campaign_id,
            status: DeliveryStatus::DeadLettered,
            detail: Some(format!("dead-lettered: {reason}")),
            recipient: Some(request.email),
            tries: None,
        };
        let envelope = Envelope::with_id(&outcome, format!("delivery:{}", request.notification_id))
            .map_err(anyhow::Error::from)?
            .traced(delivery.envelope.trace.clone());
        self.0
            .publisher
            .publish(stream, &envelope)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(())
    }
}

/// The handler of `comms:deliveries`: [`Notifier::on_deliveries`].
pub struct DeliveryHandler(pub Notifier);

impl Handler for DeliveryHandler {
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl std::future::Future<Output = Vec<Result<(), HandleError>>> + Send {
        self.0.on_deliveries(deliveries)
    }
}
