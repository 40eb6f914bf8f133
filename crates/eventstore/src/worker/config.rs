//! How one worker reads, retries and gives up.

use std::time::Duration;

/// How one worker reads and retries. [`WorkerConfig::new`] gives defaults
/// suited to a service; tests shorten the times.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The stream to read.
    pub stream: String,
    /// The consumer group: one per service.
    pub group: String,
    /// This consumer's name, unique among the group's live consumers.
    pub consumer: String,
    /// Most entries fetched by one `XREADGROUP`; the entries of one read
    /// are one call of [`crate::Handler::handle_batch`].
    pub batch_size: usize,
    /// How long one `XREADGROUP` blocks waiting for entries; also bounds how
    /// long a shutdown waits for the read in progress.
    pub block: Duration,
    /// Most entries held at once, each from its read until the acker has
    /// taken its outcome (a retrying entry gives its slot back while it
    /// waits out its backoff: see `waiting_retries`). A read asks for no more entries than there are free slots,
    /// so this also caps `batch_size`, and stalled acks stop the reading.
    pub concurrency: usize,
    /// Reading connections, each with its own read loop, sharing the
    /// handler slots. One is enough for most services; a second one lets a
    /// fast consumer read the next batch while the last is being dispatched.
    pub readers: usize,
    /// An entry pending this long is claimed and delivered again: its
    /// consumer died. The worker keeps the entries it holds from looking
    /// idle (it re-claims them to itself every third of this, which Redis
    /// does not count as a delivery). Also the first retry backoff.
    pub claim_idle: Duration,
    /// How often to look for such entries.
    pub claim_every: Duration,
    /// Deliveries that ended without an answer from the handler (it
    /// panicked, the process died, or shutdown abandoned it) after which
    /// the entry is given up: the guard against an entry that crashes its
    /// consumer. Deliveries answered with [`crate::HandleError::Retry`] do
    /// not count; `retry_budget` bounds those.
    pub max_deliveries: u64,
    /// How long, from its publication (the entry id's time), an entry that
    /// keeps failing with [`crate::HandleError::Retry`] is retried before it
    /// is given up: transient trouble (a mail server greylisting, a
    /// database away) is waited out for a while, not for a number of tries.
    pub retry_budget: Duration,
    /// The longest backoff between two retries of an entry; backoffs double
    /// from `claim_idle` up to this.
    pub retry_backoff_max: Duration,
    /// Most entries waiting out a retry's backoff without a slot, so that
    /// entries a server keeps refusing (greylisted recipients) do not stop
    /// the others. Past it, a waiting entry keeps its slot and the reading
    /// slows: the memory held by waiting entries stays bounded.
    pub waiting_retries: usize,
    /// How long one run of a handler may take; past it the run is dropped
    /// (its work cancelled) and the entry retried as after
    /// [`crate::HandleError::Retry`], so a handler stuck on a server that
    /// never answers cannot hold its entry and its slot for ever.
    pub handler_timeout: Duration,
    /// How long shutdown waits, from the moment it is asked, for running
    /// handlers before abandoning them (abandoned entries stay pending and
    /// are redelivered later); the last acks get a second more.
    pub shutdown_grace: Duration,
}

impl WorkerConfig {
    /// Defaults for a service: batches of 256, 64 handler slots, entries
    /// claimed after 30 s idle, transient failures retried for 6 hours with
    /// backoffs up to 5 minutes, given up after 5 deliveries that never
    /// answered, up to 1,024 retries waiting without a slot; a handler run
    /// longer than 5 minutes is retried.
    pub fn new(stream: impl Into<String>, group: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            group: group.into(),
            consumer: consumer.into(),
            batch_size: 256,
            block: Duration::from_secs(1),
            concurrency: 64,
            readers: 1,
            claim_idle: Duration::from_secs(30),
            claim_every: Duration::from_secs(5),
            max_deliveries: 5,
            retry_budget: Duration::from_secs(6 * 60 * 60),
            retry_backoff_max: Duration::from_secs(5 * 60),
            waiting_retries: 1024,
            handler_timeout: Duration::from_secs(5 * 60),
            shutdown_grace: Duration::from_secs(5),
        }
    }

    /// The backoff before the retry that follows delivery `deliveries`:
    /// `claim_idle`, doubled per delivery, at most `retry_backoff_max`.
    pub(crate) fn retry_backoff(&self, deliveries: u64) -> Duration {
        let doublings = deliveries.saturating_sub(1).min(32) as u32;
        self.claim_idle
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.retry_backoff_max)
    }

    /// How often the entries a worker holds are re-claimed to keep them
    /// from looking idle: well within `claim_idle`.
    pub(crate) fn keep_every(&self) -> Duration {
        (self.claim_idle / 3).max(Duration::from_millis(10))
    }
}

/// A consumer name unique to this process: `<prefix>-<pid>-<random>`.
pub fn unique_consumer_name(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}-{}", std::process::id(), &random[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_backoffs_double_from_claim_idle_up_to_the_cap() {
        let mut config = WorkerConfig::new("s", "g", "c");
        config.claim_idle = Duration::from_secs(30);
        config.retry_backoff_max = Duration::from_secs(300);
        let backoffs: Vec<u64> = (1..=6).map(|d| config.retry_backoff(d).as_secs()).collect();
        assert_eq!(backoffs, vec![30, 60, 120, 240, 300, 300]);
        assert_eq!(config.retry_backoff(u64::MAX).as_secs(), 300);
    }
}
