//! Prometheus metrics: one recorder per process, served at `/metrics` by
//! every service ([`crate::http::health_routes`]).
//!
//! Code anywhere records through the `metrics` crate's macros; this module
//! only installs the recorder and renders it. What each crate records:
//! - the event store's workers: `comms_events_handled_total`,
//!   `comms_events_retried_total`, `comms_events_failed_total`,
//!   `comms_events_dead_lettered_total` (labels `stream`, `group`) and
//!   `comms_worker_settle_batch_size` (entries acked per round trip) and
//!   `comms_worker_read_batch_size` (entries of one read handed to the
//!   handler together);
//! - email-service: `comms_emails_total`, each send attempt by `outcome`
//!   (`sent`, `failed`, `transient`, `connection`, `uncertain`, and
//!   `dead_lettered` for requests given up), and `comms_smtp_send_seconds`;
//! - campaign-service: `comms_campaign_outcomes_total` (label `status`)
//!   and the gauge `comms_campaign_notifications` (label `status`: the
//!   progress of the campaigns sending, summed);
//! - every service: `comms_http_request_seconds` (labels `method`, `route`,
//!   `status`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets (seconds) for latencies: HTTP requests and SMTP sends.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Histogram buckets for batch sizes.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's recorder, installed on first use (services started
/// in-process by tests share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(Matcher::Suffix("_size".into()), BATCH_BUCKETS)
            })
            .expect("valid buckets")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// The metrics in Prometheus's text format.
pub fn render() -> String {
    handle().render()
}
