//! Resends: a campaign created with `resend_of` goes to the recipients of
//! that finished campaign that were not reached (`failed`,
//! `dead_lettered`), derived from their records here, where the
//! per-recipient outcomes live; user-service leaves it alone.
//!
//! - When its `campaign.created` is read, the audience is fixed once, in
//!   one transaction: a row per recipient (user id and the old
//!   notification, no personal data of its own, so erasure has nothing
//!   more to find), and the total announced. A redelivered announcement
//!   finds it fixed and only announces it again.
//! - A round ([`EVERY`], one instance at a time) publishes the pages of
//!   each resend not yet ended, as user-service does an audience: under
//!   the one window of every expansion ([`servicekit::pace`]), the cursor
//!   moved after each page is in the stream (a crash re-publishes a page,
//!   with the same deterministic ids), nothing while the campaign is
//!   paused, and, once it is cancelled, the rest announced as
//!   `not_expanded`.
//! - A recipient erased since is requested as suppressed (an address no
//!   longer known is never sent to), so that the total stays exact.

use std::sync::Arc;
use std::time::Duration;

use contracts::control::{Control, ControlBoard};
use contracts::{notification_id, AudienceExpanded, CampaignCreated, NotificationRequested, Streams};
use eventstore::{Delivery, Envelope, Event, HandleError, Publisher};
use servicekit::pace::Pacer;
use sqlx::{AnyPool, Row};

/// How often the resends are moved on.
pub const EVERY: Duration = Duration::from_millis(500);

/// Recipients per page.
const PAGE: i64 = 1_000;

/// The resends of notification-service.
#[derive(Clone)]
pub struct Resends {
    db: AnyPool,
    publisher: Publisher,
    streams: Arc<Streams>,
    board: ControlBoard,
    pacer: Pacer,
}

/// One resend not yet ended.
struct Open {
    campaign_id: String,
    total: i64,
    cursor: i64,
    published: i64,
}

impl Resends {
    /// Resends on `db`, publishing with `publisher` to `streams` under
    /// `pacer`'s window, stopped by `board`.
    pub fn new(
        db: AnyPool,
        publisher: Publisher,
        streams: Streams,
        board: ControlBoard,
        pacer: Pacer,
    ) -> Self {
        Self {
            db,
            publisher,
            streams: Arc::new(streams),
            board,
            pacer,
        }
    }

    /// Handles one entry of `comms:campaigns`: fixes the audience of a
    /// resend's `campaign.created` and announces its total; ignores the
    /// rest.
    pub async fn on_campaign_event(&self, delivery: &Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != CampaignCreated::TYPE {
            return Ok(());
        }
        let campaign: CampaignCreated = delivery.envelope.decode()?;
        let Some(of) = campaign.resend_of else {
            return Ok(());
        };
        self.begin(&campaign.campaign_id, &of).await?;
        Ok(())
    }

