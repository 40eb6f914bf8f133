//! Starts the scheduled campaigns whose `send_at` has come: one round per
//! [`EVERY`], in one instance at a time (a cluster-wide lease), each start
//! one guarded statement ([`crate::store::CampaignStore::start`]), then the
//! announcement a created campaign gets. A campaign whose time passed
//! while comms was down, or while the quota of campaigns in progress was
//! full, starts at the first round that can, and its log line (and its
//! `started_at`) says how late.

use std::time::Duration;

use servicekit::now_ms;

use crate::handlers::Tracker;

/// How often due campaigns are looked for: a campaign starts within about
/// this long of its `send_at`.
pub const EVERY: Duration = Duration::from_secs(1);

/// One round: starts every due campaign that the quota of
/// `max_in_progress` campaigns in progress leaves room for.
pub async fn start_due(tracker: &Tracker, max_in_progress: u64) {
    let due = match tracker.store().due(now_ms()).await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot list the scheduled campaigns due"
            );
            return;
        }
    };
    for campaign in due {
        let started = match tracker.store().start(&campaign.id, max_in_progress).await {
            Ok(Some(started)) => started,
            Ok(None) => {
                tracing::info!(campaign = %campaign.id, "a scheduled campaign due waits for room in the quota (CAMPAIGN_MAX_IN_PROGRESS)");
                continue;
            }
            Err(error) => {
                tracing::warn!(campaign = %campaign.id, error = format!("{error:#}"), "cannot start a scheduled campaign");
                continue;
            }
        };
        let late_ms = started
            .started_at
            .zip(started.send_at)
            .map_or(0, |(at, due)| at - due);
        tracing::info!(campaign = %started.id, late_ms, "scheduled campaign started");
        // A failed announcement is made again by the re-announcing round.
        let announced = match tracker.trace_id(&started).await {
            Ok(trace_id) => {
                tracker
                    .announce(&started, &contracts::traceparent(&trace_id))
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = announced {
            tracing::warn!(campaign = %started.id, error = format!("{error:#}"), "announcing a started campaign failed; will retry");
        }
    }
}
