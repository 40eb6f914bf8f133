//! Creating a campaign: within the quota of campaigns in progress, and
//! once per `Idempotency-Key`.
//!
//! A key is claimed in the transaction that creates its campaign
//! (`campaign_idempotency_keys`, keyed by the key), so two requests with
//! one key, at once or a day apart, on one instance or two, create one
//! campaign: the second finds the key taken and gets the first's campaign
//! back, or a refusal when it asks for another campaign under that key.
//! A creation refused by the quota keeps no key.

use servicekit::now_ms;

use super::{Campaign, CampaignStatus, CampaignStore};
use crate::domain::NewCampaign;

/// What a creation came to.
#[derive(Debug)]
pub enum Creation {
    /// The campaign, new.
    Created(Campaign),
    /// The campaign this key created before, for the same request: nothing
    /// new.
    Replayed(Campaign),
    /// The key created this campaign, for another request: nothing new.
    KeyReused {
        /// The campaign the key names.
        campaign_id: String,
    },
    /// As many campaigns are in progress as the quota allows: nothing new.
    QuotaFull,
}

impl CampaignStore {
    /// Stores `campaign` with the trace id of the request that created it
    /// if it came with one, and returns it, unless `max_in_progress`
    /// campaigns are in progress already (counted in the insert itself, so
    /// creations at once cannot pass it together) or `key` (an
    /// `Idempotency-Key`) was used before.
    pub async fn create(
        &self,
        campaign: NewCampaign,
        trace_id: Option<&str>,
        key: Option<&str>,
        max_in_progress: u64,
    ) -> anyhow::Result<Creation> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.db.begin().await?;
        if let Some(key) = key {
            // On PostgreSQL a second claim of the key waits for the first's
            // transaction, then finds it taken; SQLite has one writer.
            let claimed = sqlx::query(
                "INSERT INTO campaign_idempotency_keys (idempotency_key, campaign_id) VALUES ($1, $2)
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(key)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                return self.created_before(key, &campaign).await;
            }
        }
        // A scheduled campaign is not in progress: the quota is counted
        // when it starts.
        let status = match campaign.send_at {
            Some(_) => CampaignStatus::Scheduled,
            None => CampaignStatus::Expanding,
        };
        let inserted = sqlx::query(
            "INSERT INTO campaigns (id, name, subject, body, status, total, sent, failed, created_at, completed_at)
             SELECT $1, $2, $3, $4, $5, NULL, 0, 0, $6, NULL
             WHERE $5 = 'scheduled' OR (SELECT COUNT(*) FROM campaigns WHERE status IN ('expanding', 'sending')) < $7",
        )
        .bind(&id)
        .bind(&campaign.name)
        .bind(&campaign.subject)
        .bind(&campaign.body)
        .bind(status.as_str())
        .bind(now_ms())
        .bind(i64::try_from(max_in_progress).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(Creation::QuotaFull);
        }
        if let Some(send_at) = campaign.send_at {
            sqlx::query(
                "INSERT INTO campaign_schedules (campaign_id, send_at, started_at) VALUES ($1, $2, NULL)",
            )
            .bind(&id)
            .bind(send_at)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(audience) = &campaign.audience {
            sqlx::query("INSERT INTO campaign_audiences (campaign_id, filter) VALUES ($1, $2)")
                .bind(&id)
                .bind(audience)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(resend_of) = &campaign.resend_of {
            sqlx::query("INSERT INTO campaign_resends (campaign_id, resend_of) VALUES ($1, $2)")
                .bind(&id)
                .bind(resend_of)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(html) = &campaign.html {
            sqlx::query("INSERT INTO campaign_html (campaign_id, html) VALUES ($1, $2)")
                .bind(&id)
                .bind(html)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(rate) = campaign.rate_per_s {
            sqlx::query("INSERT INTO campaign_rates (campaign_id, rate_per_s) VALUES ($1, $2)")
                .bind(&id)
                .bind(rate)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(trace_id) = trace_id {
            sqlx::query("INSERT INTO campaign_traces (campaign_id, trace_id) VALUES ($1, $2)")
                .bind(&id)
                .bind(trace_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let created = self
            .get(&id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("campaign {id} vanished after insert"))?;
        Ok(Creation::Created(created))
    }

    /// The campaign `key` created, for a request with that key again:
    /// [`Creation::Replayed`] when `campaign` is what it asked for then.
    async fn created_before(&self, key: &str, campaign: &NewCampaign) -> anyhow::Result<Creation> {
        let campaign_id: String = sqlx::query_scalar(
            "SELECT campaign_id FROM campaign_idempotency_keys WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_one(&self.db)
        .await?;
        let before = self
            .get(&campaign_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("campaign {campaign_id} of an idempotency key is missing"))?;
        Ok(if asks_for(campaign, &before) {
            Creation::Replayed(before)
        } else {
            Creation::KeyReused { campaign_id }
        })
    }
}

/// Whether `campaign` asks for what `before` was created from: every field
/// of a creation's body, as parsed (a campaign rescheduled since asks for
/// another `send_at`).
fn asks_for(campaign: &NewCampaign, before: &Campaign) -> bool {
    let NewCampaign {
        name,
        subject,
        body,
        html,
        send_at,
        audience,
        resend_of,
        rate_per_s,
    } = campaign;
    (name, subject, body, html, send_at, audience, resend_of)
        == (
            &before.name,
            &before.subject,
            &before.body,
            &before.html,
            &before.send_at,
            &before.audience,
            &before.resend_of,
        )
        && *rate_per_s == before.rate_per_s
}
