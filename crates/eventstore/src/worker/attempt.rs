//! The life of held entries: the entries of one read run together in one
//! [`Handler::handle_batch`] call ([`Attempts::first_run`]); each that
//! failed then goes on alone ([`Attempts::finish`]): run again after a
//! backoff, or given up, until it has an outcome for the acker.
//!
//! - Success: acked.
//! - [`HandleError::Retry`], or a run longer than
//!   [`WorkerConfig::handler_timeout`]: the entry is delivered again to
//!   this worker after [`WorkerConfig::retry_backoff`], while its age plus
//!   the backoff stays within `retry_budget`; past that it is given up.
//!   It stays held (pending, kept fresh by the keeper) but gives its slot
//!   back while it waits, so entries waiting out a greylisting do not stop
//!   the others; at most [`WorkerConfig::waiting_retries`] wait that way,
//!   and the ones past it wait in their slots, which slows the reading. Such deliveries are counted apart (see [`super::commands`]),
//!   so `max_deliveries` never applies to them.
//! - [`HandleError::Later`]: delivered again to this worker after the wait
//!   it names, as a retry is but with no failure counted, no backoff and
//!   no budget (a send rate or quota used up: a wait, not a failure).
//! - A panic, or a delivery that never answered (the process died, shutdown
//!   abandoned it): once `max_deliveries` of those add up, given up.
//! - [`HandleError::Poison`], or an entry that does not decode: given up.
//!
//! Giving up calls [`Handler::give_up`] once, so the service can publish
//! the entry's final outcome, then dead-letters it. If an earlier call to
//! `give_up` never returned (it crashed the process too), it is not called
//! again.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::connection::Redis;
use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::commands::{record_retry, take, Claimed};
use super::config::WorkerConfig;
use super::handler::{Delivery, HandleError, Handler, MIN_LATER};
use super::settle::Settlement;
use super::WorkerCounters;
use crate::deadletter::DeadLetterRequest;
use crate::entry::{RawEntry, StreamId};
use crate::envelope::Envelope;

/// What every entry task of a worker shares.
pub(crate) struct Attempts<H> {
    pub handler: Arc<H>,
    pub config: Arc<WorkerConfig>,
    pub conn: Redis,
    pub counters: Arc<WorkerCounters>,
    /// Stops waiting for a retry's backoff (the entry stays pending).
    pub shutdown: CancellationToken,
    /// The worker's handler slots, taken again after a backoff.
    pub slots: Arc<Semaphore>,
    /// Room for entries waiting out a backoff without a slot.
    pub waiting: Arc<Semaphore>,
}

impl<H> Clone for Attempts<H> {
    fn clone(&self) -> Self {
        Self {
            handler: self.handler.clone(),
            config: self.config.clone(),
            conn: self.conn.clone(),
            counters: self.counters.clone(),
            shutdown: self.shutdown.clone(),
            slots: self.slots.clone(),
            waiting: self.waiting.clone(),
        }
    }
}

