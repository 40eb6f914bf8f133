//! The send ledger: per notification id, `sending` (under a lease) then
//! `sent` or `failed`. It is what makes a redelivered email request harmless:
//! a request for an id already `sent` or `failed` only re-announces the
//! outcome, and an id `sending` under someone else's live lease is left to
//! them.
//!
//! Leases are fenced: every take-over of an id bumps its `attempts`, and a
//! lease is the pair (owner, attempts). Renewing, releasing and finishing
//! check both in their `WHERE`, so a sender that lost its lease (it was too
//! slow, or the id was taken over) can no longer change the id's row, and
//! the holder renews its leases while its sends run, so a slow send keeps
//! its lease.
//!
//! A lease ends one of two ways without an outcome, and the ledger keeps
//! them apart: *given back* (`lease_until = 0`: the send failed before
//! anything was handed over, or was not to be made) or *lapsed* (its
//! sender died, or the send was uncertain: the message may have gone out).
//! The next claim of a lapsed lease says so ([`Claim::Resumed`]), so that
//! the email is finished rather than settled as never sent; and a resumed
//! lease given back stays lapsed, since the attempt before it may have
//! handed the message over. While an id
//! is `sending`, its `detail` column carries that mark (`lapsed`); it
//! holds a failure's detail once `failed`.
//!
//! Lease times are the database's clock, never an instance's: every
//! statement that sets or compares `lease_until` computes "now" in SQL
//! ([`servicekit::db::now_ms_sql`]), so instances whose clocks disagree
//! still agree on when a lease ends.

use std::collections::{HashMap, HashSet};

use contracts::DeliveryStatus;
use servicekit::db::{now_ms_sql, values_list, ListParams};
use sqlx::{AnyPool, Row};

/// The schema, created at start if missing: the ledger, and the copy of
/// the suppression list ([`crate::suppressed`]) beside it.
pub const SCHEMA: &str = include_str!("schema.sql");

/// What an erasure blanks in the ledger ([`servicekit::erasure::Eraser`]):
/// the servers' replies about an erased user's notifications (a refusal
/// often quotes the address); the rows stay, so that a redelivered request
/// is still not sent again.
pub const ERASE: &str = "UPDATE send_ledger SET detail = NULL WHERE notification_id";

/// Where an id stands in the ledger: `sending` under a lease, then `sent`
/// or `failed` for good. Stored as that text in `send_ledger.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerStatus {
    /// A sender holds (or held) the lease and may be sending.
    Sending,
    /// The server accepted the email: it is never sent again.
    Sent,
    /// It failed for good: it is never tried again.
    Failed,
}

impl LedgerStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

// How the status column is read back (sqlx's `Type` derive has no `Any`
// support: it implements the trait for each concrete driver only).
contracts::read_back_by_name!(
    LedgerStatus,
    "send ledger",
    [Self::Sending, Self::Sent, Self::Failed]
);

/// What the ledger says about an id when a send is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lease is ours, with this generation: send.
    Acquired(Generation),
    /// The lease is ours, with this generation, after an earlier lease
    /// lapsed without an outcome (its sender died mid-send, or the send
    /// was uncertain): the email may have gone out already. It is in
    /// flight: finish it (a possible duplicate, with the same
    /// `Message-ID`) rather than settle it as never sent.
    Resumed(Generation),
    /// Already sent: do not send again.
    Sent,
    /// Already failed for good, with this detail.
    Failed(String),
    /// Another sender holds a live lease.
    Busy,
}

/// Which take-over of an id a lease is (its `attempts` when taken).
pub type Generation = i64;

/// A lease held: notification id and generation.
pub type Lease = (String, Generation);

/// A final outcome for the ledger: the lease it was sent under, status,
/// and the failure's detail.
pub type Final = (Lease, DeliveryStatus, Option<String>);

/// The ledger.
#[derive(Clone)]
pub struct Ledger {
    db: AnyPool,
    owner: String,
    lease_ms: i64,
    /// The database's "now", in milliseconds since the epoch, as SQL.
    now: &'static str,
}

impl Ledger {
    /// A ledger on `db` whose leases are taken in the name of `owner`.
    pub fn new(db: AnyPool, owner: String, lease_ms: i64) -> Self {
        let now = now_ms_sql(&db);
        Self {
            db,
            owner,
            lease_ms,
            now,
        }
    }

