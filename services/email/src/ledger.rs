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

/// A final outcome for the ledger: notification id, `sent` or `failed`,
/// and the failure's detail.
pub type Final = (String, &'static str, Option<String>);

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

    /// Takes the lease on each of `ids` that nobody holds a live lease on
    /// and that is not final yet, in one transaction; says for each what
    /// the ledger holds.
    pub async fn claim_all(&self, ids: &[String]) -> anyhow::Result<Vec<Claim>> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let mut claims = Vec::with_capacity(ids.len());
        for id in ids {
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
            .execute(&mut *tx)
            .await?;
            if taken.rows_affected() == 1 {
                claims.push(Claim::Acquired);
                continue;
            }
            let row = sqlx::query("SELECT status, detail FROM send_ledger WHERE notification_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let status: String = row.try_get(0)?;
            let detail: Option<String> = row.try_get(1)?;
            claims.push(match status.as_str() {
                "sent" => Claim::Sent,
                "failed" => Claim::Failed(detail.unwrap_or_default()),
                _ => Claim::Busy,
            });
        }
        tx.commit().await?;
        Ok(claims)
    }

    /// Records final outcomes `(id, "sent" | "failed", detail)` in one
    /// transaction.
    pub async fn finish_all(&self, outcomes: &[Final]) -> anyhow::Result<Vec<()>> {
        let mut tx = self.db.begin().await?;
        for (id, status, detail) in outcomes {
            sqlx::query("UPDATE send_ledger SET status = $1, detail = $2 WHERE notification_id = $3")
                .bind(*status)
                .bind(detail.clone())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(vec![(); outcomes.len()])
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
