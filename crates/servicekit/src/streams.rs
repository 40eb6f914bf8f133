//! How a service's stream workers are tuned.

use std::time::Duration;

use eventstore::WorkerConfig;
use serde::{Deserialize, Serialize};

/// Worker settings a service reads from its configuration (`CLAIM_IDLE_MS`,
/// `MAX_DELIVERIES`, `RETRY_BUDGET_SECS`, `HANDLER_TIMEOUT_MS`,
/// `CONCURRENCY`, `READ_BATCH`, `TASK_LEASE_MS` in the environment).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamSettings {
    /// Idle time after which a pending entry is claimed again.
    pub claim_idle_ms: u64,
    /// Deliveries that never answered (crashes, panics) after which an
    /// entry is given up.
    pub max_deliveries: u64,
    /// How long after its publication an entry failing with a transient
    /// error is still retried.
    #[serde(default = "default_retry_budget_secs")]
    pub retry_budget_secs: u64,
    /// How long one run of a handler may take before it is retried.
    #[serde(default = "default_handler_timeout_ms")]
    pub handler_timeout_ms: u64,
    /// Entries a worker holds at once. A read takes no more entries than
    /// there are free slots (nor than `read_batch`) and is handled as one
    /// batch: 256 lets a database-bound handler write a few hundred
    /// entries per transaction (`bench/campaign.sh`).
    pub concurrency: usize,
    /// How long the lease of a task run once per cluster (trimming, say)
    /// outlives its holder's last renewal: how soon another instance takes
    /// the task over after the holder died.
    #[serde(default = "default_task_lease_ms")]
    pub task_lease_ms: u64,
    /// Most entries one read takes, and so one batch handles. Below
    /// `concurrency`, several batches run at once: a handler whose batch
    /// is answered only when its slowest entry is (email-service, waiting
    /// on SMTP replies) keeps its connections busy with the next batches
    /// meanwhile.
    #[serde(default = "default_read_batch")]
    pub read_batch: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            claim_idle_ms: 30_000,
            max_deliveries: 5,
            retry_budget_secs: default_retry_budget_secs(),
            handler_timeout_ms: default_handler_timeout_ms(),
            concurrency: 256,
            task_lease_ms: default_task_lease_ms(),
            read_batch: default_read_batch(),
        }
    }
}

/// Six hours: transient trouble is waited out, not counted.
fn default_retry_budget_secs() -> u64 {
    6 * 60 * 60
}

/// Five minutes: far past any SMTP exchange's own timeouts.
fn default_handler_timeout_ms() -> u64 {
    5 * 60 * 1000
}

/// Ten seconds: a dead holder's task is taken over within about that, and
/// a holder renews three times in it, far from a false takeover.
fn default_task_lease_ms() -> u64 {
    10_000
}

/// As many entries as there are free slots, up to 256: one batch at a time
/// for a service that keeps the default `concurrency`.
fn default_read_batch() -> usize {
    256
}

/// The unprefixed environment keys of [`StreamSettings`].
pub const STREAM_ENV: [&str; 7] = [
    "claim_idle_ms",
    "max_deliveries",
    "retry_budget_secs",
    "handler_timeout_ms",
    "concurrency",
    "task_lease_ms",
    "read_batch",
];

impl StreamSettings {
    /// The configuration of a worker for `stream` in `group` as
    /// `consumer`, with these settings (a service may adjust it, see
    /// [`Service::consume_with`](crate::service::Service::consume_with)).
    pub fn worker_config(&self, stream: &str, group: &str, consumer: &str) -> WorkerConfig {
        let mut config = WorkerConfig::new(stream, group, consumer);
        config.claim_idle = Duration::from_millis(self.claim_idle_ms);
        config.claim_every = Duration::from_millis((self.claim_idle_ms / 4).clamp(100, 5_000));
        config.max_deliveries = self.max_deliveries;
        config.retry_budget = Duration::from_secs(self.retry_budget_secs);
        config.handler_timeout = Duration::from_millis(self.handler_timeout_ms);
        config.concurrency = self.concurrency;
        config.batch_size = self.read_batch.max(1);
        config
    }
}