impl<H: Handler> Attempts<H> {
    /// The first run of the entries of one read: those that decode and are
    /// not already past `max_deliveries` go to [`Handler::handle_batch`]
    /// together. Returns one step per entry, in order: settled, or failed
    /// and left for [`Attempts::finish`]. Everything logged meanwhile is in
    /// a span carrying the entries' `trace` (their W3C traceparent) when
    /// they share one, as a campaign's entries do, so that one campaign can
    /// be followed across the services' logs.
    pub async fn first_run(&self, batch: Vec<Claimed>) -> Vec<Step> {
        let mut steps = Vec::with_capacity(batch.len());
        let mut runnable = Vec::with_capacity(batch.len());
        for claimed in batch {
            let envelope = match Envelope::from_fields(&claimed.entry.fields) {
                Ok(envelope) => envelope,
                Err(error) => {
                    let reason = format!("undecodable entry: {error}");
                    steps.push(Some(Step::Done(dead(claimed.entry, reason, claimed.deliveries))));
                    continue;
                }
            };
            let ready = Ready {
                entry: claimed.entry,
                envelope,
                deliveries: claimed.deliveries,
                retried: claimed.retried,
            };
            match self.past_max_deliveries(ready).await {
                Ok(ready) => {
                    runnable.push(ready);
                    steps.push(None);
                }
                Err(outcome) => steps.push(Some(Step::Done(outcome))),
            }
        }
        let span = tracing::info_span!(
            "batch",
            stream = %self.config.stream,
            size = runnable.len(),
            trace = shared_trace(&runnable).unwrap_or_default()
        );
        let runs = self.run(&runnable).instrument(span.clone()).await;
        // What follows logs each handled entry, in the batch's span too.
        let _in_batch = span.enter();
        let mut ran = runnable.into_iter().zip(runs);
        steps
            .into_iter()
            .map(|step| {
                step.unwrap_or_else(|| {
                    let (ready, run) = ran.next().expect("one run per runnable entry");
                    match run {
                        Run::Handled => {
                            tracing::debug!(entry = %ready.entry.id, event = %ready.envelope.event_type, "handled");
                            Step::Done(Settlement::Handled {
                                id: ready.entry.id,
                                deliveries: ready.deliveries,
                            })
                        }
                        run => Step::Failed(Failed { ready, run }),
                    }
                })
            })
            .collect()
    }

    /// Takes an entry whose run failed, holding `slot`, to its outcome on
    /// its own: give it up, or deliver it again after a backoff and run it
    /// alone, until it is handled or given up. Returns the outcome with the
    /// slot it holds then, or `None` when it is let go without an outcome
    /// (shutdown during a backoff, Redis away at a retry, or the entry no
    /// longer pending): if still pending, it is claimed again later.
    pub async fn finish(
        self,
        failed: Failed,
        slot: OwnedSemaphorePermit,
    ) -> Option<(Settlement, OwnedSemaphorePermit)> {
        let span = tracing::info_span!(
            "entry",
            stream = %self.config.stream,
            trace = failed.ready.envelope.trace.as_deref().unwrap_or_default()
        );
        self.finish_in_span(failed, slot).instrument(span).await
    }

    async fn finish_in_span(
        mut self,
        failed: Failed,
        mut slot: OwnedSemaphorePermit,
    ) -> Option<(Settlement, OwnedSemaphorePermit)> {
        let Failed { mut ready, mut run } = failed;
        let max = self.config.max_deliveries;
        loop {
            let failure = match run {
                Run::Handled => {
                    tracing::debug!(entry = %ready.entry.id, event = %ready.envelope.event_type, "handled");
                    let handled = Settlement::Handled {
                        id: ready.entry.id,
                        deliveries: ready.deliveries,
                    };
                    return Some((handled, slot));
                }
                Run::Poison(reason) => return Some((self.give_up(ready, reason, true).await, slot)),
                Run::Panicked(error) => {
                    if ready.deliveries.saturating_sub(ready.retried) >= max {
                        return Some((self.give_up(ready, error, true).await, slot));
                    }
                    Some(error)
                }
                Run::Retry(error) => {
                    let age = age(&ready.entry.id);
                    let backoff = self.config.retry_backoff(ready.deliveries);
                    if age + backoff > self.config.retry_budget {
                        let reason = format!(
                            "still failing {}s after it was published (retry budget {}s); last error: {error}",
                            age.as_secs(),
                            self.config.retry_budget.as_secs()
                        );
                        return Some((self.give_up(ready, reason, true).await, slot));
                    }
                    if let Err(error) = record_retry(&mut self.conn, &self.config, &ready.entry.id).await {
                        tracing::warn!(entry = %ready.entry.id, %error, "cannot count a retry; it will count as unanswered");
                    }
                    ready.retried += 1;
                    Some(error)
                }
                Run::Later(after, why) => {
                    // Answered: counted as a retry is, so that
                    // `max_deliveries` never applies to it.
                    if let Err(error) = record_retry(&mut self.conn, &self.config, &ready.entry.id).await {
                        tracing::warn!(entry = %ready.entry.id, %error, "cannot count a deferral; it will count as unanswered");
                    }
                    ready.retried += 1;
                    tracing::debug!(entry = %ready.entry.id, %why, ?after, "deferred");
                    slot = self.wait_out(after, slot).await?;
                    None
                }
            };
            if let Some(error) = failure {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(
                    "comms_events_failed_total",
                    "stream" => self.config.stream.clone(),
                    "group" => self.config.group.clone()
                )
                .increment(1);
                let backoff = self.config.retry_backoff(ready.deliveries);
                tracing::warn!(entry = %ready.entry.id, deliveries = ready.deliveries, %error, ?backoff, "handler failed; the entry will be retried");
                slot = self.wait_out(backoff, slot).await?;
            }
            match take(
                &mut self.conn,
                &self.config,
                std::slice::from_ref(&ready.entry.id),
            )
            .await
            {
                Ok(mut taken) => {
                    if let Some(again) = taken.pop() {
                        ready.deliveries = again.deliveries;
                        ready.retried = ready.retried.max(again.retried);
                    } else {
                        tracing::debug!(entry = %ready.entry.id, "no longer pending; not retried");
                        return None;
                    }
                }
                Err(error) => {
                    tracing::warn!(entry = %ready.entry.id, %error, "cannot deliver the entry again; it stays pending for a later claim");
                    return None;
                }
            }
            ready = match self.past_max_deliveries(ready).await {
                Ok(ready) => ready,
                Err(outcome) => return Some((outcome, slot)),
            };
            run = self
                .run(std::slice::from_ref(&ready))
                .await
                .pop()
                .expect("one run per entry");
        }
    }

