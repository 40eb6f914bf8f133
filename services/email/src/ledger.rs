//! The send ledger: per notification id, `sending` (under a lease) then
//! `sent` or `failed`. It is what makes a redelivered email request harmless:
//! a request for an id already `sent` or `failed` only re-announces the
//! outcome, and an id `sending` under someone else's live lease is left to
//! them.

use sqlx::{AnyPool, Row};

/// The schema, created at start if missing.
pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS send_ledger (
        notification_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        owner TEXT NOT NULL,
        lease_until BIGINT NOT NULL,
        attempts BIGINT NOT NULL,
        detail TEXT
    )"];

/// What the ledger says about an id when a send is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lease is ours: send.
    Acquired,
    /// Already sent: do not send again.
    Sent,
    /// Already failed for good, with this detail.
    Failed(String),
    /// Another sender holds a live lease.
    Busy,
}

/// The ledger.
#[derive(Clone)]
pub struct Ledger {
    db: AnyPool,
    owner: String,
    lease_ms: i64,
}

impl Ledger {
    /// A ledger on `db` whose leases are taken in the name of `owner`.
    pub fn new(db: AnyPool, owner: String, lease_ms: i64) -> Self {
        Self { db, owner, lease_ms }
    }

    /// Releases the leases a previous run of this same instance held when
    /// it died (an instance name is unique among live ones, so they are
    /// stale).
    pub async fn release_stale_leases(&self) -> anyhow::Result<u64> {
        let result =
            sqlx::query("UPDATE send_ledger SET lease_until = 0 WHERE status = 'sending' AND owner = $1")
                .bind(&self.owner)
                .execute(&self.db)
                .await?;
        Ok(result.rows_affected())
    }

    /// Takes the lease on `id` if nobody holds a live one and it is not
    /// final yet.
    pub async fn claim(&self, id: &str) -> anyhow::Result<Claim> {
        let now = now_ms();
        let taken = sqlx::query(
            "INSERT INTO send_ledger (notification_id, status, owner, lease_until, attempts, detail)
             VALUES ($1, 'sending', $2, $3, 1, NULL)
             ON CONFLICT (notification_id) DO UPDATE
                SET owner = $2, lease_until = $3, attempts = send_ledger.attempts + 1
                WHERE send_ledger.status = 'sending' AND send_ledger.lease_until < $4",
        )
        .bind(id)
        .bind(&self.owner)
        .bind(now + self.lease_ms)
        .bind(now)
        .execute(&self.db)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(Claim::Acquired);
        }
        let row = sqlx::query("SELECT status, detail FROM send_ledger WHERE notification_id = $1")
            .bind(id)
            .fetch_one(&self.db)
            .await?;
        let status: String = row.try_get(0)?;
        let detail: Option<String> = row.try_get(1)?;
        Ok(match status.as_str() {
            "sent" => Claim::Sent,
            "failed" => Claim::Failed(detail.unwrap_or_default()),
            _ => Claim::Busy,
        })
    }

    /// Records the final outcome of `id`.
    pub async fn finish(&self, id: &str, status: &str, detail: Option<&str>) -> anyhow::Result<()> {
        sqlx::query("UPDATE send_ledger SET status = $1, detail = $2 WHERE notification_id = $3")
            .bind(status)
            .bind(detail)
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Gives the lease on `id` back after a transient failure, so the retry
    /// need not wait for it to expire.
    pub async fn release(&self, id: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE send_ledger SET lease_until = 0 WHERE notification_id = $1 AND status = 'sending'",
        )
        .bind(id)
        .execute(&self.db)
        .await?;
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
