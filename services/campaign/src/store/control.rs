//! Changing a campaign's course: pause, resume, cancel (and, while it
//! waits, reschedule: [`super::schedule`]).
//!
//! Each change is one statement guarded by the statuses it may leave, so
//! changes racing on any instances (and with the scheduler's start, and
//! with the last outcome's completion) apply one at a time, each or none;
//! a change the status does not allow changes nothing and says what the
//! status is. The database is the truth; the control board that the other
//! services read follows it ([`crate::control`]).

use servicekit::now_ms;

use super::{Campaign, CampaignStore};

/// What a change came to.
#[derive(Debug)]
pub enum Change {
    /// Done: the campaign as it is now.
    Done(Campaign),
    /// The campaign's status does not allow it: nothing changed.
    Refused(Campaign),
    /// No campaign with that id.
    NotFound,
}

impl CampaignStore {
    /// Pauses campaign `id` if it is being expanded or sent.
    pub async fn pause(&self, id: &str) -> anyhow::Result<Change> {
        let changed = sqlx::query(
            "UPDATE campaigns SET status = 'paused' WHERE id = $1 AND status IN ('expanding', 'sending')",
        )
        .bind(id)
        .execute(&self.db)
        .await?
        .rows_affected();
        self.change(id, changed).await
    }

    /// Resumes campaign `id` if it is paused: `sending`, or `expanding`
    /// while its audience is not known yet; `completed` at once if every
    /// recipient has an outcome already.
    pub async fn resume(&self, id: &str) -> anyhow::Result<Change> {
        let update = sqlx::query(
            "UPDATE campaigns SET status = CASE WHEN total IS NULL THEN 'expanding' ELSE 'sending' END
             WHERE id = $1 AND status = 'paused'",
        )
        .bind(id);
        self.change_then_complete(id, update).await
    }

    /// Cancels campaign `id` unless it has ended: a scheduled one ends at
    /// once (nothing of it was sent); one being expanded, sent or paused
    /// is `cancelled`, and gets its `completed_at` when every recipient
    /// has an outcome (those not sent: `cancelled`).
    pub async fn cancel(&self, id: &str) -> anyhow::Result<Change> {
        let update = sqlx::query(
            "UPDATE campaigns
             SET completed_at = CASE WHEN status = 'scheduled' THEN $1 ELSE NULL END, status = 'cancelled'
             WHERE id = $2 AND status IN ('scheduled', 'expanding', 'sending', 'paused')",
        )
        .bind(now_ms())
        .bind(id);
        self.change_then_complete(id, update).await
    }

    /// The campaigns the other services must not send for: paused, or
    /// cancelled and not yet settled.
    pub async fn stopped(&self) -> anyhow::Result<Vec<Campaign>> {
        sqlx::query(&format!(
            "SELECT {} FROM campaigns WHERE status = 'paused' OR (status = 'cancelled' AND completed_at IS NULL)",
            super::COLUMNS
        ))
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .map(super::to_campaign)
        .collect()
    }

    /// Runs `update` (a change of campaign `id`'s status) and, in the same
    /// transaction, completes the campaign if every recipient has an
    /// outcome already: a change that can end a campaign.
    async fn change_then_complete<'q>(
        &self,
        id: &str,
        update: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> anyhow::Result<Change> {
        let mut tx = self.db.begin().await?;
        let changed = update.execute(&mut *tx).await?.rows_affected();
        super::complete_if_done(&mut tx, id).await?;
        tx.commit().await?;
        self.change(id, changed).await
    }

    /// What a change of `changed` rows to campaign `id` came to.
    pub(super) async fn change(&self, id: &str, changed: u64) -> anyhow::Result<Change> {
        Ok(match (self.get(id).await?, changed) {
            (None, _) => Change::NotFound,
            (Some(campaign), 0) => Change::Refused(campaign),
            (Some(campaign), _) => Change::Done(campaign),
        })
    }
}
