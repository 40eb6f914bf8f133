//! The suppression list, owned by user-service: one row per address that
//! asked (or was found) not to be emailed, keyed by [`address_hash`], with
//! why, when and from which campaign.
//!
//! A row is kept when an address comes off the list (`suppressed = 0`), so
//! that of two changes read out of order the later one still wins: each
//! change applies only if it was asked no earlier than the row's. Its
//! table is in [`crate::store::SCHEMA`].

use contracts::consent::{address_hash, SuppressionReason};
use serde::Serialize;
use servicekit::db::rows_among;
use sqlx::{AnyPool, Row};

use crate::store::User;

/// One entry of the list, as served.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Suppression {
    /// The key of the list: SHA-256 of the address, lower-cased.
    pub address_hash: String,
    /// The address (`null` once its user is erased: the hash alone keeps
    /// them suppressed).
    pub address: Option<String>,
    /// The user it was found for, if any.
    pub user_id: Option<i64>,
    /// Why.
    pub reason: SuppressionReason,
    /// The campaign it came from, if any.
    pub campaign_id: Option<String>,
    /// The server's reply or the report's status, for bounces.
    pub detail: Option<String>,
    /// When it was asked, in milliseconds since the epoch.
    pub changed_at: i64,
}

/// A change to apply to the list.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The address.
    pub address: &'a str,
    /// The user, when known.
    pub user_id: Option<i64>,
    /// On the list, or off it.
    pub suppress: bool,
    /// Why.
    pub reason: SuppressionReason,
    /// From which campaign.
    pub campaign_id: Option<&'a str>,
    /// A bounce's reply.
    pub detail: Option<&'a str>,
    /// When it was asked.
    pub at: i64,
}

/// The suppression list.
#[derive(Clone)]
pub struct SuppressionStore {
    db: AnyPool,
}

impl SuppressionStore {
    /// The list on `db` (schema applied).
    pub fn new(db: AnyPool) -> Self {
        Self { db }
    }

    /// Applies `change` unless the address's row changed later already;
    /// says whether it applied.
    pub async fn apply(&self, change: &Change<'_>) -> anyhow::Result<bool> {
        let applied = sqlx::query(
            "INSERT INTO suppressions (address_hash, address, user_id, suppressed, reason, campaign_id, detail, changed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (address_hash) DO UPDATE SET address = excluded.address,
                 user_id = COALESCE(excluded.user_id, suppressions.user_id),
                 suppressed = excluded.suppressed, reason = excluded.reason,
                 campaign_id = excluded.campaign_id, detail = excluded.detail,
                 changed_at = excluded.changed_at
             WHERE excluded.changed_at >= suppressions.changed_at",
        )
        .bind(address_hash(change.address))
        .bind(change.address.trim())
        .bind(change.user_id)
        .bind(i64::from(change.suppress))
        .bind(change.reason.as_str())
        .bind(change.campaign_id)
        .bind(change.detail)
        .bind(change.at)
        .execute(&self.db)
        .await?
        .rows_affected();
        Ok(applied == 1)
    }

    /// The entries on the list with hashes above `after`, up to `limit`,
    /// in hash order (keyset pages).
    pub async fn page(&self, after: &str, limit: i64) -> anyhow::Result<Vec<Suppression>> {
        sqlx::query(
            "SELECT address_hash, address, user_id, reason, campaign_id, detail, changed_at
             FROM suppressions WHERE suppressed = 1 AND address_hash > $1
             ORDER BY address_hash LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .map(|row| {
            Ok(Suppression {
                address_hash: row.try_get(0)?,
                address: row.try_get(1)?,
                user_id: row.try_get(2)?,
                reason: row.try_get::<String, _>(3)?.parse()?,
                campaign_id: row.try_get(4)?,
                detail: row.try_get(5)?,
                changed_at: row.try_get(6)?,
            })
        })
        .collect()
    }

    /// Which of `users` are on the list: one query for a page of the
    /// audience, not one per user.
    pub async fn suppressed_among(&self, users: &[User]) -> anyhow::Result<Vec<bool>> {
        let hashes: Vec<String> = users.iter().map(|user| address_hash(&user.email)).collect();
        let listed: std::collections::HashSet<String> = rows_among(
            &self.db,
            "SELECT address_hash FROM suppressions WHERE suppressed = 1 AND address_hash IN",
            &hashes,
        )
        .await?
        .into_iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
        Ok(hashes.iter().map(|hash| listed.contains(hash)).collect())
    }
}
