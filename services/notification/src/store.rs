//! The notification records: one per recipient of a campaign, moving
//! `pending → sent | failed` exactly once.

use contracts::{DeliveryStatus, NotificationRequested};
use serde::Serialize;
use sqlx::{AnyPool, Row};

/// The schema, created at start if missing.
pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS notifications (
        id TEXT PRIMARY KEY,
        campaign_id TEXT NOT NULL,
        user_id BIGINT NOT NULL,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT,
        updated_at BIGINT NOT NULL
    )"];

/// One notification as served.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Notification {
    /// Deterministic id (campaign, user).
    pub id: String,
    /// Its campaign.
    pub campaign_id: String,
    /// Its recipient.
    pub user_id: i64,
    /// Recipient address.
    pub email: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// The failure, if it failed.
    pub detail: Option<String>,
}

/// The notification records.
#[derive(Clone)]
pub struct NotificationStore {
    db: AnyPool,
}

impl NotificationStore {
    /// A store on `db` (schema applied).
    pub fn new(db: AnyPool) -> Self {
        Self { db }
    }

    /// Records `requests` in one transaction (a request already recorded
    /// is left as it is) and returns, for each, whether it is still pending
    /// (and so needs its email requested).
    pub async fn record(&self, requests: &[NotificationRequested]) -> anyhow::Result<Vec<bool>> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let mut pending = Vec::with_capacity(requests.len());
        for request in requests {
            sqlx::query(
                "INSERT INTO notifications (id, campaign_id, user_id, email, name, status, detail, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', NULL, $6)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&request.notification_id)
            .bind(&request.campaign_id)
            .bind(request.user_id)
            .bind(&request.email)
            .bind(&request.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let status: String = sqlx::query("SELECT status FROM notifications WHERE id = $1")
                .bind(&request.notification_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            pending.push(status == "pending");
        }
        tx.commit().await?;
        Ok(pending)
    }

    /// Moves each `(id, status, detail)` from `pending` to its final status
    /// in one transaction; returns for each whether it moved (false for a
    /// redelivered outcome).
    pub async fn finish(
        &self,
        outcomes: &[(String, DeliveryStatus, Option<String>)],
    ) -> anyhow::Result<Vec<bool>> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let mut moved = Vec::with_capacity(outcomes.len());
        for (id, status, detail) in outcomes {
            let result = sqlx::query(
                "UPDATE notifications SET status = $1, detail = $2, updated_at = $3
                 WHERE id = $4 AND status = 'pending'",
            )
            .bind(status.as_str())
            .bind(detail.clone())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            moved.push(result.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// One notification by id.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Notification>> {
        let row = sqlx::query(
            "SELECT id, campaign_id, user_id, email, status, detail FROM notifications WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        row.map(|row| {
            Ok(Notification {
                id: row.try_get(0)?,
                campaign_id: row.try_get(1)?,
                user_id: row.try_get(2)?,
                email: row.try_get(3)?,
                status: row.try_get(4)?,
                detail: row.try_get(5)?,
            })
        })
        .transpose()
    }

    /// How many notifications of `campaign_id` are in each status.
    pub async fn counts(&self, campaign_id: &str) -> anyhow::Result<Vec<(String, i64)>> {
        sqlx::query("SELECT status, COUNT(*) FROM notifications WHERE campaign_id = $1 GROUP BY status ORDER BY status")
            .bind(campaign_id)
            .fetch_all(&self.db)
            .await?
            .into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