    /// Fixes the audience of resend `campaign_id` of campaign `of` (once)
    /// and announces its total.
    async fn begin(&self, campaign_id: &str, of: &str) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let begun = sqlx::query(
            "INSERT INTO resends (campaign_id, resend_of, total, cursor, published, ended)
             SELECT $1, $2, 0, 0, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM resends WHERE campaign_id = $1)",
        )
        .bind(campaign_id)
        .bind(of)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if begun == 1 {
            sqlx::query(
                "INSERT INTO resend_recipients (campaign_id, user_id, source_id)
                 SELECT $1, user_id, id FROM notifications
                 WHERE campaign_id = $2 AND status IN ('failed', 'dead_lettered')",
            )
            .bind(campaign_id)
            .bind(of)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE resends SET total = (SELECT COUNT(*) FROM resend_recipients WHERE campaign_id = $1)
                 WHERE campaign_id = $1",
            )
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let row = sqlx::query("SELECT total, published, ended FROM resends WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_one(&self.db)
            .await?;
        let (total, published, ended): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let not_expanded = if ended == 1 { total - published } else { 0 };
        tracing::info!(campaign = %campaign_id, resend_of = %of, total, "resend's audience fixed");
        self.announce(campaign_id, total, not_expanded).await
    }

    /// One round: moves each resend not yet ended on.
    pub async fn round(&self) {
        let open = match self.open().await {
            Ok(open) => open,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "cannot list the resends");
                return;
            }
        };
        for resend in open {
            if let Err(error) = self.move_on(resend).await {
                tracing::warn!(error = format!("{error:#}"), "a resend's page failed; next round");
            }
        }
    }

    /// The resends not yet ended.
    async fn open(&self) -> anyhow::Result<Vec<Open>> {
        sqlx::query(
            "SELECT campaign_id, total, cursor, published FROM resends WHERE ended = 0 ORDER BY campaign_id",
        )
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .map(|row| {
            Ok(Open {
                campaign_id: row.try_get(0)?,
                total: row.try_get(1)?,
                cursor: row.try_get(2)?,
                published: row.try_get(3)?,
            })
        })
        .collect()
    }

    /// Publishes the pages of `resend` the window has room for, as its
    /// control allows, and ends it after its last page or its
    /// cancellation.
    async fn move_on(&self, mut resend: Open) -> anyhow::Result<()> {
        loop {
            match self.board.control(&resend.campaign_id).await? {
                Some(Control::Paused) => return Ok(()),
                Some(Control::Cancelled) => return self.end(&resend, resend.total - resend.published).await,
                None => {}
            }
            let page = self.page(&resend).await?;
            let Some(last) = page.last().map(|request| request.user_id) else {
                return self.end(&resend, 0).await;
            };
            let Ok(slot) = self.pacer.enter(page.len() as u64).await? else {
                return Ok(());
            };
            let published = self.publish(page).await;
            slot.leave().await?;
            let count = published?;
            self.advance(&resend.campaign_id, last, count).await?;
            resend.cursor = last;
            resend.published += count;
        }
    }

    /// The next page of `resend`'s recipients, as requests of its
    /// campaign (an erased one's as suppressed).
    async fn page(&self, resend: &Open) -> anyhow::Result<Vec<NotificationRequested>> {
        sqlx::query(
            "SELECT r.user_id, COALESCE(n.email, ''), COALESCE(n.name, '') FROM resend_recipients r
             LEFT JOIN notifications n ON n.id = r.source_id
             WHERE r.campaign_id = $1 AND r.user_id > $2 ORDER BY r.user_id LIMIT $3",
        )
        .bind(&resend.campaign_id)
        .bind(resend.cursor)
        .bind(PAGE)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .map(|row| {
            let user_id: i64 = row.try_get(0)?;
            let email: String = row.try_get(1)?;
            Ok(NotificationRequested {
                notification_id: notification_id(&resend.campaign_id, user_id),
                campaign_id: resend.campaign_id.clone(),
                user_id,
                suppressed: email.is_empty(),
                email,
                name: row.try_get(2)?,
            })
        })
        .collect()
    }

    /// Publishes `page` to `comms:notifications`; how many.
    async fn publish(&self, page: Vec<NotificationRequested>) -> anyhow::Result<i64> {
        let count = page.len() as i64;
        let envelopes = page
            .into_iter()
            .map(|request| {
                let partition = self.streams.notifications.for_key(&request.email);
                let id = request.notification_id.clone();
                Ok((partition, Envelope::with_id(&request, id)?))
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        self.publisher.publish_many(&envelopes).await?;
        Ok(count)
    }

    /// Moves `campaign_id`'s cursor past a page of `count` (never back,
    /// nor counted twice).
    async fn advance(&self, campaign_id: &str, cursor: i64, count: i64) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE resends SET cursor = $1, published = published + $2 WHERE campaign_id = $3 AND cursor < $1",
        )
        .bind(cursor)
        .bind(count)
        .bind(campaign_id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Ends `resend`, `not_expanded` of its recipients never requested,
    /// and announces its total again with them.
    async fn end(&self, resend: &Open, not_expanded: i64) -> anyhow::Result<()> {
        sqlx::query("UPDATE resends SET ended = 1 WHERE campaign_id = $1")
            .bind(&resend.campaign_id)
            .execute(&self.db)
            .await?;
        tracing::info!(campaign = %resend.campaign_id, total = resend.total, not_expanded, "resend expanded");
        self.announce(&resend.campaign_id, resend.total, not_expanded)
            .await
    }

    /// Announces the total of resend `campaign_id`.
    async fn announce(&self, campaign_id: &str, total: i64, not_expanded: i64) -> anyhow::Result<()> {
        let announcement = AudienceExpanded {
            campaign_id: campaign_id.to_string(),
            total,
            not_expanded,
        };
        let envelope = Envelope::with_id(&announcement, format!("expanded:{campaign_id}"))?;
        self.publisher
            .publish(self.streams.campaigns.name(), &envelope)
            .await?;
        Ok(())
    }
}
