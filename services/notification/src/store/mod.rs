//! The notification records: one per recipient of a campaign, moving
//! `pending → sent | failed` exactly once; and each campaign's templates,
//! stored once.

use std::collections::HashSet;

use contracts::{DeliveryStatus, EmailDelivery, NotificationRequested};
use serde::Serialize;
use servicekit::db::{in_list, ListParams};
use servicekit::now_ms;
use sqlx::{AnyPool, Row};

mod templates;
pub use templates::StoredTemplates;

/// The schema, created at start if missing.
pub const SCHEMA: &str = include_str!("../schema.sql");

/// A campaign's notifications counted per status (`$1` the campaign's
/// id), through `notifications_by_campaign`.
pub const COUNTS: &str =
    "SELECT status, COUNT(*) FROM notifications WHERE campaign_id = $1 GROUP BY status ORDER BY status";

/// What an erasure blanks of an erased user's notifications
/// ([`servicekit::erasure::Eraser`]): their address, name and the server's
/// reply; the rows, and so the campaigns' counts, stay.
pub const ERASE: &str = "UPDATE notifications SET email = '', name = '', detail = NULL WHERE id";

/// One notification as served.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Notification {
    /// Deterministic id (campaign, user).
    pub id: String,
    /// Its campaign.
    pub campaign_id: String,
    /// Its recipient.
    pub user_id: i64,
    /// Recipient address.
    pub email: String,
    /// Where it stands.
    #[schema(inline)]
    pub status: NotificationStatus,
    /// The failure, if it failed.
    pub detail: Option<String>,
}

/// Where one notification stands: `pending` until its email's outcome
/// (`held` while its campaign is paused), then `sent`, `failed`,
/// `suppressed`, `cancelled` or `dead_lettered` (final too, but the one a
/// replayed dead letter may replace). Stored as that text in
/// `notifications.status` and served as the same string, so neither the
/// rows nor the API changed when it stopped being a `String`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Its email is requested, with no outcome yet.
    Pending,
    /// The mail server accepted its email.
    Sent,
    /// Its email failed for good.
    Failed,
    /// The pipeline gave up on it (see [`DeliveryStatus::DeadLettered`]).
    DeadLettered,
    /// Not sent: its recipient is on the suppression list.
    Suppressed,
    /// Not sent: its campaign was cancelled first.
    Cancelled,
    /// Held back while its campaign is paused: requested again when it
    /// resumes.
    Held,
}

impl NotificationStatus {
    /// The status as stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Suppressed => "suppressed",
            Self::Cancelled => "cancelled",
            Self::Held => "held",
        }
    }
}

/// A notification's status once its email has an outcome.
impl From<DeliveryStatus> for NotificationStatus {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Sent => Self::Sent,
            DeliveryStatus::Failed => Self::Failed,
            DeliveryStatus::DeadLettered => Self::DeadLettered,
            DeliveryStatus::Suppressed => Self::Suppressed,
            DeliveryStatus::Cancelled => Self::Cancelled,
            DeliveryStatus::Held => Self::Held,
        }
    }
}

// How the status column is read back (sqlx's `Type` derive has no `Any`
// support: it implements the trait for each concrete driver only).
contracts::read_back_by_name!(
    NotificationStatus,
    "notification",
    [
        Self::Pending,
        Self::Sent,
        Self::Failed,
        Self::DeadLettered,
        Self::Suppressed,
        Self::Cancelled,
        Self::Held
    ]
);

/// Where a notification request stands once recorded
/// ([`NotificationStore::record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Seen for the first time: nothing was done for it yet.
    New,
    /// Recorded before and not settled: a redelivery (its handler died or
    /// lost Redis before the ack) or a replayed dead letter. Its email may
    /// have been requested, and even sent, already, so only email-service,
    /// which holds the send ledger, may settle it.
    Again,
    /// Settled already (or held back): nothing more to do.
    Settled,
}

/// The columns of a [`Notification`], as [`to_notification`] reads them.
const NOTIFICATION: &str = "id, campaign_id, user_id, email, status, detail";

/// A row of [`NOTIFICATION`].
fn to_notification(row: sqlx::any::AnyRow) -> anyhow::Result<Notification> {
    Ok(Notification {
        id: row.try_get(0)?,
        campaign_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        email: row.try_get(3)?,
        status: row.try_get::<String, _>(4)?.parse()?,
        detail: row.try_get(5)?,
    })
}

/// The notification records.
#[derive(Clone)]
pub struct NotificationStore {
    db: AnyPool,
    /// How its batch statements write their lists.
    lists: ListParams,
}

impl NotificationStore {
    /// A store on `db` (schema applied).
    pub fn new(db: AnyPool) -> Self {
        let lists = ListParams::of(&db);
        Self { db, lists }
    }

