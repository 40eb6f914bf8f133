//! The campaigns and their progress, owned by campaign-service alone.
//!
//! Progress is exact under redelivery: each notification's outcome is
//! inserted once (`outcomes` is keyed by notification id), and a campaign's
//! `sent`/`failed` counters move only when that insert happened. The
//! campaign completes when every recipient has an outcome.
//!
//! Dead-lettered notifications (given up by the pipeline, replayable by an
//! operator) are final too: the `failed` column counts every final outcome
//! that is not a send, and `campaign_dead_letters` how many of those were
//! dead-lettered, so that the API shows the two apart. A dead-lettered
//! outcome is the one that can be replaced: when a replayed dead letter
//! ends in a send or a failure, the counts move to it.

use std::collections::BTreeMap;

use contracts::{DeliveryStatus, EmailDelivery};
use servicekit::db::ListParams;
use servicekit::now_ms;
use sqlx::{AnyPool, Row};

mod control;
mod create;
mod failures;
mod message_erasure;
mod message_templates;
mod messages;
mod schedule;
pub use control::Change;
pub use create::Creation;
pub use failures::ERASE;
pub use message_erasure::{ERASE_ATTEMPTS, ERASE_MESSAGES};
pub use message_templates::StoredTemplate;
pub use messages::{Attempt, Message, NewMessage, Stored};
mod model;

use model::Counts;
pub use model::{Campaign, CampaignStatus, Failure, Progress};

/// The schema, created at start if missing.
pub const SCHEMA: &str = include_str!("schema.sql");

/// The campaigns.
#[derive(Clone)]
pub struct CampaignStore {
    db: AnyPool,
}

pub(super) const COLUMNS: &str =
    "id, name, subject, body, status, total, sent, failed, created_at, completed_at,
    COALESCE((SELECT dead_lettered FROM campaign_dead_letters d WHERE d.campaign_id = campaigns.id), 0),
    COALESCE((SELECT suppressed FROM campaign_suppressed s WHERE s.campaign_id = campaigns.id), 0),
    (SELECT send_at FROM campaign_schedules w WHERE w.campaign_id = campaigns.id),
    (SELECT started_at FROM campaign_schedules w WHERE w.campaign_id = campaigns.id),
    COALESCE((SELECT cancelled FROM campaign_cancelled c WHERE c.campaign_id = campaigns.id), 0),
    COALESCE((SELECT not_expanded FROM campaign_not_expanded n WHERE n.campaign_id = campaigns.id), 0),
    (SELECT filter FROM campaign_audiences a WHERE a.campaign_id = campaigns.id),
    (SELECT resend_of FROM campaign_resends r WHERE r.campaign_id = campaigns.id),
    (SELECT html FROM campaign_html h WHERE h.campaign_id = campaigns.id),
    (SELECT rate_per_s FROM campaign_rates r WHERE r.campaign_id = campaigns.id)";

impl CampaignStore {
    /// A store on `db` (schema applied).
    pub fn new(db: AnyPool) -> Self {
        Self { db }
    }