    /// How long a lease lasts unless renewed.
    pub fn lease_duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.lease_ms.max(0) as u64)
    }

    /// Ends the leases a previous run of this same instance held when it
    /// died (an instance name is unique among live ones, so they are
    /// stale): lapsed at once (`lease_until = 1`, long past), not given
    /// back, since those sends may have gone out. Leases it had given back
    /// stay given back.
    pub async fn release_stale_leases(&self) -> anyhow::Result<u64> {
        let result = sqlx::query(
            "UPDATE send_ledger SET lease_until = 1
                 WHERE status = 'sending' AND owner = $1 AND lease_until > 0",
        )
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
        let mut seen = HashSet::new();
        let unique: Vec<&String> = ids.iter().filter(|id| seen.insert(id.as_str())).collect();
        let upsert_sql = format!(
            "INSERT INTO send_ledger (notification_id, status, owner, lease_until, attempts, detail)
             VALUES {}
             ON CONFLICT (notification_id) DO UPDATE
                SET owner = excluded.owner, lease_until = excluded.lease_until,
                    attempts = send_ledger.attempts + 1,
                    detail = CASE WHEN send_ledger.lease_until > 0 THEN 'lapsed' END
                WHERE send_ledger.status = 'sending' AND send_ledger.lease_until < {now}
             RETURNING notification_id, attempts, detail",
            claim_values(unique.len(), self.now),
            now = self.now,
        );
        // Each row's id, then the owner and the lease duration shared by all.
        let mut upsert = sqlx::query(&upsert_sql);
        for id in &unique {
            upsert = upsert.bind(*id);
        }
        upsert = upsert.bind(&self.owner).bind(self.lease_ms);
        let select_sql = format!(
            "SELECT notification_id, status, detail FROM send_ledger WHERE notification_id IN {}",
            ListParams::of(&self.db).among(unique.len())
        );
        let mut select = sqlx::query(&select_sql);
        for id in &unique {
            select = select.bind(*id);
        }

        let mut tx = self.db.begin().await?;
        let acquired: HashMap<String, Claim> = upsert
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|row| {
                let generation: Generation = row.try_get(1)?;
                let lapsed = row
                    .try_get::<Option<String>, _>(2)?
                    .is_some_and(|mark| mark == "lapsed");
                let claim = if lapsed {
                    Claim::Resumed(generation)
                } else {
                    Claim::Acquired(generation)
                };
                Ok((row.try_get(0)?, claim))
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let mut claims: HashMap<String, Claim> = HashMap::new();
        for row in select.fetch_all(&mut *tx).await? {
            let id: String = row.try_get(0)?;
            let status: LedgerStatus = row.try_get::<String, _>(1)?.parse()?;
            let detail: Option<String> = row.try_get(2)?;
            let claim = if let Some(claim) = acquired.get(&id) {
                claim.clone()
            } else {
                match status {
                    LedgerStatus::Sent => Claim::Sent,
                    LedgerStatus::Failed => Claim::Failed(detail.unwrap_or_default()),
                    LedgerStatus::Sending => Claim::Busy,
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
                Some(claim @ (Claim::Acquired(_) | Claim::Resumed(_))) => {
                    std::mem::replace(claim, Claim::Busy)
                }
                Some(claim) => claim.clone(),
                None => Claim::Busy,
            })
            .collect())
    }

    /// Records final outcomes in one transaction, each only while its
    /// lease is still this sender's; the sent ones, the common case, in one
    /// statement. Says for each whether it was recorded (`false`: the
    /// lease was lost, the row belongs to someone else now).
    pub async fn finish_all(&self, outcomes: &[Final]) -> anyhow::Result<Vec<bool>> {
        let sent: Vec<&Lease> = outcomes
            .iter()
            .filter(|(_, status, _)| *status == DeliveryStatus::Sent)
            .map(|(lease, _, _)| lease)
            .collect();
        let mut recorded = HashSet::new();
        let mut tx = self.db.begin().await?;
        if !sent.is_empty() {
            recorded = self.update_held(&mut *tx, "status = 'sent'", None, &sent).await?;
        }
        for ((id, generation), _, detail) in outcomes
            .iter()
            .filter(|(_, status, _)| *status == DeliveryStatus::Failed)
        {
            let updated = sqlx::query(
                "UPDATE send_ledger SET status = $1, detail = $2
                 WHERE notification_id = $3 AND attempts = $4 AND owner = $5 AND status = 'sending'",
            )
            .bind(LedgerStatus::Failed.as_str())
            .bind(detail.clone())
            .bind(id)
            .bind(generation)
            .bind(&self.owner)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() > 0 {
                recorded.insert(id.clone());
            }
        }
        tx.commit().await?;
        Ok(outcomes
            .iter()
            .map(|((id, _), _, _)| recorded.contains(id))
            .collect())
    }

    /// Extends the leases still held among `leases` by a lease duration
    /// from the database's now; returns those that were lost.
    pub async fn renew_all(&self, leases: &[Lease]) -> anyhow::Result<Vec<Lease>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let held: Vec<&Lease> = leases.iter().collect();
        let assignment = format!("lease_until = {} + $VALUE", self.now);
        let renewed = self
            .update_held(&self.db, &assignment, Some(self.lease_ms), &held)
            .await?;
        Ok(leases
            .iter()
            .filter(|(id, _)| !renewed.contains(id))
            .cloned()
            .collect())
    }

    /// Applies `assignment` (which may use `$VALUE`, bound to `value`) to
    /// the rows of `leases` this sender still holds, in one statement;
    /// returns the ids updated. The fence of every batched ledger write.
    async fn update_held<'e, E>(
        &self,
        executor: E,
        assignment: &str,
        value: Option<i64>,
        leases: &[&Lease],
    ) -> anyhow::Result<HashSet<String>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sql = held_update_sql(assignment, leases.len());
        let mut update = sqlx::query(&sql);
        for (id, generation) in leases {
            update = update.bind(id).bind(generation);
        }
        update = update.bind(&self.owner);
        if let Some(value) = value {
            update = update.bind(value);
        }
        update
            .fetch_all(executor)
            .await?
            .into_iter()
            .map(|row| row.try_get(0).map_err(anyhow::Error::from))
            .collect()
    }

    /// Gives `lease` back after a transient failure, so the retry need not
    /// wait for it to expire; a lease taken over since is left alone. A
    /// lease taken over from a lapsed one stays lapsed (`lease_until = 1`,
    /// long past): this attempt handed nothing over, but an earlier one may
    /// have, so the next claim is [`Claim::Resumed`] again.
    pub async fn release(&self, lease: &Lease) -> anyhow::Result<()> {
        let (id, generation) = lease;
        sqlx::query(
            "UPDATE send_ledger SET lease_until = CASE WHEN detail = 'lapsed' THEN 1 ELSE 0 END
             WHERE notification_id = $1 AND attempts = $2 AND owner = $3 AND status = 'sending'",
        )
        .bind(id)
        .bind(generation)
        .bind(&self.owner)
        .execute(&self.db)
        .await?;
        Ok(())
    }
}

