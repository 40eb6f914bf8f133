//! The recipients of a campaign that were not sent, as listed (and as
//! an erasure blanks them).

use sqlx::Row;

use super::{CampaignStore, Failure};

/// What an erasure blanks of an erased user's failures
/// ([`servicekit::erasure::Eraser`]): the recipient's address and the
/// server's reply; the outcomes, and so the counts, stay.
pub const ERASE: &str = "UPDATE campaign_failures SET recipient = NULL, detail = NULL WHERE notification_id";

impl CampaignStore {
    /// The notifications of `campaign_id` that were not sent, in id order,
    /// `limit` after `after`.
    pub async fn failures(&self, campaign_id: &str, after: &str, limit: i64) -> anyhow::Result<Vec<Failure>> {
        let rows = sqlx::query(
            "SELECT notification_id, status, recipient, detail FROM campaign_failures
             WHERE campaign_id = $1 AND notification_id > $2
             ORDER BY notification_id LIMIT $3",
        )
        .bind(campaign_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Failure {
                    notification_id: row.try_get(0)?,
                    status: row.try_get::<String, _>(1)?.parse()?,
                    recipient: row.try_get(2)?,
                    detail: row.try_get(3)?,
                })
            })
            .collect()
    }
}