    /// Records `requests` in one transaction (a request already recorded
    /// is left as it is) and returns where each stands: new, recorded
    /// before and not settled (its email may have been requested already),
    /// or settled.
    pub async fn record(&self, requests: &[NotificationRequested]) -> anyhow::Result<Vec<Recorded>> {
        let now = now_ms();
        let insert_sql = format!(
            "INSERT INTO notifications (id, campaign_id, user_id, email, name, status, detail, updated_at)
             VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
            self.lists.values(requests.len(), 8)
        );
        let mut insert = sqlx::query(&insert_sql);
        for request in requests {
            insert = insert
                .bind(&request.notification_id)
                .bind(&request.campaign_id)
                .bind(request.user_id)
                .bind(&request.email)
                .bind(&request.name)
                .bind(NotificationStatus::Pending.as_str())
                .bind(None::<String>)
                .bind(now);
        }
        let select_sql = format!(
            "SELECT id FROM notifications WHERE status IN ('pending', 'dead_lettered') AND id IN {}",
            self.lists.among(requests.len())
        );
        let mut select = sqlx::query(&select_sql);
        for request in requests {
            select = select.bind(&request.notification_id);
        }
        let ids = |rows: Vec<sqlx::any::AnyRow>| {
            rows.into_iter()
                .map(|row| row.try_get(0))
                .collect::<Result<HashSet<String>, _>>()
        };
        let mut tx = self.db.begin().await?;
        let inserted = ids(insert.fetch_all(&mut *tx).await?)?;
        // The common case, every request new: nothing else to read.
        let pending = if inserted.len() == requests.len() {
            HashSet::new()
        } else {
            ids(select.fetch_all(&mut *tx).await?)?
        };
        tx.commit().await?;
        Ok(requests
            .iter()
            .map(|request| {
                let id = &request.notification_id;
                if inserted.contains(id) {
                    Recorded::New
                } else if pending.contains(id) {
                    Recorded::Again
                } else {
                    Recorded::Settled
                }
            })
            .collect())
    }

