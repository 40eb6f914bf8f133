//! The consumer-group worker: reads a stream as one consumer of a group and
//! runs a handler on each entry, acknowledging only what was handled.
//!
//! One worker owns:
//! - a *reader* connection of its own for `XREADGROUP … BLOCK` (a blocking
//!   read would stall every other command sharing its connection);
//! - a shared, self-reconnecting connection for acks, claims and dead letters;
//! - a semaphore bounding the handlers running at once: the worker reads no
//!   more entries than it has free permits, so nothing queues unbounded;
//! - an acker task that batches `XACK`s into one pipeline per round.
//!
//! An entry's life: read → handler → success: acked (batched) | failure: left
//! pending, claimed again (`XAUTOCLAIM`) after `claim_idle` | failure on the
//! `max_deliveries`-th delivery, a [`HandleError::Poison`], or an entry that
//! does not decode: moved to the dead-letter stream and acked.
//!
//! After any Redis error the reader reconnects with backoff and first re-reads
//! its own pending entries (`XREADGROUP … 0`), so a restart of Redis (with its
//! AOF) or a dropped connection loses nothing.

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connection::RedisTarget;
use crate::deadletter::{add_dead_letter, DeadLetterRequest};
use crate::entry::{entry_list, read_reply_entries, text, RawEntry};
use crate::envelope::{DecodeError, Envelope};
use crate::stats::{stats_key, HANDLED, RETRIED};

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
    /// Most entries fetched by one `XREADGROUP`.
    pub batch_size: usize,
    /// How long one `XREADGROUP` blocks waiting for entries; also bounds how
    /// long a shutdown waits for the read in progress.
    pub block: Duration,
    /// Most handlers running at once. A read asks for no more entries than
    /// there are free handler slots, so this also caps `batch_size`.
    pub concurrency: usize,
    /// Reading connections, each with its own read loop, sharing the
    /// handler slots. One is enough for most services; a second one lets a
    /// fast consumer read the next batch while the last is being dispatched.
    pub readers: usize,
    /// An entry pending this long (its consumer died, or its handler failed)
    /// is claimed and delivered again.
    pub claim_idle: Duration,
    /// How often to look for such entries.
    pub claim_every: Duration,
    /// Deliveries after which a failing entry is dead-lettered.
    pub max_deliveries: u64,
    /// How long shutdown waits for running handlers before abandoning them
    /// (abandoned entries stay pending and are redelivered later).
    pub shutdown_grace: Duration,
}

impl WorkerConfig {
    /// Defaults for a service: batches of 256, 64 handlers, entries claimed
    /// after 30 s idle, dead-lettered after 5 deliveries.
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
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// A consumer name unique to this process: `<prefix>-<pid>-<random>`.
pub fn unique_consumer_name(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}-{}", std::process::id(), &random[..8])
}

/// One entry handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The entry's id in the stream.
    pub entry_id: String,
    /// The decoded envelope; the handler decodes the payload to its type.
    pub envelope: Envelope,
    /// How many times this entry has been delivered, this time included.
    pub deliveries: u64,
}

/// Why a handler did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// A transient failure (a database or server briefly away): the entry is
    /// delivered again after `claim_idle`, up to `max_deliveries` times.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// The entry can never succeed (unknown event, invalid payload): it goes
    /// to the dead-letter stream at once.
    #[error("{0}")]
    Poison(String),
}

impl From<anyhow::Error> for HandleError {
    fn from(error: anyhow::Error) -> Self {
        Self::Retry(error)
    }
}

impl From<DecodeError> for HandleError {
    fn from(error: DecodeError) -> Self {
        Self::Poison(error.to_string())
    }
}

/// What a worker runs on each entry. Any `Fn(Delivery) -> Future` closure is
/// a handler. It must be idempotent: at-least-once delivery means it may see
/// the same entry again.
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery.
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Result<(), HandleError>> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandleError>> + Send,
{
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Result<(), HandleError>> + Send {
        self(delivery)
    }
}

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
    /// Handler failures left pending for a retry.
    pub failed: u64,
    /// Deliveries that were redeliveries.
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

/// What became of one delivery, sent from a handler task to the acker.
enum Outcome {
    Handled { id: String, deliveries: u64 },
    Failed { id: String, deliveries: u64 },
    Dead(DeadLetterRequest),
}

