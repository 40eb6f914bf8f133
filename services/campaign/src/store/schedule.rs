//! Scheduled campaigns: started when their `send_at` has come, cancelled
//! or moved while they wait.
//!
//! Each change is one statement guarded by the campaign being `scheduled`
//! (and, to start, by its time having come), so a start, a cancel and a
//! reschedule racing on any instances apply one at a time, each or none.
//! The schedule lives in the database: a campaign whose time passed while
//! comms was down starts when it is back, and says how late.

use servicekit::now_ms;

use super::{Campaign, CampaignStore, COLUMNS};

/// What a cancel or a reschedule came to.
#[derive(Debug)]
pub enum Change {
    /// Done: the campaign as it is now.
    Done(Campaign),
    /// The campaign is not scheduled (any more): nothing changed.
    NotScheduled(Campaign),
    /// No campaign with that id.
    NotFound,
}

impl CampaignStore {
    /// The scheduled campaigns whose `send_at` has come by `now_ms`,
    /// the earliest first.
    pub async fn due(&self, now_ms: i64) -> anyhow::Result<Vec<Campaign>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM campaigns
             JOIN campaign_schedules due ON due.campaign_id = campaigns.id
             WHERE campaigns.status = 'scheduled' AND due.send_at <= $1
             ORDER BY due.send_at, campaigns.id"
        ))
        .bind(now_ms)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .map(super::to_campaign)
        .collect()
    }

    /// Starts scheduled campaign `id` (status `expanding`, `started_at`
    /// now) if its time has come and fewer than `max_in_progress`
    /// campaigns are in progress; the campaign started, or `None`.
    pub async fn start(&self, id: &str, max_in_progress: u64) -> anyhow::Result<Option<Campaign>> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let started = sqlx::query(
            "UPDATE campaigns SET status = 'expanding'
             WHERE id = $1 AND status = 'scheduled'
               AND (SELECT send_at FROM campaign_schedules WHERE campaign_id = $1) <= $2
               AND (SELECT COUNT(*) FROM campaigns WHERE status IN ('expanding', 'sending')) < $3",
        )
        .bind(id)
        .bind(now)
        .bind(i64::try_from(max_in_progress).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if started == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query("UPDATE campaign_schedules SET started_at = $1 WHERE campaign_id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get(id).await
    }

    /// Cancels campaign `id` if it is scheduled: status `cancelled`,
    /// `completed_at` now; nothing of it was sent.
    pub async fn cancel(&self, id: &str) -> anyhow::Result<Change> {
        let changed = sqlx::query(
            "UPDATE campaigns SET status = 'cancelled', completed_at = $1 WHERE id = $2 AND status = 'scheduled'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.db)
        .await?
        .rows_affected();
        self.change(id, changed).await
    }

    /// Moves the `send_at` of campaign `id` (ms since the epoch) if it is
    /// scheduled.
    pub async fn reschedule(&self, id: &str, send_at: i64) -> anyhow::Result<Change> {
        let changed = sqlx::query(
            "UPDATE campaign_schedules SET send_at = $1
             WHERE campaign_id = $2 AND EXISTS (SELECT 1 FROM campaigns WHERE id = $2 AND status = 'scheduled')",
        )
        .bind(send_at)
        .bind(id)
        .execute(&self.db)
        .await?
        .rows_affected();
        self.change(id, changed).await
    }

    /// What a change of `changed` rows to campaign `id` came to.
    async fn change(&self, id: &str, changed: u64) -> anyhow::Result<Change> {
        Ok(match (self.get(id).await?, changed) {
            (None, _) => Change::NotFound,
            (Some(campaign), 0) => Change::NotScheduled(campaign),
            (Some(campaign), _) => Change::Done(campaign),
        })
    }
}