    /// One campaign.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Campaign>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        row.map(to_campaign).transpose()
    }

    /// The newest `limit` campaigns.
    pub async fn list(&self, limit: i64) -> anyhow::Result<Vec<Campaign>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM campaigns ORDER BY created_at DESC, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .map(to_campaign)
        .collect()
    }

    /// The `limit` campaigns listed after campaign `after` (newest first,
    /// as [`CampaignStore::list`]); `None` when `after` is no campaign.
    pub async fn list_after(&self, after: &str, limit: i64) -> anyhow::Result<Option<Vec<Campaign>>> {
        let Some(row) = sqlx::query("SELECT created_at FROM campaigns WHERE id = $1")
            .bind(after)
            .fetch_optional(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let created_at: i64 = row.try_get(0)?;
        let campaigns = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM campaigns
             WHERE created_at < $1 OR (created_at = $1 AND id > $2)
             ORDER BY created_at DESC, id LIMIT $3"
        ))
        .bind(created_at)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .map(to_campaign)
        .collect::<anyhow::Result<_>>()?;
        Ok(Some(campaigns))
    }

    /// The progress of the campaigns being sent, summed: what is left of
    /// the current work, for the gauges of [`crate::gauges`].
    pub async fn sending_progress(&self) -> anyhow::Result<Progress> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM campaigns WHERE status = 'sending'"
        ))
        .fetch_all(&self.db)
        .await?;
        let mut sum = Progress::default();
        for row in rows {
            let progress = to_campaign(row)?.progress;
            sum.total += progress.total;
            sum.sent += progress.sent;
            sum.failed += progress.failed;
            sum.dead_lettered += progress.dead_lettered;
            sum.suppressed += progress.suppressed;
            sum.cancelled += progress.cancelled;
            sum.pending += progress.pending;
        }
        Ok(sum)
    }

    /// Campaigns still waiting for their audience, created before
    /// `before_ms`: their creation event may not have been published.
    pub async fn unexpanded(&self, before_ms: i64) -> anyhow::Result<Vec<Campaign>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM campaigns WHERE status = 'expanding' AND created_at < $1"
        ))
        .bind(before_ms)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .map(to_campaign)
        .collect()
    }

    /// The trace id `campaign_id` was created in, if its request came with
    /// one.
    pub async fn trace_id(&self, campaign_id: &str) -> anyhow::Result<Option<String>> {
        let row = sqlx::query("SELECT trace_id FROM campaign_traces WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Remembers `entry_id` as the stream entry of the latest announcement
    /// of `campaign_id`.
    pub async fn announced(&self, campaign_id: &str, entry_id: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO announcements (campaign_id, entry_id) VALUES ($1, $2)
             ON CONFLICT (campaign_id) DO UPDATE SET entry_id = excluded.entry_id",
        )
        .bind(campaign_id)
        .bind(entry_id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The stream entry of the latest announcement of `campaign_id`, if one
    /// was published.
    pub async fn last_announcement(&self, campaign_id: &str) -> anyhow::Result<Option<String>> {
        let row = sqlx::query("SELECT entry_id FROM announcements WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Records the audience size of `id`, and how many of it were never
    /// requested because the campaign was cancelled first (idempotent).
    pub async fn set_total(&self, id: &str, total: i64, not_expanded: i64) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        // Announced when the expansion starts and again when it ends: the
        // later figure wins until the campaign completes. A paused or
        // cancelled campaign keeps its status.
        sqlx::query(
            "UPDATE campaigns SET total = $1,
                 status = CASE WHEN status = 'expanding' THEN 'sending' ELSE status END
             WHERE id = $2 AND status IN ('expanding', 'sending', 'paused', 'cancelled') AND completed_at IS NULL",
        )
        .bind(total)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if not_expanded > 0 {
            sqlx::query(
                "INSERT INTO campaign_not_expanded (campaign_id, not_expanded) VALUES ($1, $2)
                 ON CONFLICT (campaign_id) DO UPDATE SET not_expanded = excluded.not_expanded",
            )
            .bind(id)
            .bind(not_expanded)
            .execute(&mut *tx)
            .await?;
        }
        complete_if_done(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records `outcomes` in one transaction, each once: the outcomes
    /// inserted for the first time (a multi-row insert that skips known
    /// notification ids and returns the new ones) are the only ones counted.
    /// A `held` outcome is not final, and counts nothing; a test send's
    /// ([`contracts::TEST_CAMPAIGN`]) belongs to no campaign, and is not
    /// recorded; a message's ([`contracts::MESSAGE_CAMPAIGN`]) settles it.
    pub async fn record(&self, outcomes: &[EmailDelivery]) -> anyhow::Result<()> {
        let messages: Vec<&EmailDelivery> = outcomes
            .iter()
            .filter(|outcome| outcome.campaign_id == contracts::MESSAGE_CAMPAIGN)
            .collect();
        if !messages.is_empty() {
            let mut tx = self.db.begin().await?;
            Self::settle_messages(&mut tx, &messages).await?;
            tx.commit().await?;
        }
        let finals: Vec<EmailDelivery> = outcomes
            .iter()
            .filter(|outcome| {
                outcome.status.is_final()
                    && outcome.campaign_id != contracts::TEST_CAMPAIGN
                    && outcome.campaign_id != contracts::MESSAGE_CAMPAIGN
            })
            .cloned()
            .collect();
        if finals.is_empty() {
            return Ok(());
        }
        let outcomes = &finals[..];
        let sql = format!(
            "INSERT INTO outcomes (notification_id, campaign_id, status) VALUES {}
             ON CONFLICT (notification_id) DO NOTHING
             RETURNING campaign_id, status, notification_id",
            ListParams::of(&self.db).values(outcomes.len(), 3)
        );
        let mut insert = sqlx::query(&sql);
        for outcome in outcomes {
            insert = insert
                .bind(&outcome.notification_id)
                .bind(&outcome.campaign_id)
                .bind(outcome.status.as_str());
        }
        let mut tx = self.db.begin().await?;
        let inserted = insert.fetch_all(&mut *tx).await?;
        // Outcomes newly counted per campaign, and the outcomes newly
        // counted that were not sends (suppressed ones aside: they are
        // counted, not listed).
        let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
        let mut failures = Vec::new();
        // Outcomes newly recorded per status, for the metrics.
        let mut recorded: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut new_ids = std::collections::HashSet::new();
        for row in inserted {
            let campaign_id: String = row.try_get(0)?;
            let status: DeliveryStatus = row.try_get::<String, _>(1)?.parse()?;
            new_ids.insert(row.try_get::<String, _>(2)?);
            counts.entry(campaign_id).or_default().add(status, 1);
            if !matches!(
                status,
                DeliveryStatus::Sent | DeliveryStatus::Suppressed | DeliveryStatus::Cancelled
            ) {
                failures.push(row.try_get::<String, _>(2)?);
            }
            *recorded.entry(status.as_str()).or_default() += 1;
        }
        self.record_failures(&mut tx, outcomes, &failures).await?;
        // A dead letter replayed by an operator ends in a real outcome: it
        // replaces `dead_lettered` (the only outcome that can be replaced).
        // Only an outcome already known (not inserted now) can.
        let known = outcomes
            .iter()
            .filter(|outcome| !new_ids.contains(&outcome.notification_id));
        for outcome in known.filter(|outcome| outcome.status != DeliveryStatus::DeadLettered) {
            if Self::replace_dead_letter(&mut tx, outcome).await? {
                let entry = counts.entry(outcome.campaign_id.clone()).or_default();
                entry.add(DeliveryStatus::DeadLettered, -1);
                entry.add(outcome.status, 1);
                *recorded.entry(outcome.status.as_str()).or_default() += 1;
            }
        }
        for (campaign_id, count) in &counts {
            sqlx::query("UPDATE campaigns SET sent = sent + $1, failed = failed + $2 WHERE id = $3")
                .bind(count.sent)
                .bind(count.not_sent)
                .bind(campaign_id)
                .execute(&mut *tx)
                .await?;
            add_to(
                &mut tx,
                "campaign_dead_letters",
                "dead_lettered",
                campaign_id,
                count.dead_lettered,
            )
            .await?;
            add_to(
                &mut tx,
                "campaign_suppressed",
                "suppressed",
                campaign_id,
                count.suppressed,
            )
            .await?;
            add_to(
                &mut tx,
                "campaign_cancelled",
                "cancelled",
                campaign_id,
                count.cancelled,
            )
            .await?;
            complete_if_done(&mut tx, campaign_id).await?;
        }
        tx.commit().await?;
        for (status, n) in recorded {
            metrics::counter!("comms_campaign_outcomes_total", "status" => status).increment(n);
        }
        Ok(())
    }
}

impl CampaignStore {
    /// Replaces the `dead_lettered` outcome of `outcome`'s notification, if
    /// that is what it has, by `outcome` (its listed failure goes, or is
    /// updated); says whether it did.
    async fn replace_dead_letter(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        outcome: &EmailDelivery,
    ) -> anyhow::Result<bool> {
        let replaced = sqlx::query(
            "UPDATE outcomes SET status = $1 WHERE notification_id = $2 AND status = 'dead_lettered'",
        )
        .bind(outcome.status.as_str())
        .bind(&outcome.notification_id)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            > 0;
        if !replaced {
            return Ok(false);
        }
        if matches!(
            outcome.status,
            DeliveryStatus::Sent | DeliveryStatus::Suppressed | DeliveryStatus::Cancelled
        ) {
            sqlx::query("DELETE FROM campaign_failures WHERE notification_id = $1")
                .bind(&outcome.notification_id)
                .execute(&mut **tx)
                .await?;
        } else {
            sqlx::query("UPDATE campaign_failures SET status = $1, detail = $2 WHERE notification_id = $3")
                .bind(outcome.status.as_str())
                .bind(outcome.detail.clone())
                .bind(&outcome.notification_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(true)
    }

    /// Keeps, for listing, the outcomes among `outcomes` whose ids are in
    /// `not_sent`: one multi-row insert (failures are few, or all alike).
    async fn record_failures(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        outcomes: &[EmailDelivery],
        not_sent: &[String],
    ) -> anyhow::Result<()> {
        if not_sent.is_empty() {
            return Ok(());
        }
        let not_sent: std::collections::HashSet<&String> = not_sent.iter().collect();
        let failed: Vec<&EmailDelivery> = outcomes
            .iter()
            .filter(|outcome| not_sent.contains(&outcome.notification_id))
            .collect();
        let sql = format!(
            "INSERT INTO campaign_failures (notification_id, campaign_id, status, recipient, detail) VALUES {}
             ON CONFLICT (notification_id) DO NOTHING",
            servicekit::db::values_list(failed.len(), 5)
        );
        let mut insert = sqlx::query(&sql);
        for outcome in failed {
            insert = insert
                .bind(&outcome.notification_id)
                .bind(&outcome.campaign_id)
                .bind(outcome.status.as_str())
                .bind(outcome.recipient.clone())
                .bind(outcome.detail.clone());
        }
        insert.execute(&mut **tx).await?;
        Ok(())
    }
}

/// Adds `n` to `campaign_id`'s `column` in `table` (a count kept apart
/// from `campaigns`, one row per campaign); nothing for 0.
async fn add_to(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    column: &str,
    campaign_id: &str,
    n: i64,
) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO {table} (campaign_id, {column}) VALUES ($1, $2)
         ON CONFLICT (campaign_id) DO UPDATE SET {column} = {table}.{column} + excluded.{column}"
    ))
    .bind(campaign_id)
    .bind(n)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends campaign `id` if every recipient has a final outcome: a campaign
/// sending (or paused, with nothing left to pause) is `completed`; a
/// cancelled one stays `cancelled`, and gets its `completed_at`.
pub(super) async fn complete_if_done(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE campaigns
         SET status = CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE 'completed' END, completed_at = $1
         WHERE id = $2 AND status IN ('sending', 'paused', 'cancelled') AND completed_at IS NULL
           AND total IS NOT NULL
           AND sent + failed + COALESCE((SELECT not_expanded FROM campaign_not_expanded n WHERE n.campaign_id = $2), 0) >= total",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) fn to_campaign(row: sqlx::any::AnyRow) -> anyhow::Result<Campaign> {
    let total: Option<i64> = row.try_get(5)?;
    let sent: i64 = row.try_get(6)?;
    let not_sent: i64 = row.try_get(7)?;
    let dead_lettered: i64 = row.try_get(10)?;
    let suppressed: i64 = row.try_get(11)?;
    let cancelled_notified: i64 = row.try_get(14)?;
    let not_expanded: i64 = row.try_get(15)?;
    let total = total.unwrap_or(0);
    Ok(Campaign {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        subject: row.try_get(2)?,
        body: row.try_get(3)?,
        status: row.try_get::<String, _>(4)?.parse()?,
        progress: Progress {
            total,
            sent,
            failed: not_sent - dead_lettered - suppressed - cancelled_notified,
            dead_lettered,
            suppressed,
            cancelled: cancelled_notified + not_expanded,
            pending: (total - sent - not_sent - not_expanded).max(0),
        },
        created_at: row.try_get(8)?,
        completed_at: row.try_get(9)?,
        send_at: row.try_get(12)?,
        started_at: row.try_get(13)?,
        audience: row.try_get(16)?,
        resend_of: row.try_get(17)?,
        html: row.try_get(18)?,
        rate_per_s: row.try_get(19)?,
    })
}