/// The `VALUES` rows of [`Ledger::claim_all`]'s upsert for `rows` ids: the
/// ids are `$1`…`$n`, the owner `$n+1` and the lease duration `$n+2`, the
/// lease's end computed from the database's `now`.
fn claim_values(rows: usize, now: &str) -> String {
    let (owner, lease) = (rows + 1, rows + 2);
    (1..=rows)
        .map(|id| format!("(${id}, 'sending', ${owner}, {now} + ${lease}, 1, NULL)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `UPDATE` of [`Ledger`]'s `update_held` for `leases` leases: the
/// `(id, generation)` pairs are `$1`…`$2n`, the owner `$2n+1` and the
/// assignment's `$VALUE` `$2n+2`. The ids are also listed on their own
/// (the same parameters again), so that the rows are found by the primary
/// key: SQLite answers a row-value `IN (VALUES …)` alone with a scan of
/// the whole ledger, which grows with every email sent.
fn held_update_sql(assignment: &str, leases: usize) -> String {
    let owner_param = leases * 2 + 1;
    let ids: Vec<String> = (0..leases).map(|lease| format!("${}", lease * 2 + 1)).collect();
    format!(
        "UPDATE send_ledger SET {}
         WHERE notification_id IN ({}) AND status = 'sending' AND owner = ${owner_param}
           AND (notification_id, attempts) IN (VALUES {})
         RETURNING notification_id",
        assignment.replace("$VALUE", &format!("${}", owner_param + 1)),
        ids.join(", "),
        values_list(leases, 2)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite makes for the batched ledger writes: each row found
    /// through the primary key, never by scanning the table.
    #[tokio::test]
    async fn batched_lease_writes_look_rows_up_by_key() {
        let db = servicekit::db::connect("sqlite::memory:", SCHEMA).await.unwrap();
        for assignment in ["status = 'sent'", "lease_until = $VALUE"] {
            let sql = held_update_sql(assignment, 3);
            let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(&db)
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>(3).unwrap())
                .collect();
            assert!(
                plan.iter()
                    .any(|step| step.starts_with("SEARCH send_ledger USING")),
                "{sql}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step == "SCAN send_ledger"),
                "{sql}: {plan:?}"
            );
        }
    }
}
