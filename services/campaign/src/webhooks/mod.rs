//! Signed webhooks: every outcome of comms POSTed to the endpoints
//! operators register (`/api/v1/webhooks`, the dashboard), so that a
//! product reacts to a send, a bounce or a campaign's end without polling.
//!
//! ```text
//! comms:deliveries, comms:consent ─► group `webhooks` (intake) ─► webhook_deliveries
//! campaigns that ended ─────────────────────────────────────────► webhook_deliveries
//! webhook_deliveries ─► dispatcher (one task per endpoint) ─► POST, signed
//! ```
//!
//! The intake ([`intake`]) is a consumer group of its own on the outcome
//! streams: it keeps each event for the endpoints that asked for its kind
//! and acknowledges, so webhooks never slow the counts or the sending. The
//! dispatcher ([`dispatch`]) runs in one instance at a time and POSTs
//! from the database, retrying with backoff for hours; delivery is at
//! least once, and each event's id ([`event`]) is stable, for receivers to
//! deduplicate by.

pub mod dispatch;
pub mod ends;
pub mod event;
pub mod intake;
pub mod sign;
pub mod store;
pub mod subscribers;
pub mod target;

use std::time::Duration;

/// The consumer group of the intake, on `comms:deliveries` and
/// `comms:consent`.
pub const GROUP: &str = "webhooks";

/// How often the dispatcher looks for events due.
pub const EVERY: Duration = Duration::from_millis(500);

/// How webhooks are sent (`CAMPAIGN_WEBHOOK_*`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The wait after an endpoint's first failure; it doubles with each
    /// failure in a row.
    pub retry_base: Duration,
    /// The longest wait between two tries.
    pub retry_max: Duration,
    /// How long an event is tried before it is dead.
    pub retry_for: Duration,
    /// How long a POST may take, connection included.
    pub timeout: Duration,
    /// Whether URLs may go to link-local and metadata addresses.
    pub allow_link_local: bool,
}

impl Settings {
    /// The wait, in ms, after `failures_before` failures in a row and one
    /// more: `retry_base` × 2^`failures_before`, at most `retry_max`.
    pub fn backoff(&self, failures_before: i64) -> i64 {
        let doublings = u32::try_from(failures_before.clamp(0, 30)).unwrap_or(30);
        let wait = self.retry_base.saturating_mul(1 << doublings).min(self.retry_max);
        i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_with_each_failure_up_to_the_longest() {
        let settings = Settings {
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(60),
            retry_for: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            allow_link_local: false,
        };
        let waits: Vec<i64> = (0..6).map(|failures| settings.backoff(failures)).collect();
        assert_eq!(waits, [5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
        assert_eq!(settings.backoff(1_000), 60_000);
    }
}
