//! The consumer-group worker: reads a stream as one consumer of a group and
//! runs a handler on each entry, acknowledging only what was handled.
//!
//! One worker owns:
//! - a *reader* connection per read loop for `XREADGROUP … BLOCK` (a
//!   blocking read would stall every other command sharing its connection);
//! - a shared, self-reconnecting connection for acks, claims, retries and
//!   dead letters;
//! - `concurrency` slots: an entry holds one from its read until the acker
//!   has taken its outcome (but for the `waiting_retries` entries that wait
//!   out a retry's backoff without one), and the worker reads no more
//!   entries than it has free slots, so nothing queues unbounded, even when
//!   acks stall;
//! - a keeper that keeps the entries it holds from looking idle, so a slow
//!   handler's entry is claimed by no one, this worker included;
//! - an acker task that settles outcomes in one pipeline per round.
//!
//! An entry's life (see [`attempt`]): read → handler → success: acked |
//! retry: delivered again after a growing backoff, within a retry budget in
//! time | given up (poison, budget spent, `max_deliveries` deliveries that
//! never answered, undecodable): [`Handler::give_up`] settles it, then it is
//! moved to the dead-letter stream and acked. Entries idle longer than
//! `claim_idle` (their consumer died) are claimed with `XAUTOCLAIM`.
//! Redis's delivery count of an entry is the number of times a handler was
//! started on it (see [`commands`]).
//!
//! After a Redis error a read loop reconnects with backoff; entries whose
//! delivery was lost with the connection are claimed like any idle entry,
//! so a restart of Redis (with its AOF) or a dropped connection loses
//! nothing.

mod attempt;
mod backoff;
mod commands;
mod config;
mod handler;
mod keeper;
mod read;
mod settle;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::connection::Redis;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{unique_consumer_name, WorkerConfig};
pub use handler::{Delivery, HandleError, Handler};

use crate::connection::RedisTarget;
use attempt::Attempts;
use backoff::Backoff;
use keeper::{keep_held, Held};
use read::{Dispatcher, ReadLoop};
use settle::ack_loop;

/// How long, after the shutdown grace, the acker may take to flush the
/// outcomes of the handlers that finished in time.
const FINAL_FLUSH: Duration = Duration::from_secs(1);

/// Counts of this worker process since it started (the group-wide counts,
/// summed over all processes, are in [`crate::stream_stats`]).
#[derive(Debug, Default)]
pub struct WorkerCounters {
    handled: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
}

/// A snapshot of [`WorkerCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSnapshot {
    /// Entries handled and acked.
    pub handled: u64,
    /// Handler failures (retries and panics) after which the entry was
    /// delivered again.
    pub failed: u64,
    /// Entries settled on a redelivery (an earlier attempt failed, or its
    /// consumer died).
    pub retried: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
}

impl WorkerCounters {
    /// The current counts.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            handled: self.handled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
        }
    }
}

/// A consumer of one stream in one group. Build it, then [`Worker::run`] it
/// until the shutdown token is cancelled.
pub struct Worker {
    target: RedisTarget,
    config: Arc<WorkerConfig>,
    counters: Arc<WorkerCounters>,
}

impl Worker {
    /// A worker for `config` on `target`.
    pub fn new(target: RedisTarget, config: WorkerConfig) -> Self {
        Self {
            target,
            config: Arc::new(config),
            counters: Arc::default(),
        }
    }

    /// This worker's counters, readable while it runs.
    pub fn counters(&self) -> Arc<WorkerCounters> {
        self.counters.clone()
    }

    /// Consumes until `shutdown` is cancelled, then stops reading, lets the
    /// running handlers finish and flushes the acks, and returns within
    /// `shutdown_grace` (plus a second for the last acks) of the
    /// cancellation, whatever the handlers or Redis do: handlers still
    /// running then are dropped, and their entries stay pending. Redis being
    /// away is not an error: the worker keeps retrying with backoff until it
    /// is back or shutdown comes.
    pub async fn run<H: Handler>(self, handler: H, shutdown: CancellationToken) {
        let Some(ctrl) = self.connect_shared(&shutdown).await else {
            return;
        };
        let config = self.config.clone();
        let slots = config.concurrency.max(1);
        let held = Held::default();
        let (outcomes, outcome_rx) = mpsc::channel(slots);
        let acks_deadline = CancellationToken::new();
        let mut acker = tokio::spawn(ack_loop(
            ctrl.clone(),
            config.clone(),
            outcome_rx,
            held.clone(),
            self.counters.clone(),
            acks_deadline.clone(),
        ));
        let stop_keeping = CancellationToken::new();
        let keeper = tokio::spawn(keep_held(
            ctrl.clone(),
            config.clone(),
            held.clone(),
            stop_keeping.clone(),
        ));
        let permits = Arc::new(Semaphore::new(slots));
        let attempts = Attempts {
            handler: Arc::new(handler),
            config: config.clone(),
            conn: ctrl.clone(),
            counters: self.counters.clone(),
            shutdown: shutdown.clone(),
            slots: permits.clone(),
            waiting: Arc::new(Semaphore::new(config.waiting_retries)),
        };
        let tasks = TaskTracker::new();
        let abandon = CancellationToken::new();
        let mut loops: Vec<_> = (0..config.readers.max(1))
            .map(|index| {
                let read_loop = ReadLoop {
                    target: self.target.clone(),
                    ctrl: ctrl.clone(),
                    primary: index == 0,
                    dispatcher: Dispatcher {
                        attempts: attempts.clone(),
                        held: held.clone(),
                        permits: permits.clone(),
                        outcomes: outcomes.clone(),
                        tasks: tasks.clone(),
                        abandon: abandon.clone(),
                    },
                };
                tokio::spawn(read_loop.run(shutdown.clone()))
            })
            .collect();
        drop(outcomes);

        shutdown.cancelled().await;
        let deadline = Instant::now() + config.shutdown_grace;
        for read_loop in &mut loops {
            if tokio::time::timeout_at(deadline, &mut *read_loop).await.is_err() {
                read_loop.abort();
            }
        }
        tasks.close();
        if tokio::time::timeout_at(deadline, tasks.wait()).await.is_err() {
            tracing::warn!(
                stream = %config.stream,
                abandoned = tasks.len(),
                "handlers still running at the end of the grace period; their entries stay pending"
            );
            abandon.cancel();
            tasks.wait().await;
        }
        // The acker ends once every outcome is flushed; if Redis is away it
        // gives up at the final deadline (the entries stay pending).
        tokio::select! {
            _ = &mut acker => {}
            () = tokio::time::sleep_until(deadline + FINAL_FLUSH) => {
                acks_deadline.cancel();
                let _ = acker.await;
            }
        }
        stop_keeping.cancel();
        keeper.abort();
        tracing::info!(stream = %config.stream, consumer = %config.consumer, "worker stopped");
    }

    async fn connect_shared(&self, shutdown: &CancellationToken) -> Option<Redis> {
        let mut backoff = Backoff::default();
        loop {
            match self.target.shared().await {
                Ok(conn) => return Some(conn),
                Err(error) => {
                    tracing::warn!(stream = %self.config.stream, %error, "cannot reach Redis; retrying");
                    if !backoff.wait(shutdown).await {
                        return None;
                    }
                }
            }
        }
    }
}
