//! The SMTP relays' figures, as every email-service instance reports them
//! and the dashboard shows them: on a board (`comms:relays`, a
//! [`Board`]), one value per instance (its figures since it started, as
//! JSON), rewritten every second. A reader adds up the instances heard
//! from lately; an instance gone quiet drops out, and its value is removed
//! by the next instance to start.

use std::collections::BTreeMap;

use eventstore::board::Board;
use eventstore::Redis;
use serde::{Deserialize, Serialize};

/// The board's key.
pub const BOARD: &str = "comms:relays";

/// How long after its last report an instance still counts.
pub const FRESH_MS: i64 = 30_000;

/// One relay's figures: as one instance saw it, or every instance
/// together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RelayFigures {
    /// Its name (`EMAIL_RELAYS`' `name=`, or its `host:port`).
    pub name: String,
    /// Its `host:port`.
    pub address: String,
    /// Its share of the mail while every relay is up; 0: a standby.
    pub weight: u32,
    /// Most connections open to it at once, per instance.
    pub pool: u32,
    /// Its own rate, emails a second (0: none).
    pub per_second: f64,
    /// Whether it takes mail: false while an instance finds it down
    /// (refusing connections, failing its greeting or login), until it
    /// answers again.
    pub up: bool,
    /// Why it is down, when it is.
    pub error: Option<String>,
    /// Emails it accepted.
    pub sent: u64,
    /// Sends through it that failed, for any reason.
    pub failed: u64,
    /// Sends that went to another relay because it was down.
    pub failovers: u64,
}

/// One instance's report: its relays' figures and when it made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayReport {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// Its relays, in the order of its settings.
    pub relays: Vec<RelayFigures>,
}

/// The relays' board, typed.
#[derive(Clone)]
pub struct RelayBoard {
    board: Board,
}

impl RelayBoard {
    /// The board on the event store's connection.
    pub fn new(conn: Redis) -> Self {
        Self {
            board: Board::new(conn, BOARD),
        }
    }

    /// Writes `instance`'s report.
    pub async fn report(&self, instance: &str, report: &RelayReport) -> eventstore::Result<()> {
        let json = serde_json::to_string(report).expect("a report serializes");
        self.board.set(instance, &json).await
    }

    /// Removes the reports of instances not heard from for an hour as of
    /// `now_ms` (and any that cannot be read).
    pub async fn forget_gone(&self, now_ms: i64) -> eventstore::Result<()> {
        for (instance, json) in self.board.entries().await? {
            let recent = serde_json::from_str::<RelayReport>(&json)
                .is_ok_and(|report| now_ms - report.at_ms <= 3_600_000);
            if !recent {
                self.board.remove(&instance).await?;
            }
        }
        Ok(())
    }

    /// Every relay's figures, the instances heard from within
    /// [`FRESH_MS`] of `now_ms` added up: counts summed, down if any
    /// instance finds it down. Empty when none reported.
    pub async fn figures(&self, now_ms: i64) -> eventstore::Result<Vec<RelayFigures>> {
        let mut order = Vec::new();
        let mut merged: BTreeMap<String, RelayFigures> = BTreeMap::new();
        for (_, json) in self.board.entries().await? {
            let Ok(report) = serde_json::from_str::<RelayReport>(&json) else {
                continue;
            };
            if now_ms - report.at_ms > FRESH_MS {
                continue;
            }
            for relay in report.relays {
                if let Some(seen) = merged.get_mut(&relay.name) {
                    seen.sent += relay.sent;
                    seen.failed += relay.failed;
                    seen.failovers += relay.failovers;
                    if !relay.up {
                        seen.up = false;
                        seen.error = relay.error;
                    }
                } else {
                    order.push(relay.name.clone());
                    merged.insert(relay.name.clone(), relay);
                }
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|name| merged.remove(&name))
            .collect())
    }
}