impl Outcome {
    fn deliveries(&self) -> u64 {
        match self {
            Outcome::Handled { deliveries, .. } | Outcome::Failed { deliveries, .. } => *deliveries,
            Outcome::Dead(request) => request.deliveries,
        }
    }

    fn id(&self) -> &str {
        match self {
            Outcome::Handled { id, .. } | Outcome::Failed { id, .. } => id,
            Outcome::Dead(request) => &request.entry.id,
        }
    }
}

/// Entries handed to handlers and not yet settled by the acker: a claim or a
/// re-read of the pending list must not start a second handler for them.
type InFlight = Arc<Mutex<HashSet<String>>>;

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
    /// running handlers finish (at most `shutdown_grace`), flushes the acks
    /// and returns. Redis being away is not an error: the worker keeps
    /// retrying with backoff until it is back or shutdown comes.
    pub async fn run<H: Handler>(self, handler: H, shutdown: CancellationToken) {
        let Some(ctrl) = self.connect_shared(&shutdown).await else {
            return;
        };
        let config = self.config.clone();
        let inflight: InFlight = Arc::default();
        let (outcomes, outcome_rx) = mpsc::channel(config.concurrency + config.batch_size);
        let acks_deadline = CancellationToken::new();
        let acker = tokio::spawn(ack_loop(
            ctrl.clone(),
            config.clone(),
            outcome_rx,
            inflight.clone(),
            self.counters.clone(),
            acks_deadline.clone(),
        ));
        let handler = Arc::new(handler);
        let permits = Arc::new(Semaphore::new(config.concurrency));
        let loops: Vec<_> = (0..config.readers.max(1))
            .map(|index| {
                let read_loop = ReadLoop {
                    target: self.target.clone(),
                    ctrl: ctrl.clone(),
                    primary: index == 0,
                    consumer: reader_consumer_name(&config.consumer, index),
                    dispatcher: Dispatcher {
                        handler: handler.clone(),
                        config: config.clone(),
                        inflight: inflight.clone(),
                        permits: permits.clone(),
                        outcomes: outcomes.clone(),
                        tasks: JoinSet::new(),
                    },
                };
                tokio::spawn(read_loop.run(shutdown.clone()))
            })
            .collect();
        drop(outcomes);
        let mut running: Vec<JoinSet<()>> = Vec::new();
        for read_loop in loops {
            if let Ok(tasks) = read_loop.await {
                running.push(tasks);
            }
        }

        let drained = tokio::time::timeout(config.shutdown_grace, async {
            for tasks in running.iter_mut() {
                while tasks.join_next().await.is_some() {}
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                stream = %config.stream,
                abandoned = running.iter().map(JoinSet::len).sum::<usize>(),
                "handlers still running at the end of the grace period; their entries stay pending"
            );
            for tasks in running.iter_mut() {
                tasks.shutdown().await;
            }
        }
        // The acker ends when every outcome has been sent and flushed; if Redis
        // is away it gives up after the grace period (entries stay pending).
        let deadline = acks_deadline.clone();
        let grace = config.shutdown_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            deadline.cancel();
        });
        let _ = acker.await;
        tracing::info!(stream = %config.stream, consumer = %config.consumer, "worker stopped");
    }

    async fn connect_shared(&self, shutdown: &CancellationToken) -> Option<ConnectionManager> {
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

/// The consumer name of read loop `index`: the worker's own for the first,
/// `<consumer>/<n>` for the others, so that each loop has a pending list of
/// its own to re-read after a reconnect.
fn reader_consumer_name(consumer: &str, index: usize) -> String {
    if index == 0 {
        consumer.to_string()
    } else {
        format!("{consumer}/{}", index + 1)
    }
}

/// One reading connection of a worker and the handlers it started. A
/// worker runs `readers` of them: reading, parsing and dispatching a batch
/// are sequential within one loop, so a second loop keeps Redis and the
/// handlers busy meanwhile. Each loop is a consumer of the group of its
/// own; the primary one also claims idle entries for the worker.
struct ReadLoop<H> {
    target: RedisTarget,
    ctrl: ConnectionManager,
    primary: bool,
    consumer: String,
    dispatcher: Dispatcher<H>,
}

impl<H: Handler> ReadLoop<H> {
    /// Reads and dispatches until `shutdown`; returns the handler tasks
    /// still running, for the worker to drain.
    async fn run(mut self, shutdown: CancellationToken) -> JoinSet<()> {
        let config = self.dispatcher.config.clone();
        let permits = self.dispatcher.permits.clone();
        let mut reader: Option<MultiplexedConnection> = None;
        let mut backoff = Backoff::default();
        // Where to continue reading this consumer's own pending entries;
        // `None` once they are all re-read and new entries (`>`) are next.
        let mut history_from: Option<String> = None;
        let mut last_claim: Option<Instant> = None;

        while !shutdown.is_cancelled() {
            while self.dispatcher.tasks.try_join_next().is_some() {}

            if reader.is_none() {
                match self.connect_reader().await {
                    Ok(conn) => {
                        reader = Some(conn);
                        history_from = Some("0".into());
                    }
                    Err(error) => {
                        tracing::warn!(stream = %config.stream, %error, "cannot reach Redis; retrying");
                        if !backoff.wait(&shutdown).await {
                            break;
                        }
                        continue;
                    }
                }
            }

            if self.primary && last_claim.is_none_or(|at| at.elapsed() >= config.claim_every) {
                last_claim = Some(Instant::now());
                if let Err(error) = self.claim_idle().await {
                    tracing::warn!(stream = %config.stream, %error, "claiming idle entries failed");
                }
            }

            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    permit = permits.clone().acquire_owned() => drop(permit),
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let count = free.min(config.batch_size);
            // Reserve the handler slots before reading, so that two loops
            // never read more entries than there are slots for.
            let Ok(reserved) = permits.clone().try_acquire_many_owned(count as u32) else {
                continue;
            };
            let from = history_from.as_deref().unwrap_or(">");
            let Some(conn) = reader.as_mut() else {
                continue;
            };
            match read_group(conn, &config, &self.consumer, from, count).await {
                Ok(entries) => {
                    backoff.reset();
                    if history_from.is_some() {
                        history_from = entries.last().map(|entry| entry.id.clone());
                        match delivery_counts(&mut self.ctrl, &config, &entries).await {
                            Ok(counts) => {
                                self.dispatcher
                                    .dispatch_all(entries, counts, Some(reserved))
                                    .await
                            }
                            Err(error) => {
                                tracing::warn!(%error, "cannot read delivery counts");
                                reader = None;
                            }
                        }
                    } else {
                        let counts = vec![1; entries.len()];
                        self.dispatcher
                            .dispatch_all(entries, counts, Some(reserved))
                            .await;
                    }
                }
                Err(error) if is_missing_group(&error) => {
                    if let Err(error) = ensure_group(&mut self.ctrl, &config).await {
                        tracing::warn!(%error, "cannot recreate consumer group");
                    }
                }
                Err(error) => {
                    tracing::warn!(stream = %config.stream, %error, "reading the stream failed; reconnecting");
                    reader = None;
                    if !backoff.wait(&shutdown).await {
                        break;
                    }
                }
            }
        }
        self.dispatcher.tasks
    }

    async fn connect_reader(&mut self) -> crate::Result<MultiplexedConnection> {
        let conn = self.target.dedicated(self.dispatcher.config.block).await?;
        ensure_group(&mut self.ctrl, &self.dispatcher.config).await?;
        Ok(conn)
    }

    /// Claims entries idle longer than `claim_idle` in the whole group (this
    /// consumer's failed ones included) and dispatches them.
    async fn claim_idle(&mut self) -> crate::Result<()> {
        let config = self.dispatcher.config.clone();
        let ctrl = &mut self.ctrl;
        let mut cursor = "0-0".to_string();
        loop {
            let reply: redis::Value = redis::cmd("XAUTOCLAIM")
                .arg(&config.stream)
                .arg(&config.group)
                .arg(&config.consumer)
                .arg(config.claim_idle.as_millis() as u64)
                .arg(&cursor)
                .arg("COUNT")
                .arg(config.batch_size)
                .query_async(ctrl)
                .await?;
            let (next, entries) = parse_autoclaim(reply);
            if !entries.is_empty() {
                tracing::info!(stream = %config.stream, claimed = entries.len(), "claimed idle entries");
                let counts = delivery_counts(ctrl, &config, &entries).await?;
                self.dispatcher.dispatch_all(entries, counts, None).await;
            }
            match next {
                Some(next) if next != "0-0" => cursor = next,
                _ => return Ok(()),
            }
        }
    }
}

/// Starts handler tasks, one permit each.
struct Dispatcher<H> {
    handler: Arc<H>,
    config: Arc<WorkerConfig>,
    inflight: InFlight,
    permits: Arc<Semaphore>,
    outcomes: mpsc::Sender<Outcome>,
    tasks: JoinSet<()>,
}

impl<H: Handler> Dispatcher<H> {
    /// Starts a handler for each entry not already in flight, taking its
    /// slot from `reserved` while it lasts, then from the semaphore.
    async fn dispatch_all(
        &mut self,
        entries: Vec<RawEntry>,
        counts: Vec<u64>,
        mut reserved: Option<OwnedSemaphorePermit>,
    ) {
        for (entry, deliveries) in entries.into_iter().zip(counts) {
            if !self
                .inflight
                .lock()
                .expect("in-flight set")
                .insert(entry.id.clone())
            {
                continue;
            }
            let permit = match reserved.take() {
                Some(mut batch) if batch.num_permits() > 1 => {
                    let one = batch.split(1).expect("a batch of several permits splits");
                    reserved = Some(batch);
                    one
                }
                Some(last) => last,
                None => match self.permits.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let handler = self.handler.clone();
            let outcomes = self.outcomes.clone();
            let max_deliveries = self.config.max_deliveries;
            self.tasks.spawn(async move {
                let outcome = handle_entry(&*handler, entry, deliveries, max_deliveries).await;
                drop(permit);
                let _ = outcomes.send(outcome).await;
            });
        }
    }
}

async fn handle_entry<H: Handler>(
    handler: &H,
    entry: RawEntry,
    deliveries: u64,
    max_deliveries: u64,
) -> Outcome {
    let dead = |entry: RawEntry, reason: String| {
        Outcome::Dead(DeadLetterRequest {
            entry,
            reason,
            deliveries,
        })
    };
    let envelope = match Envelope::from_fields(&entry.fields) {
        Ok(envelope) => envelope,
        Err(error) => return dead(entry, format!("undecodable entry: {error}")),
    };
    if deliveries > max_deliveries {
        let reason = format!("delivered {deliveries} times without success (limit {max_deliveries})");
        return dead(entry, reason);
    }
    let delivery = Delivery {
        entry_id: entry.id.clone(),
        envelope,
        deliveries,
    };
    let result = AssertUnwindSafe(handler.handle(delivery)).catch_unwind().await;
    let error = match result {
        Ok(Ok(())) => {
            return Outcome::Handled {
                id: entry.id,
                deliveries,
            }
        }
        Ok(Err(HandleError::Poison(reason))) => return dead(entry, reason),
        Ok(Err(HandleError::Retry(error))) => format!("{error:#}"),
        Err(panic) => format!("handler panicked: {}", panic_message(&panic)),
    };
    if deliveries >= max_deliveries {
        return dead(entry, format!("failed {deliveries} times; last error: {error}"));
    }
    tracing::warn!(entry = %entry.id, deliveries, %error, "handler failed; the entry will be retried");
    Outcome::Failed {
        id: entry.id,
        deliveries,
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Most outcomes settled in one pipeline.
const ACK_BATCH: usize = 1_024;

/// Settles outcomes in batches: one atomic pipeline acks the handled entries,
/// dead-letters the poison ones and updates the counters. A failed flush is
/// retried with the same batch (nothing is dropped) until it succeeds or,
/// after shutdown, the deadline passes.
async fn ack_loop(
    mut conn: ConnectionManager,
    config: Arc<WorkerConfig>,
    mut outcomes: mpsc::Receiver<Outcome>,
    inflight: InFlight,
    counters: Arc<WorkerCounters>,
    deadline: CancellationToken,
) {
    let mut batch = Vec::with_capacity(ACK_BATCH);
    while outcomes.recv_many(&mut batch, ACK_BATCH).await > 0 {
        let pipe = settle_pipeline(&config, &batch);
        let mut backoff = Backoff::default();
        loop {
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(stream = %config.stream, %error, pending = batch.len(), "acknowledging failed; retrying");
                    if !backoff.wait(&deadline).await {
                        tracing::warn!(stream = %config.stream, left = batch.len(), "gave up acknowledging at shutdown; the entries stay pending");
                        return;
                    }
                }
            }
        }
        let mut settled = inflight.lock().expect("in-flight set");
        for outcome in batch.drain(..) {
            settled.remove(outcome.id());
            if outcome.deliveries() > 1 {
                counters.retried.fetch_add(1, Ordering::Relaxed);
            }
            let counter = match outcome {
                Outcome::Handled { .. } => &counters.handled,
                Outcome::Failed { .. } => &counters.failed,
                Outcome::Dead(_) => &counters.dead_lettered,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn settle_pipeline(config: &WorkerConfig, batch: &[Outcome]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    let stats = stats_key(&config.stream, &config.group);
    let handled: Vec<&str> = batch
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Handled { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    if !handled.is_empty() {
        pipe.cmd("XACK")
            .arg(&config.stream)
            .arg(&config.group)
            .arg(&handled)
            .ignore();
        pipe.cmd("HINCRBY")
            .arg(&stats)
            .arg(HANDLED)
            .arg(handled.len())
            .ignore();
    }
    let retried = batch.iter().filter(|outcome| outcome.deliveries() > 1).count();
    if retried > 0 {
        pipe.cmd("HINCRBY").arg(&stats).arg(RETRIED).arg(retried).ignore();
    }
    for outcome in batch {
        if let Outcome::Dead(request) = outcome {
            tracing::warn!(stream = %config.stream, entry = %request.entry.id, reason = %request.reason, "dead-lettered");
            add_dead_letter(&mut pipe, &config.stream, &config.group, request);
        }
    }
    pipe
}

async fn read_group(
    conn: &mut MultiplexedConnection,
    config: &WorkerConfig,
    consumer: &str,
    from: &str,
    count: usize,
) -> redis::RedisResult<Vec<RawEntry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(&config.group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if from == ">" {
        cmd.arg("BLOCK").arg(config.block.as_millis() as u64);
    }
    cmd.arg("STREAMS").arg(&config.stream).arg(from);
    let reply: redis::Value = cmd.query_async(conn).await?;
    Ok(read_reply_entries(reply))
}

/// How many times each of `entries` has been delivered, from the group's
/// pending list (one pipelined `XPENDING` per entry).
async fn delivery_counts(
    conn: &mut ConnectionManager,
    config: &WorkerConfig,
    entries: &[RawEntry],
) -> redis::RedisResult<Vec<u64>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for entry in entries {
        pipe.cmd("XPENDING")
            .arg(&config.stream)
            .arg(&config.group)
            .arg(&entry.id)
            .arg(&entry.id)
            .arg(1);
    }
    let replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    Ok(replies.into_iter().map(times_delivered).collect())
}

/// The delivery count from an extended `XPENDING` reply
/// (`[[id, consumer, idle, count]]`); 1 when the entry is no longer pending.
fn times_delivered(reply: redis::Value) -> u64 {
    let redis::Value::Array(rows) = reply else {
        return 1;
    };
    match rows.into_iter().next() {
        Some(redis::Value::Array(row)) => match row.get(3) {
            Some(redis::Value::Int(count)) => (*count).max(1) as u64,
            _ => 1,
        },
        _ => 1,
    }
}

/// `XAUTOCLAIM` reply: `[next-cursor, entries, deleted-ids]`.
fn parse_autoclaim(reply: redis::Value) -> (Option<String>, Vec<RawEntry>) {
    let redis::Value::Array(mut parts) = reply else {
        return (None, Vec::new());
    };
    if parts.len() < 2 {
        return (None, Vec::new());
    }
    let entries = entry_list(parts.swap_remove(1));
    let next = text(parts.swap_remove(0));
    // Deleted entries come back with no fields; XAUTOCLAIM already removed
    // them from the pending list, so there is nothing to handle.
    (
        next,
        entries
            .into_iter()
            .filter(|entry| !entry.fields.is_empty())
            .collect(),
    )
}

/// Creates the group (and the stream) if missing; an existing group is fine.
/// A new group starts at the beginning of the stream, so events published
/// before the service first ran are not skipped.
async fn ensure_group(conn: &mut ConnectionManager, config: &WorkerConfig) -> crate::Result<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&config.stream)
        .arg(&config.group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(error) if error.code() != Some("BUSYGROUP") => Err(error.into()),
        _ => Ok(()),
    }
}

fn is_missing_group(error: &redis::RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

/// Exponential backoff from 50 ms to 2 s, cut short by cancellation.
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(50),
        }
    }
}

impl Backoff {
    /// Sleeps the current delay and doubles it; `false` if `cancel` fired.
    async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(2));
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = cancel.cancelled() => false,
        }
    }

    fn reset(&mut self) {
        self.next = Duration::from_millis(50);
    }
}
