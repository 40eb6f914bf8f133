//! The progress of the campaigns being sent, as Prometheus gauges:
//! `comms_campaign_notifications{status}`, with `status` one of `sent`,
//! `failed`, `dead_lettered`, `suppressed` and `pending`, each summed over the campaigns
//! whose status is `sending`. Summed, so that the labels stay four however
//! many campaigns there are; a completed campaign leaves the sums, and
//! `pending` is the work comms still has to do.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{CampaignStore, Progress};

/// How often the gauges are read from the store.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Every `every` until `shutdown`, sets the gauges from `store`.
pub async fn refresh(store: CampaignStore, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match store.sending_progress().await {
            Ok(progress) => set(&progress),
            Err(error) => tracing::warn!(error = format!("{error:#}"), "cannot sum the campaigns' progress"),
        }
    }
}

fn set(progress: &Progress) {
    for (status, value) in [
        ("sent", progress.sent),
        ("failed", progress.failed),
        ("dead_lettered", progress.dead_lettered),
        ("suppressed", progress.suppressed),
        ("pending", progress.pending),
    ] {
        metrics::gauge!("comms_campaign_notifications", "status" => status).set(value as f64);
    }
}
