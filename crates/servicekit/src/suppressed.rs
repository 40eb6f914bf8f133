//! A service's copy of the suppression list: the hashes of the addresses
//! on it, kept from `comms:suppressions` (user-service owns the list).
//! email-service checks each batch of sends against it in one query, as
//! late as the send; campaign-service refuses a message to an address on
//! it at the door. Each has the table `suppressed_addresses` in its schema.
//!
//! Of two changes of one address, the one asked later wins whatever order
//! they are read in (`changed_at`), as in user-service's list. A copy
//! holds what the stream held when its group began, and every change
//! since.
//!
//! A copy fed only by its consumer group lags the stream: after a restart,
//! an email waiting in `comms:emails` could be sent before the group has
//! read a suppression acknowledged while the service was down. So each
//! check first reads, in order and outside the group, every change added
//! to the stream since the copy last looked ([`SuppressedAddresses::among`]):
//! a suppression is honoured by every check that starts after user-service
//! acknowledged it. The group still reads every change too, so that the
//! stream is trimmed only past changes applied.

use std::collections::HashMap;
use std::sync::Arc;

use crate::db::rows_among;
use contracts::consent::{address_hash, SuppressionChanged};
use eventstore::range::entries_after;
use eventstore::{Delivery, Envelope, Event, HandleError, RawEntry, Redis};
use sqlx::{Any, AnyPool, Executor, Row};
use tokio::sync::Mutex;

/// Changes read per `XRANGE` when catching up.
const CATCH_UP_PAGE: usize = 1_000;

/// The addresses not to send to.
#[derive(Clone)]
pub struct SuppressedAddresses {
    db: AnyPool,
    redis: Redis,
    stream: String,
    /// The id of the last entry of `stream` read in order (`None`: none
    /// yet); the lock makes concurrent checks wait for one catch-up.
    read_to: Arc<Mutex<Option<String>>>,
}

impl SuppressedAddresses {
    /// The copy on `db` (schema applied) of the changes on `stream`
    /// (`comms:suppressions`) in `redis`.
    pub fn new(db: AnyPool, redis: Redis, stream: &str) -> Self {
        Self {
            db,
            redis,
            stream: stream.to_string(),
            read_to: Arc::new(Mutex::new(None)),
        }
    }

    /// Applies `change` unless its address changed later already.
    pub async fn apply(&self, change: &SuppressionChanged) -> anyhow::Result<()> {
        apply(&self.db, change).await
    }

    /// Applies every change added to the stream since the last look, a
    /// page in one transaction: one `XRANGE` when there is none.
    async fn catch_up(&self) -> anyhow::Result<()> {
        let mut read_to = self.read_to.lock().await;
        let mut redis = self.redis.clone();
        loop {
            let entries = entries_after(&mut redis, &self.stream, read_to.as_deref(), CATCH_UP_PAGE).await?;
            let Some(last) = entries.last().map(|entry| entry.id.clone()) else {
                return Ok(());
            };
            let mut tx = self.db.begin().await?;
            for change in entries.iter().filter_map(change_of) {
                apply(&mut *tx, &change).await?;
            }
            tx.commit().await?;
            *read_to = Some(last);
            if entries.len() < CATCH_UP_PAGE {
                return Ok(());
            }
        }
    }

    /// Which of `addresses` are suppressed, with why, as of every change
    /// on the stream when the call began: one query for all.
    pub async fn among(&self, addresses: &[&str]) -> anyhow::Result<Vec<Option<String>>> {
        self.catch_up().await?;
        let hashes: Vec<String> = addresses.iter().map(|address| address_hash(address)).collect();
        let rows = rows_among(
            &self.db,
            "SELECT address_hash, reason FROM suppressed_addresses WHERE suppressed = 1 AND address_hash IN",
            &hashes,
        )
        .await?;
        let mut listed = HashMap::new();
        for row in rows {
            listed.insert(row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?);
        }
        Ok(hashes.iter().map(|hash| listed.get(hash).cloned()).collect())
    }

    /// Handles one entry of `comms:suppressions` (counted in
    /// `comms_suppression_changes_total`: from then on, the sends check it).
    pub async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != SuppressionChanged::TYPE {
            return Ok(());
        }
        let change: SuppressionChanged = delivery.envelope.decode()?;
        self.apply(&change).await?;
        metrics::counter!("comms_suppression_changes_total").increment(1);
        Ok(())
    }
}

/// Applies `change` on `db` unless its address changed later already.
async fn apply<'c>(db: impl Executor<'c, Database = Any>, change: &SuppressionChanged) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO suppressed_addresses (address_hash, suppressed, reason, changed_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (address_hash) DO UPDATE SET suppressed = excluded.suppressed,
                 reason = excluded.reason, changed_at = excluded.changed_at
             WHERE excluded.changed_at >= suppressed_addresses.changed_at",
    )
    .bind(&change.address_hash)
    .bind(i64::from(change.suppressed))
    .bind(change.reason.as_str())
    .bind(change.at)
    .execute(db)
    .await?;
    Ok(())
}

/// The change an entry read in order holds; `None` for another kind of
/// event or an entry that does not decode (the group's worker dead-letters
/// that one).
fn change_of(entry: &RawEntry) -> Option<SuppressionChanged> {
    let envelope = Envelope::from_fields(&entry.fields).ok()?;
    if envelope.event_type != SuppressionChanged::TYPE {
        return None;
    }
    envelope.decode().ok()
}