    /// Moves each outcome's notification from `pending` (or `held`) to its
    /// final status in one transaction; an outcome for a notification
    /// already final (a redelivery) changes nothing, except that a sent or
    /// failed outcome replaces `dead_lettered` (a replayed dead letter). A
    /// `held` outcome holds a pending notification back
    /// ([`NotificationStore::hold`]). Successes, the common case, share one
    /// statement.
    pub async fn finish(&self, outcomes: &[EmailDelivery]) -> anyhow::Result<()> {
        let now = now_ms();
        let (held, outcomes): (Vec<&EmailDelivery>, Vec<&EmailDelivery>) = outcomes
            .iter()
            .partition(|outcome| outcome.status == DeliveryStatus::Held);
        let (sent, not_sent): (Vec<&EmailDelivery>, Vec<&EmailDelivery>) = outcomes
            .into_iter()
            .partition(|outcome| outcome.status == DeliveryStatus::Sent);
        let mut tx = self.db.begin().await?;
        if !held.is_empty() {
            let held: Vec<(String, String)> = held
                .iter()
                .map(|outcome| (outcome.notification_id.clone(), outcome.campaign_id.clone()))
                .collect();
            hold(&mut tx, &held).await?;
        }
        if !sent.is_empty() {
            let sql = format!(
                "UPDATE notifications SET status = 'sent', detail = NULL, updated_at = $1
                 WHERE status IN ('pending', 'held', 'dead_lettered') AND id IN {}",
                in_list(sent.len(), 2)
            );
            let mut update = sqlx::query(&sql).bind(now);
            for outcome in sent {
                update = update.bind(&outcome.notification_id);
            }
            update.execute(&mut *tx).await?;
        }
        for outcome in not_sent {
            // A failure may replace a dead letter; a dead letter only
            // `pending` (or `held`).
            let replaces = match outcome.status {
                DeliveryStatus::DeadLettered => NotificationStatus::Pending,
                _ => NotificationStatus::DeadLettered,
            };
            sqlx::query(
                "UPDATE notifications SET status = $1, detail = $2, updated_at = $3
                 WHERE id = $4 AND status IN ('pending', 'held', $5)",
            )
            .bind(NotificationStatus::from(outcome.status).as_str())
            .bind(outcome.detail.clone())
            .bind(now)
            .bind(&outcome.notification_id)
            .bind(replaces.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Holds back the pending notifications among `held` (`(id, campaign
    /// id)`), whose campaign is paused: `held` until the round of
    /// [`crate::held`] requests them again or cancels them.
    pub async fn hold(&self, held: &[(String, String)]) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        hold(&mut tx, held).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The campaigns with notifications held back, each with its
    /// generation (moved by every hold).
    pub async fn held_campaigns(&self) -> anyhow::Result<Vec<(String, i64)>> {
        sqlx::query("SELECT campaign_id, generation FROM held_campaigns ORDER BY campaign_id")
            .fetch_all(&self.db)
            .await?
            .into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Up to `limit` notifications of `campaign_id` held back, as the
    /// requests they came from.
    pub async fn held(&self, campaign_id: &str, limit: i64) -> anyhow::Result<Vec<NotificationRequested>> {
        sqlx::query(
            "SELECT id, user_id, email, name FROM notifications
             WHERE campaign_id = $1 AND status = 'held' ORDER BY id LIMIT $2",
        )
        .bind(campaign_id)
        .bind(limit)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .map(|row| {
            Ok(NotificationRequested {
                notification_id: row.try_get(0)?,
                campaign_id: campaign_id.to_string(),
                user_id: row.try_get(1)?,
                email: row.try_get(2)?,
                name: row.try_get(3)?,
                suppressed: false,
            })
        })
        .collect()
    }

    /// Moves the notifications among `ids` that are still held back to
    /// `pending` (requested again).
    pub async fn release(&self, ids: &[String]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE notifications SET status = 'pending', updated_at = $1 WHERE status = 'held' AND id IN {}",
            in_list(ids.len(), 2)
        );
        let mut update = sqlx::query(&sql).bind(now_ms());
        for id in ids {
            update = update.bind(id);
        }
        update.execute(&self.db).await?;
        Ok(())
    }

    /// Forgets that `campaign_id` has notifications held back, if no hold
    /// happened since `generation` was read.
    pub async fn forget_held(&self, campaign_id: &str, generation: i64) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM held_campaigns WHERE campaign_id = $1 AND generation = $2")
            .bind(campaign_id)
            .bind(generation)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Notes on a sent notification that its email bounced or was
    /// reported later (`detail`); its status, and so the counts, stay.
    pub async fn note_after_send(&self, id: &str, detail: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE notifications SET detail = $1, updated_at = $2 WHERE id = $3 AND status = 'sent'",
        )
        .bind(detail)
        .bind(now_ms())
        .bind(id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// One notification by id.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Notification>> {
        let row = sqlx::query(&format!("SELECT {NOTIFICATION} FROM notifications WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        row.map(to_notification).transpose()
    }

    /// Every notification of `campaign_id`, in no set order, handed to
    /// `each` `batch` at a time as they are read: one query, streamed, so
    /// a campaign of any size takes bounded memory. Stops at the first
    /// error of `each` (the reader gone).
    pub async fn each_of_campaign<F, Fut>(
        &self,
        campaign_id: &str,
        batch: usize,
        mut each: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut(Vec<Notification>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let sql = format!("SELECT {NOTIFICATION} FROM notifications WHERE campaign_id = $1");
        let mut rows = sqlx::query(&sql).bind(campaign_id).fetch(&self.db);
        let mut read = Vec::with_capacity(batch);
        while let Some(row) = futures::TryStreamExt::try_next(&mut rows).await? {
            read.push(to_notification(row)?);
            if read.len() == batch {
                each(std::mem::replace(&mut read, Vec::with_capacity(batch))).await?;
            }
        }
        if !read.is_empty() {
            each(read).await?;
        }
        Ok(())
    }

    /// How many notifications of `campaign_id` are in each status.
    pub async fn counts(&self, campaign_id: &str) -> anyhow::Result<Vec<(String, i64)>> {
        sqlx::query(COUNTS)
            .bind(campaign_id)
            .fetch_all(&self.db)
            .await?
            .into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }
}

/// Holds back the pending notifications among `held` (`(id, campaign
/// id)`) in `tx`, and moves the generation of each of their campaigns.
async fn hold(tx: &mut sqlx::Transaction<'_, sqlx::Any>, held: &[(String, String)]) -> anyhow::Result<()> {
    let sql = format!(
        "UPDATE notifications SET status = 'held', updated_at = $1 WHERE status = 'pending' AND id IN {}",
        in_list(held.len(), 2)
    );
    let mut update = sqlx::query(&sql).bind(now_ms());
    for (id, _) in held {
        update = update.bind(id);
    }
    update.execute(&mut **tx).await?;
    let mut campaigns: Vec<&str> = held.iter().map(|(_, campaign)| campaign.as_str()).collect();
    campaigns.sort_unstable();
    campaigns.dedup();
    for campaign in campaigns {
        sqlx::query(
            "INSERT INTO held_campaigns (campaign_id, generation) VALUES ($1, 1)
             ON CONFLICT (campaign_id) DO UPDATE SET generation = held_campaigns.generation + 1",
        )
        .bind(campaign)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API serves a status as the text the database holds, and that
    /// text reads back as the same status.
    #[test]
    fn a_status_is_served_as_stored_and_read_back_as_itself() {
        for status in [
            NotificationStatus::Pending,
            NotificationStatus::Sent,
            NotificationStatus::Failed,
            NotificationStatus::DeadLettered,
            NotificationStatus::Suppressed,
            NotificationStatus::Cancelled,
            NotificationStatus::Held,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(status.as_str().parse::<NotificationStatus>(), Ok(status));
        }
        assert!("unknown".parse::<NotificationStatus>().is_err());
    }
}
