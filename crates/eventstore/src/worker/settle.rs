//! The acker: settles outcomes in batches, one atomic pipeline per batch
//! that dead-letters the given-up entries, acks them and the handled ones,
//! and updates the group's counters (on a cluster, one atomic pipeline per
//! slot, in that order: a dead letter is written before its entry's ack).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::connection::Redis;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::config::WorkerConfig;
use super::keeper::Held;
use super::WorkerCounters;
use crate::batch::Batch;
use crate::deadletter::{dead_letter_copy, DeadLetterRequest};
use crate::keys::{retries_key, stats_key, DEAD_LETTERED, HANDLED, RETRIED};

/// Most outcomes settled in one pipeline.
const ACK_BATCH: usize = 1_024;

/// What became of one entry, sent from its task to the acker.
pub(crate) enum Settlement {
    Handled { id: String, deliveries: u64 },
    Dead(DeadLetterRequest),
}

impl Settlement {
    fn deliveries(&self) -> u64 {
        match self {
            Settlement::Handled { deliveries, .. } => *deliveries,
            Settlement::Dead(request) => request.deliveries,
        }
    }

    pub(crate) fn id(&self) -> &str {
        match self {
            Settlement::Handled { id, .. } => id,
            Settlement::Dead(request) => &request.entry.id,
        }
    }
}

/// Settles outcomes until every sender is gone. A failed flush is retried
/// with the same batch (nothing is dropped) until it succeeds or `deadline`
/// fires (set only at shutdown), which also cuts short a flush in progress:
/// what was not settled stays pending. A settled entry stops being held.
pub(crate) async fn ack_loop(
    mut conn: Redis,
    config: Arc<WorkerConfig>,
    mut outcomes: mpsc::Receiver<Settlement>,
    held: Held,
    counters: Arc<WorkerCounters>,
    deadline: CancellationToken,
) {
    let mut batch = Vec::with_capacity(config.concurrency.min(ACK_BATCH));
    while outcomes.recv_many(&mut batch, ACK_BATCH).await > 0 {
        let settle = settle_batch(&config, &batch);
        let mut backoff = Backoff::default();
        loop {
            let flushed = tokio::select! {
                flushed = settle.run(&mut conn) => flushed,
                () = deadline.cancelled() => {
                    tracing::warn!(stream = %config.stream, left = batch.len(), "gave up acknowledging at shutdown; the entries stay pending");
                    return;
                }
            };
            match flushed {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(stream = %config.stream, %error, pending = batch.len(), "acknowledging failed; retrying");
                    if !backoff.wait(&deadline).await {
                        tracing::warn!(stream = %config.stream, left = batch.len(), "gave up acknowledging at shutdown; the entries stay pending");
                        return;
                    }
                }
            }
        }
        held.release(batch.iter().map(Settlement::id));
        let labels = [("stream", config.stream.clone()), ("group", config.group.clone())];
        metrics::histogram!("comms_worker_settle_batch_size", &labels).record(batch.len() as f64);
        let (mut handled, mut retried, mut dead_lettered) = (0, 0, 0);
        for outcome in batch.drain(..) {
            if outcome.deliveries() > 1 {
                retried += 1;
            }
            match outcome {
                Settlement::Handled { .. } => handled += 1,
                Settlement::Dead(_) => dead_lettered += 1,
            }
        }
        for (counter, metric, n) in [
            (&counters.handled, "comms_events_handled_total", handled),
            (&counters.retried, "comms_events_retried_total", retried),
            (
                &counters.dead_lettered,
                "comms_events_dead_lettered_total",
                dead_lettered,
            ),
        ] {
            counter.fetch_add(n, Ordering::Relaxed);
            metrics::counter!(metric, &labels).increment(n);
        }
    }
}

fn settle_batch(config: &WorkerConfig, batch: &[Settlement]) -> Batch {
    let mut settle = Batch::atomic();
    let mut acked = Vec::with_capacity(batch.len());
    let mut dead_lettered = 0;
    for outcome in batch {
        if let Settlement::Dead(request) = outcome {
            tracing::warn!(stream = %config.stream, entry = %request.entry.id, reason = %request.reason, "dead-lettered");
            settle.add(dead_letter_copy(&config.stream, &config.group, request));
            dead_lettered += 1;
        }
        acked.push(outcome.id());
    }
    let mut xack = redis::cmd("XACK");
    xack.arg(&config.stream).arg(&config.group).arg(&acked);
    settle.add(xack);
    let stats = stats_key(&config.stream, &config.group);
    // Only an entry delivered more than once can have retries counted.
    let redelivered: Vec<&str> = batch
        .iter()
        .filter(|outcome| outcome.deliveries() > 1)
        .map(Settlement::id)
        .collect();
    for (counter, n) in [
        (HANDLED, batch.len() - dead_lettered),
        (RETRIED, redelivered.len()),
        (DEAD_LETTERED, dead_lettered),
    ] {
        if n > 0 {
            settle.add(redis::cmd("HINCRBY").arg(&stats).arg(counter).arg(n).to_owned());
        }
    }
    if !redelivered.is_empty() {
        let mut hdel = redis::cmd("HDEL");
        hdel.arg(retries_key(&config.stream, &config.group))
            .arg(&redelivered);
        settle.add(hdel);
    }
    settle
}
