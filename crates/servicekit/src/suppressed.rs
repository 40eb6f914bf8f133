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

use std::collections::HashMap;

use crate::db::rows_among;
use contracts::consent::{address_hash, SuppressionChanged};
use eventstore::{Delivery, Event, HandleError};
use sqlx::{AnyPool, Row};

/// The addresses not to send to.
#[derive(Clone)]
pub struct SuppressedAddresses {
    db: AnyPool,
}

impl SuppressedAddresses {
    /// The copy on `db` (schema applied).
    pub fn new(db: AnyPool) -> Self {
        Self { db }
    }

    /// Applies `change` unless its address changed later already.
    pub async fn apply(&self, change: &SuppressionChanged) -> anyhow::Result<()> {
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
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Which of `addresses` are suppressed, with why: one query for all.
    pub async fn among(&self, addresses: &[&str]) -> anyhow::Result<Vec<Option<String>>> {
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
