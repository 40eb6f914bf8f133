//! What campaign-service consumes and publishes.
//!
//! - It publishes `campaign.created` when a campaign is created, and again
//!   for a campaign whose audience is still unknown a while later (the first
//!   publish may have failed after the insert; user-service expands a
//!   campaign once however often it is announced).
//! - On `comms:campaigns` it reads `campaign.audience_expanded` (the total).
//! - On `comms:deliveries` it counts each notification's outcome once.

use std::time::Duration;

use contracts::{AudienceExpanded, CampaignCreated, EmailDelivery, CAMPAIGNS};
use eventstore::{Delivery, Envelope, Event, HandleError, Publisher};
use servicekit::batch::Batcher;
use tokio_util::sync::CancellationToken;

use servicekit::now_ms;

use crate::store::{Campaign, CampaignStore, Outcome};

/// Outcomes recorded per transaction at most.
const MAX_BATCH: usize = 512;

/// The handlers' shared state.
#[derive(Clone)]
pub struct Tracker {
    store: CampaignStore,
    publisher: Publisher,
    outcomes: Batcher<Outcome, ()>,
}

impl Tracker {
    /// Handlers on `store`, publishing with `publisher`.
    pub fn new(store: CampaignStore, publisher: Publisher) -> Self {
        let recording = store.clone();
        let outcomes = Batcher::spawn(MAX_BATCH, move |outcomes: Vec<Outcome>| {
            let store = recording.clone();
            async move { store.record(&outcomes).await }
        });
        Self {
            store,
            publisher,
            outcomes,
        }
    }

    /// The store.
    pub fn store(&self) -> &CampaignStore {
        &self.store
    }

    /// Announces `campaign` to user-service.
    pub async fn announce(&self, campaign: &Campaign) -> anyhow::Result<()> {
        let event = CampaignCreated {
            campaign_id: campaign.id.clone(),
            name: campaign.name.clone(),
            subject: campaign.subject.clone(),
            body: campaign.body.clone(),
        };
        self.publisher
            .publish(CAMPAIGNS, &Envelope::with_id(&event, campaign.id.clone())?)
            .await?;
        Ok(())
    }

    /// Handles one entry of `comms:campaigns`.
    pub async fn on_campaign_event(&self, delivery: Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != AudienceExpanded::TYPE {
            return Ok(());
        }
        let expanded: AudienceExpanded = delivery.envelope.decode()?;
        self.store
            .set_total(&expanded.campaign_id, expanded.total)
            .await?;
        Ok(())
    }

    /// Handles one entry of `comms:deliveries`.
    pub async fn on_delivery(&self, delivery: Delivery) -> Result<(), HandleError> {
        let outcome: EmailDelivery = delivery.envelope.decode()?;
        self.outcomes
            .submit(Outcome {
                notification_id: outcome.notification_id,
                campaign_id: outcome.campaign_id,
                status: outcome.status,
            })
            .await?;
        Ok(())
    }

    /// Re-announces campaigns still waiting for their audience after
    /// `after`, every `after`, until `shutdown`.
    pub async fn reannounce_stalled(self, after: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(after);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let stalled = match self.store.unexpanded(now_ms() - after.as_millis() as i64).await {
                Ok(stalled) => stalled,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "cannot list stalled campaigns");
                    continue;
                }
            };
            for campaign in stalled {
                if let Err(error) = self.announce(&campaign).await {
                    tracing::warn!(campaign = %campaign.id, error = format!("{error:#}"), "re-announcing failed");
                }
            }
        }
    }
}
