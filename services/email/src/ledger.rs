//! The send ledger: per notification id, `sending` (under a lease) then
//! `sent` or `failed`. It is what makes a redelivered email request harmless:
//! a request for an id already `sent` or `failed` only re-announces the
//! outcome, and an id `sending` under someone else's live lease is left to
//! them.

use std::collections::{HashMap, HashSet};

use contracts::DeliveryStatus;
use servicekit::db::{in_list, values_list};
use servicekit::now_ms;
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

/// A final outcome for the ledger: notification id, status, and the
/// failure's detail.
pub type Final = (String, DeliveryStatus, Option<String>);

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
    /// and that is not final yet, in one transaction of two statements (a
    /// multi-row upsert returning the leases taken, then a read of the
    /// others); says for each what the ledger holds. An id that appears
    /// twice is leased once: its second request is told `Busy`.
    pub async fn claim_all(&self, ids: &[String]) -> anyhow::Result<Vec<Claim>> {
        let now = now_ms();
        let mut seen = HashSet::new();
        let unique: Vec<&String> = ids.iter().filter(|id| seen.insert(id.as_str())).collect();
        let upsert_sql = format!(
            "INSERT INTO send_ledger (notification_id, status, owner, lease_until, attempts, detail)
             VALUES {}
             ON CONFLICT (notification_id) DO UPDATE
                SET owner = excluded.owner, lease_until = excluded.lease_until,
                    attempts = send_ledger.attempts + 1
                WHERE send_ledger.status = 'sending' AND send_ledger.lease_until < ${}
             RETURNING notification_id",
            values_list(unique.len(), 6),
            unique.len() * 6 + 1
        );
        let mut upsert = sqlx::query(&upsert_sql);
        for id in &unique {
            upsert = upsert
                .bind(*id)
                .bind("sending")
                .bind(&self.owner)
                .bind(now + self.lease_ms)
                .bind(1_i64)
                .bind(None::<String>);
        }
        upsert = upsert.bind(now);
        let select_sql = format!(
            "SELECT notification_id, status, detail FROM send_ledger WHERE notification_id IN {}",
            in_list(unique.len(), 1)
        );
        let mut select = sqlx::query(&select_sql);
        for id in &unique {
            select = select.bind(*id);
        }

        let mut tx = self.db.begin().await?;
        let acquired: HashSet<String> = upsert
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut claims: HashMap<String, Claim> = HashMap::new();
        for row in select.fetch_all(&mut *tx).await? {
            let id: String = row.try_get(0)?;
            let status: String = row.try_get(1)?;
            let detail: Option<String> = row.try_get(2)?;
            let claim = if acquired.contains(&id) {
                Claim::Acquired
            } else {
                match status.as_str() {
                    "sent" => Claim::Sent,
                    "failed" => Claim::Failed(detail.unwrap_or_default()),
                    _ => Claim::Busy,
                }
            };
            claims.insert(id, claim);
        }
        tx.commit().await?;
        Ok(ids
            .iter()
            .map(|id| match claims.get_mut(id) {
                // The first request of an id gets the lease; any later one
                // in the same batch finds it taken.
                Some(claim @ Claim::Acquired) => std::mem::replace(claim, Claim::Busy),
                Some(claim) => claim.clone(),
                None => Claim::Busy,
            })
            .collect())
    }

    /// Records final outcomes `(id, status, detail)` in one
    /// transaction; the sent ones, the common case, in one statement.
    pub async fn finish_all(&self, outcomes: &[Final]) -> anyhow::Result<Vec<()>> {
        let sent: Vec<&String> = outcomes
            .iter()
            .filter(|(_, status, _)| *status == DeliveryStatus::Sent)
            .map(|(id, _, _)| id)
            .collect();
        let mut tx = self.db.begin().await?;
        if !sent.is_empty() {
            let sql = format!(
                "UPDATE send_ledger SET status = 'sent' WHERE notification_id IN {}",
                in_list(sent.len(), 1)
            );
            let mut update = sqlx::query(&sql);
            for id in sent {
                update = update.bind(id);
            }
            update.execute(&mut *tx).await?;
        }
        for (id, status, detail) in outcomes
            .iter()
            .filter(|(_, status, _)| *status == DeliveryStatus::Failed)
        {
            sqlx::query("UPDATE send_ledger SET status = $1, detail = $2 WHERE notification_id = $3")
                .bind(status.as_str())
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