    /// Waits out a retry's `backoff`, without the entry's `slot` while
    /// there is room among the waiting entries, and returns the slot it
    /// holds again; `None` at shutdown.
    async fn wait_out(&self, backoff: Duration, slot: OwnedSemaphorePermit) -> Option<OwnedSemaphorePermit> {
        let waiting = match self.waiting.clone().try_acquire_owned() {
            Ok(waiting) => {
                drop(slot);
                Err(waiting)
            }
            Err(_) => Ok(slot),
        };
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = self.shutdown.cancelled() => return None,
        }
        match waiting {
            Ok(slot) => Some(slot),
            Err(_waiting) => tokio::select! {
                slot = self.slots.clone().acquire_owned() => slot.ok(),
                () = self.shutdown.cancelled() => None,
            },
        }
    }

    /// Gives up on an entry delivered `max_deliveries` times without an
    /// answer from its handler (`Err`, with its outcome), or gives it back
    /// to be run. The handler settles it only the first time the limit is
    /// reached: past it, an earlier `give_up` never returned either.
    async fn past_max_deliveries(&self, ready: Ready) -> Result<Ready, Settlement> {
        let max = self.config.max_deliveries;
        let unanswered = ready.deliveries.saturating_sub(1 + ready.retried);
        if unanswered < max {
            return Ok(ready);
        }
        let reason = format!(
            "delivered {} times, {unanswered} of them without an answer from its handler (limit {max})",
            ready.deliveries
        );
        Err(self.give_up(ready, reason, unanswered == max).await)
    }

    /// One run of the handler on `ready`, all together, under one
    /// `handler_timeout`: one [`Run`] per entry, in order.
    async fn run(&self, ready: &[Ready]) -> Vec<Run> {
        if ready.is_empty() {
            return Vec::new();
        }
        let deliveries = ready.iter().map(Ready::delivery).collect();
        let run = AssertUnwindSafe(self.handler.handle_batch(deliveries)).catch_unwind();
        let every = |run: Run| vec![run; ready.len()];
        match tokio::time::timeout(self.config.handler_timeout, run).await {
            Ok(Ok(results)) if results.len() == ready.len() => results.into_iter().map(Run::from).collect(),
            Ok(Ok(results)) => every(Run::Panicked(format!(
                "the handler answered {} results for {} entries",
                results.len(),
                ready.len()
            ))),
            Ok(Err(panic)) => every(Run::Panicked(format!(
                "handler panicked: {}",
                panic_message(&*panic)
            ))),
            Err(_) => every(Run::Retry(format!(
                "the handler did not finish within {} ms",
                self.config.handler_timeout.as_millis()
            ))),
        }
    }

    /// Gives up on an entry: lets the handler settle it (unless `settle`
    /// is false: an earlier call never returned), then dead-letters it.
    async fn give_up(&self, ready: Ready, reason: String, settle: bool) -> Settlement {
        if !settle {
            let reason = format!("{reason}; not settled: an earlier give_up never returned");
            return dead(ready.entry, reason, ready.deliveries);
        }
        let settled = AssertUnwindSafe(self.handler.give_up(ready.delivery(), &reason))
            .catch_unwind()
            .await;
        let failure = match settled {
            Ok(Ok(())) => return dead(ready.entry, reason, ready.deliveries),
            Ok(Err(error)) => error.to_string(),
            Err(panic) => format!("it panicked: {}", panic_message(&*panic)),
        };
        tracing::error!(stream = %self.config.stream, entry = %ready.entry.id, %reason, %failure, "cannot settle an entry given up; dead-lettered without an outcome");
        let reason = format!("{reason}; settling it failed: {failure}");
        dead(ready.entry, reason, ready.deliveries)
    }
}

