//! Expanding a campaign's audience: one `notification.requested` per user,
//! published page by page.
//!
//! The cursor (last user id published) is saved only after the page's
//! events are in the stream, so a crash re-publishes at most one page (with
//! the same deterministic notification ids, which downstream absorbs) and
//! never skips one. A redelivered `campaign.created` resumes from the cursor;
//! a finished one only re-announces the total.

use contracts::{
    notification_id, AudienceExpanded, CampaignCreated, NotificationRequested, CAMPAIGNS, NOTIFICATIONS,
};
use eventstore::{Delivery, Envelope, Event, HandleError, Publisher};

use crate::store::UserStore;

/// What the expansion handler needs.
#[derive(Clone)]
pub struct Expander {
    /// Users and cursors.
    pub store: UserStore,
    /// Where notifications go.
    pub publisher: Publisher,
    /// Users per page.
    pub page_size: i64,
}

impl Expander {
    /// Handles one entry of `comms:campaigns`: expands `campaign.created`,
    /// ignores the stream's other event types.
    pub async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != CampaignCreated::TYPE {
            return Ok(());
        }
        let campaign: CampaignCreated = delivery.envelope.decode()?;
        let total = self.expand(&campaign).await?;
        let announcement = AudienceExpanded {
            campaign_id: campaign.campaign_id.clone(),
            total,
        };
        let envelope = Envelope::with_id(&announcement, format!("expanded:{}", campaign.campaign_id))
            .map_err(anyhow::Error::from)?
            .traced(delivery.envelope.trace.clone());
        self.publisher
            .publish(CAMPAIGNS, &envelope)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(())
    }

    /// Publishes the notifications of every user not yet covered by the
    /// cursor; returns the campaign's total audience.
    pub async fn expand(&self, campaign: &CampaignCreated) -> anyhow::Result<i64> {
        let (mut cursor, total) = self.store.expansion(&campaign.campaign_id).await?;
        if let Some(total) = total {
            return Ok(total);
        }
        loop {
            let page = self.store.page(cursor, self.page_size).await?;
            let Some(last) = page.last() else {
                break;
            };
            let last_id = last.id;
            let envelopes = page
                .into_iter()
                .map(|user| {
                    let id = notification_id(&campaign.campaign_id, user.id);
                    let event = NotificationRequested {
                        notification_id: id.clone(),
                        campaign_id: campaign.campaign_id.clone(),
                        user_id: user.id,
                        email: user.email,
                        name: user.name,
                        subject: campaign.subject.clone(),
                        body: campaign.body.clone(),
                    };
                    Envelope::with_id(&event, id)
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.publisher.publish_batch(NOTIFICATIONS, &envelopes).await?;
            self.store.advance(&campaign.campaign_id, last_id).await?;
            cursor = last_id;
        }
        let total = self.store.count_up_to(cursor).await?;
        self.store.finish(&campaign.campaign_id, total).await?;
        tracing::info!(campaign = %campaign.campaign_id, total, "audience expanded");
        Ok(total)
    }
}
