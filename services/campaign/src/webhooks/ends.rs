//! The campaigns' ends as webhook events: each campaign completed or
//! cancelled is made an event once, for the endpoints that ask for it.

use sqlx::Row;

use super::event::Event;
use super::store::WebhookStore;

/// How much earlier than the last campaign end made an event another may
/// have ended and still be found: ends are noted as their last outcome is
/// counted, on any instance, whose clocks may differ by this much.
pub const ENDS_MARGIN_MS: i64 = 3_600_000;

impl WebhookStore {
    /// Up to `limit` campaigns that ended at or after `since` and whose end
    /// is not an event yet, the earliest first: id, whether cancelled,
    /// when. Only those that ended at most [`ENDS_MARGIN_MS`] before the
    /// last end made an event are looked at (through an index), not every
    /// campaign since `since`. Only a completed or a cancelled campaign
    /// has an end (`completed_at`).
    pub async fn campaigns_ended(&self, since: i64, limit: i64) -> anyhow::Result<Vec<(String, bool, i64)>> {
        let last: Option<i64> = sqlx::query("SELECT MAX(completed_at) FROM webhook_campaigns")
            .fetch_one(&self.db)
            .await?
            .try_get(0)?;
        let since = last.map_or(since, |last| since.max(last - ENDS_MARGIN_MS));
        let rows = sqlx::query(
            "SELECT id, status, completed_at FROM campaigns c
             WHERE completed_at IS NOT NULL AND completed_at >= $1
               AND NOT EXISTS (SELECT 1 FROM webhook_campaigns w WHERE w.campaign_id = c.id)
             ORDER BY completed_at LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0)?,
                    row.try_get::<String, _>(1)? == "cancelled",
                    row.try_get(2)?,
                ))
            })
            .collect()
    }

    /// Keeps `events` for their endpoints, then notes that `campaign_id`'s
    /// end is an event: cut in between, the next round keeps them again,
    /// which changes nothing.
    pub async fn enqueue_campaign_end(
        &self,
        (campaign_id, completed_at): (&str, i64),
        events: &[(String, Event)],
        now: i64,
    ) -> anyhow::Result<()> {
        self.enqueue(events, now).await?;
        sqlx::query(
            "INSERT INTO webhook_campaigns (campaign_id, completed_at) VALUES ($1, $2)
             ON CONFLICT (campaign_id) DO NOTHING",
        )
        .bind(campaign_id)
        .bind(completed_at)
        .execute(&self.db)
        .await?;
        Ok(())
    }
}