/// A decoded entry with its delivery counts, between runs.
pub(crate) struct Ready {
    entry: RawEntry,
    envelope: Envelope,
    /// Redis's delivery count, the current delivery included.
    deliveries: u64,
    /// Earlier deliveries that ended in [`HandleError::Retry`].
    retried: u64,
}

impl Ready {
    fn delivery(&self) -> Delivery {
        Delivery {
            entry_id: self.entry.id.clone(),
            envelope: self.envelope.clone(),
            deliveries: self.deliveries,
        }
    }

    /// The entry's id.
    pub fn id(&self) -> &str {
        &self.entry.id
    }
}

/// How one run of the handler on one entry ended.
#[derive(Clone)]
pub(crate) enum Run {
    Handled,
    Poison(String),
    Panicked(String),
    Retry(String),
    Later(Duration, String),
}

impl From<Result<(), HandleError>> for Run {
    fn from(result: Result<(), HandleError>) -> Self {
        match result {
            Ok(()) => Run::Handled,
            Err(HandleError::Poison(reason)) => Run::Poison(reason),
            Err(HandleError::Retry(error)) => Run::Retry(format!("{error:#}")),
            Err(HandleError::Later(after, why)) => Run::Later(after.max(MIN_LATER), why),
        }
    }
}

/// An entry whose run failed, for [`Attempts::finish`].
pub(crate) struct Failed {
    ready: Ready,
    run: Run,
}

impl Failed {
    /// The entry's id.
    pub fn id(&self) -> &str {
        self.ready.id()
    }
}

/// What the first run of a batch left for one of its entries.
pub(crate) enum Step {
    /// Settled: handled, or given up.
    Done(Settlement),
    /// Failed: to be taken to its outcome by [`Attempts::finish`].
    Failed(Failed),
}

/// The `trace` the entries share, if they all carry the same one.
fn shared_trace(ready: &[Ready]) -> Option<&str> {
    let first = ready.first()?.envelope.trace.as_deref()?;
    ready
        .iter()
        .all(|r| r.envelope.trace.as_deref() == Some(first))
        .then_some(first)
}

fn dead(entry: RawEntry, reason: String, deliveries: u64) -> Settlement {
    Settlement::Dead(DeadLetterRequest {
        entry,
        reason,
        deliveries,
    })
}

/// How long ago entry `id` was published (its id's milliseconds).
fn age(id: &str) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_millis() as u64);
    let published = StreamId::parse(id).map_or(now, |id| id.ms);
    Duration::from_millis(now.saturating_sub(published))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(std::string::ToString::to_string)
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
