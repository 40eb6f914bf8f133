//! What campaign-service consumes and publishes.
//!
//! - It publishes `campaign.created` when a campaign is created, and again
//!   for a campaign whose audience is still unknown a while later (the first
//!   publish may have failed after the insert, or its handling was lost).
//!   It re-announces only once user-service's group has settled the last
//!   announcement: behind a stopped or slow user-service the announcement
//!   waits in the stream, and copies piled up behind it would each be
//!   handled later (user-service expands a campaign once however often it is
//!   announced, but need not be sent a copy every interval).
//! - On `comms:campaigns` it reads `campaign.audience_expanded` (the total).
//! - On `comms:deliveries` it counts each notification's outcome once. An
//!   outcome its group gives up on (the database away past the retry
//!   budget, a crash limit) is counted as dead-lettered, so the campaign
//!   still completes; replayed, it replaces that count with its own.
//! - An `audience_expanded` given up leaves the campaign `expanding`: it
//!   is re-announced, and user-service announces the known total again.

use std::time::Duration;

use contracts::{
    AudienceExpanded, CampaignCreated, DeliveryStatus, EmailDelivery, AUDIENCE_GROUP, CAMPAIGNS,
};
use eventstore::{pending, Delivery, Envelope, Event, HandleError, Handler, Publisher, Redis};

use servicekit::now_ms;

use crate::store::{Campaign, CampaignStore};

/// The handlers' shared state.
#[derive(Clone)]
pub struct Tracker {
    store: CampaignStore,
    /// For looking up whether an announcement is still waiting.
    redis: Redis,
    publisher: Publisher,
}

impl Tracker {
    /// Handlers on `store`, publishing on `redis`.
    pub fn new(store: CampaignStore, redis: Redis) -> Self {
        Self {
            store,
            publisher: Publisher::new(redis.clone()),
            redis,
        }
    }

    /// The store.
    pub fn store(&self) -> &CampaignStore {
        &self.store
    }

    /// The trace id of everything `campaign` causes: the one its creating
    /// request came with, or else its own id.
    pub async fn trace_id(&self, campaign: &Campaign) -> anyhow::Result<String> {
        match self.store.trace_id(&campaign.id).await? {
            Some(trace_id) => Ok(trace_id),
            None => contracts::campaign_trace_id(&campaign.id)
                .ok_or_else(|| anyhow::anyhow!("campaign id {} is not a UUID", campaign.id)),
        }
    }

    /// Announces `campaign` to user-service within `traceparent` and
    /// remembers the announcement's stream entry.
    pub async fn announce(&self, campaign: &Campaign, traceparent: &str) -> anyhow::Result<()> {
        let event = CampaignCreated {
            campaign_id: campaign.id.clone(),
            name: campaign.name.clone(),
            subject: campaign.subject.clone(),
            body: campaign.body.clone(),
            audience: campaign.audience.clone(),
            resend_of: campaign.resend_of.clone(),
            html: campaign.html.clone(),
            rate_per_s: campaign.rate_per_s,
        };
        let entry_id = self
            .publisher
            .publish(
                CAMPAIGNS,
                &Envelope::with_id(&event, campaign.id.clone())?.traced(Some(traceparent.to_string())),
            )
            .await?;
        self.store.announced(&campaign.id, &entry_id).await
    }

    /// Whether the latest announcement of `campaign_id` is still waiting
    /// for user-service's group (undelivered, or delivered and not acked).
    async fn announcement_waits(&self, campaign_id: &str) -> anyhow::Result<bool> {
        let Some(entry_id) = self.store.last_announcement(campaign_id).await? else {
            return Ok(false);
        };
        let mut conn = self.redis.clone();
        Ok(pending::awaits(&mut conn, CAMPAIGNS, AUDIENCE_GROUP, &entry_id).await?)
    }

    /// Handles one entry of `comms:campaigns`.
    pub async fn on_campaign_event(&self, delivery: Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != AudienceExpanded::TYPE {
            return Ok(());
        }
        let expanded: AudienceExpanded = delivery.envelope.decode()?;
        self.store
            .set_total(&expanded.campaign_id, expanded.total, expanded.not_expanded)
            .await?;
        Ok(())
    }

    /// Handles the entries of one read of `comms:deliveries`: their
    /// outcomes are counted in one transaction, each once.
    pub async fn on_deliveries(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandleError>> {
        servicekit::batch::decode_then(deliveries, |outcomes: Vec<EmailDelivery>| async move {
            self.store.record(&outcomes).await
        })
        .await
    }

    /// Counts the outcome of a `comms:deliveries` entry given up on as
    /// dead-lettered. The store records one outcome per notification and
    /// lets only a dead-lettered one be replaced, so this counts once, and
    /// the dead letter, replayed, moves the count to its real outcome.
    async fn on_delivery_given_up(&self, delivery: Delivery, reason: &str) -> Result<(), HandleError> {
        let outcome: EmailDelivery = delivery.envelope.decode()?;
        let outcome = match outcome.status {
            DeliveryStatus::DeadLettered => outcome,
            _ => EmailDelivery {
                status: DeliveryStatus::DeadLettered,
                detail: Some(format!("dead-lettered: {reason}")),
                ..outcome
            },
        };
        self.store.record(&[outcome]).await?;
        Ok(())
    }

    /// Re-announces the campaigns still waiting for their audience `after`
    /// their creation whose latest announcement is no longer waiting in
    /// user-service's group. One round; campaign-service runs one every
    /// `after`, in one instance at a time.
    pub async fn reannounce_stalled(&self, after: Duration) {
        let stalled = match self.store.unexpanded(now_ms() - after.as_millis() as i64).await {
            Ok(stalled) => stalled,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "cannot list stalled campaigns");
                return;
            }
        };
        for campaign in stalled {
            match self.announcement_waits(&campaign.id).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(campaign = %campaign.id, error = format!("{error:#}"), "cannot check the last announcement");
                    continue;
                }
            }
            let traceparent = match self.trace_id(&campaign).await {
                Ok(trace_id) => contracts::traceparent(&trace_id),
                Err(error) => {
                    tracing::warn!(campaign = %campaign.id, error = format!("{error:#}"), "cannot look up the trace");
                    continue;
                }
            };
            tracing::info!(campaign = %campaign.id, trace = %traceparent, "re-announcing a stalled campaign");
            if let Err(error) = self.announce(&campaign, &traceparent).await {
                tracing::warn!(campaign = %campaign.id, error = format!("{error:#}"), "re-announcing failed");
            }
        }
    }
}

/// The handler of `comms:deliveries`: [`Tracker::on_deliveries`], and a
/// dead-lettered count for each outcome the worker gives up on (otherwise
/// its campaign would stay `sending`).
pub struct DeliveryHandler(pub Tracker);

impl Handler for DeliveryHandler {
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl std::future::Future<Output = Vec<Result<(), HandleError>>> + Send {
        self.0.on_deliveries(deliveries)
    }

    async fn give_up(&self, delivery: Delivery, reason: &str) -> Result<(), HandleError> {
        self.0.on_delivery_given_up(delivery, reason).await
    }
}
