//! The users table and the expansion cursors, owned by user-service alone.
//! Seeding fills the table from [`crate::seed`], which builds on this
//! module's [`User`]; nothing here calls back into it.

use serde::Serialize;
use servicekit::now_ms;
use sqlx::{AnyPool, Row};

/// The schema, created at start if missing.
pub const SCHEMA: &str = include_str!("schema.sql");

/// One user, as served and as sent in notifications.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct User {
    /// Its id, 1-based and dense after seeding.
    pub id: i64,
    /// Full name.
    pub name: String,
    /// Address.
    pub email: String,
}

/// How an expansion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The campaign's audience.
    pub total: i64,
    /// Of it, the users never requested because the campaign was cancelled
    /// first (0 for an expansion that went to its end).
    pub not_expanded: i64,
}

/// The users and expansion cursors.
#[derive(Clone)]
pub struct UserStore {
    db: AnyPool,
}

impl UserStore {
    /// A store on `db` (schema already applied).
    pub fn new(db: AnyPool) -> Self {
        Self { db }
    }

    /// The user with `id`, if any.
    pub async fn get(&self, id: i64) -> anyhow::Result<Option<User>> {
        let row = sqlx::query("SELECT id, name, email FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        row.map(to_user).transpose()
    }

    /// The user whose address is `email`, exactly, if any.
    pub async fn by_email(&self, email: &str) -> anyhow::Result<Option<User>> {
        let row = sqlx::query("SELECT id, name, email FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.db)
            .await?;
        row.map(to_user).transpose()
    }

    /// Up to `limit` users with ids above `after`, in id order (keyset
    /// pagination: stable and cheap however deep the page).
    pub async fn page(&self, after: i64, limit: i64) -> anyhow::Result<Vec<User>> {
        sqlx::query("SELECT id, name, email FROM users WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.db)
            .await?
            .into_iter()
            .map(to_user)
            .collect()
    }

    /// How many users have an id up to `id`.
    pub async fn count_up_to(&self, id: i64) -> anyhow::Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM users WHERE id <= $1")
            .bind(id)
            .fetch_one(&self.db)
            .await?
            .try_get(0)?)
    }

    /// Every campaign whose audience this service has expanded (or begun
    /// to).
    pub async fn expanded_campaigns(&self) -> anyhow::Result<Vec<String>> {
        sqlx::query("SELECT campaign_id FROM expansions ORDER BY campaign_id")
            .fetch_all(&self.db)
            .await?
            .into_iter()
            .map(|row| Ok(row.try_get(0)?))
            .collect()
    }

    /// Erases user `id` at `email`: their row goes, and their suppression
    /// entry, if any, keeps only the hash of the address; nothing of them
    /// is left in the file ([`servicekit::erasure`]).
    pub async fn erase(&self, id: i64, email: &str) -> anyhow::Result<()> {
        let mut tx = servicekit::erasure::begin(&self.db).await?;
        sqlx::query(
            "UPDATE suppressions SET address = NULL, user_id = NULL, detail = NULL WHERE address_hash = $1",
        )
        .bind(contracts::consent::address_hash(email))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        servicekit::erasure::commit(&self.db, tx).await
    }

    /// The expansion cursor of `campaign_id`, created at 0 if new:
    /// `(last user id published, how it ended once it has)`.
    pub async fn expansion(&self, campaign_id: &str) -> anyhow::Result<(i64, Option<Ended>)> {
        sqlx::query(
            "INSERT INTO expansions (campaign_id, cursor, total, done) VALUES ($1, 0, NULL, 0)
             ON CONFLICT (campaign_id) DO NOTHING",
        )
        .bind(campaign_id)
        .execute(&self.db)
        .await?;
        let row = sqlx::query(
            "SELECT cursor, total,
                 COALESCE((SELECT not_expanded FROM expansion_cancellations c WHERE c.campaign_id = $1), 0)
             FROM expansions WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_one(&self.db)
        .await?;
        let total: Option<i64> = row.try_get(1)?;
        let ended = total.map(|total| {
            Ok::<_, sqlx::Error>(Ended {
                total,
                not_expanded: row.try_get(2)?,
            })
        });
        Ok((row.try_get(0)?, ended.transpose()?))
    }

    /// Moves the cursor forward (never back: a slower duplicate handler
    /// cannot rewind it).
    pub async fn advance(&self, campaign_id: &str, cursor: i64) -> anyhow::Result<()> {
        sqlx::query("UPDATE expansions SET cursor = $1 WHERE campaign_id = $2 AND cursor < $1")
            .bind(cursor)
            .bind(campaign_id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Takes the expansion lease of `campaign_id` for `owner` until
    /// `until_ms`, if it is free, expired, or already `owner`'s (a
    /// redelivered announcement in the same process). Returns
    /// whether `owner` holds it now.
    pub async fn take_lease(&self, campaign_id: &str, owner: &str, until_ms: i64) -> anyhow::Result<bool> {
        let taken = sqlx::query(
            "INSERT INTO expansion_leases (campaign_id, owner, lease_until) VALUES ($1, $2, $3)
             ON CONFLICT (campaign_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
             WHERE expansion_leases.owner = excluded.owner OR expansion_leases.lease_until < $4",
        )
        .bind(campaign_id)
        .bind(owner)
        .bind(until_ms)
        .bind(now_ms())
        .execute(&self.db)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Extends `owner`'s lease of `campaign_id` to `until_ms`; false when
    /// the lease has passed to another owner.
    pub async fn renew_lease(&self, campaign_id: &str, owner: &str, until_ms: i64) -> anyhow::Result<bool> {
        let renewed =
            sqlx::query("UPDATE expansion_leases SET lease_until = $1 WHERE campaign_id = $2 AND owner = $3")
                .bind(until_ms)
                .bind(campaign_id)
                .bind(owner)
                .execute(&self.db)
                .await?
                .rows_affected();
        Ok(renewed == 1)
    }

    /// Records that the expansion has ended as `ended` says, and frees its
    /// lease.
    pub async fn finish(&self, campaign_id: &str, ended: Ended) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query("UPDATE expansions SET total = $1, done = 1 WHERE campaign_id = $2")
            .bind(ended.total)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        if ended.not_expanded > 0 {
            sqlx::query(
                "INSERT INTO expansion_cancellations (campaign_id, not_expanded) VALUES ($1, $2)
                 ON CONFLICT (campaign_id) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(ended.not_expanded)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM expansion_leases WHERE campaign_id = $1")
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn to_user(row: sqlx::any::AnyRow) -> anyhow::Result<User> {
    Ok(User {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        email: row.try_get(2)?,
    })
}
