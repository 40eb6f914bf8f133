//! Scheduled campaigns: started when their `send_at` has come, moved
//! while they wait (cancelled like any other: [`super::control`]).
//!
//! Each change is one statement guarded by the campaign being `scheduled`
//! (and, to start, by its time having come), so a start, a cancel and a
//! reschedule racing on any instances apply one at a time, each or none.
//! The schedule lives in the database: a campaign whose time passed while
//! comms was down starts when it is back, and says how late.

use servicekit::now_ms;

use super::{Campaign, CampaignStore, Change, COLUMNS};

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
}
