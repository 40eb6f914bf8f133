//! The life of one held entry: run its handler, retry it after a backoff,
//! or give it up, until it has an outcome for the acker.
//!
//! - Success: acked.
//! - [`HandleError::Retry`], or a run longer than
//!   [`WorkerConfig::handler_timeout`]: the entry keeps its slot and is delivered
//!   again to this worker after [`WorkerConfig::retry_backoff`], while its
//!   age plus the backoff stays within `retry_budget`; past that it is
//!   given up. Such deliveries are counted apart (see [`super::commands`]),
//!   so `max_deliveries` never applies to them.
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

use futures::FutureExt;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::commands::{record_retry, take, Claimed};
use super::config::WorkerConfig;
use super::handler::{Delivery, HandleError, Handler};
use super::settle::Outcome;
use super::WorkerCounters;
use crate::deadletter::DeadLetterRequest;
use crate::entry::{RawEntry, StreamId};
use crate::envelope::Envelope;

/// What every entry task of a worker shares.
pub(crate) struct Attempts<H> {
    pub handler: Arc<H>,
    pub config: Arc<WorkerConfig>,
    pub conn: ConnectionManager,
    pub counters: Arc<WorkerCounters>,
    /// Stops waiting for a retry's backoff (the entry stays pending).
    pub shutdown: CancellationToken,
}

impl<H> Clone for Attempts<H> {
    fn clone(&self) -> Self {
        Self {
            handler: self.handler.clone(),
            config: self.config.clone(),
            conn: self.conn.clone(),
            counters: self.counters.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<H: Handler> Attempts<H> {
    /// Runs `claimed` to its outcome. `None` when it is let go without one
    /// (shutdown during a backoff, Redis away at a retry, or the entry no
    /// longer pending): if still pending, it is claimed again later.
    /// Everything logged meanwhile, by the worker or the handler, is in a
    /// span carrying the entry's `trace` (its W3C traceparent), so that one
    /// campaign can be followed across the services' logs.
    pub async fn settle(self, claimed: Claimed) -> Option<Outcome> {
        let envelope = match Envelope::from_fields(&claimed.entry.fields) {
            Ok(envelope) => envelope,
            Err(error) => {
                let reason = format!("undecodable entry: {error}");
                return Some(dead(claimed.entry, reason, claimed.deliveries));
            }
        };
        let span = tracing::info_span!(
            "entry",
            stream = %self.config.stream,
            trace = envelope.trace.as_deref().unwrap_or_default()
        );
        self.settle_decoded(claimed, envelope).instrument(span).await
    }

    async fn settle_decoded(mut self, claimed: Claimed, envelope: Envelope) -> Option<Outcome> {
        let Claimed {
            entry,
            mut deliveries,
            mut retried,
        } = claimed;
        let max = self.config.max_deliveries;
        loop {
            let unanswered = deliveries.saturating_sub(1 + retried);
            if unanswered >= max {
                let reason = format!(
                    "delivered {deliveries} times, {unanswered} of them without an answer from its handler (limit {max})"
                );
                let settle = unanswered == max;
                return Some(self.give_up(entry, envelope, deliveries, reason, settle).await);
            }
            let delivery = delivery(&entry, &envelope, deliveries);
            let run = AssertUnwindSafe(self.handler.handle(delivery)).catch_unwind();
            let result = match tokio::time::timeout(self.config.handler_timeout, run).await {
                Ok(result) => result,
                Err(_) => Ok(Err(HandleError::Retry(anyhow::anyhow!(
                    "the handler did not finish within {} ms",
                    self.config.handler_timeout.as_millis()
                )))),
            };
            let error = match result {
                Ok(Ok(())) => {
                    tracing::debug!(entry = %entry.id, event = %envelope.event_type, "handled");
                    return Some(Outcome::Handled {
                        id: entry.id,
                        deliveries,
                    });
                }
                Ok(Err(HandleError::Poison(reason))) => {
                    return Some(self.give_up(entry, envelope, deliveries, reason, true).await)
                }
                Err(panic) => {
                    let error = format!("handler panicked: {}", panic_message(&*panic));
                    if deliveries.saturating_sub(retried) >= max {
                        return Some(self.give_up(entry, envelope, deliveries, error, true).await);
                    }
                    error
                }
                Ok(Err(HandleError::Retry(error))) => {
                    let error = format!("{error:#}");
                    let age = age(&entry.id);
                    let backoff = self.config.retry_backoff(deliveries);
                    if age + backoff > self.config.retry_budget {
                        let reason = format!(
                            "still failing {}s after it was published (retry budget {}s); last error: {error}",
                            age.as_secs(),
                            self.config.retry_budget.as_secs()
                        );
                        return Some(self.give_up(entry, envelope, deliveries, reason, true).await);
                    }
                    if let Err(error) = record_retry(&mut self.conn, &self.config, &entry.id).await {
                        tracing::warn!(entry = %entry.id, %error, "cannot count a retry; it will count as unanswered");
                    }
                    retried += 1;
                    error
                }
            };
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(
                "comms_events_failed_total",
                "stream" => self.config.stream.clone(),
                "group" => self.config.group.clone()
            )
            .increment(1);
            let backoff = self.config.retry_backoff(deliveries);
            tracing::warn!(entry = %entry.id, deliveries, %error, ?backoff, "handler failed; the entry will be retried");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.shutdown.cancelled() => return None,
            }
            match take(&mut self.conn, &self.config, std::slice::from_ref(&entry.id)).await {
                Ok(mut taken) => match taken.pop() {
                    Some(again) => {
                        deliveries = again.deliveries;
                        retried = retried.max(again.retried);
                    }
                    None => {
                        tracing::debug!(entry = %entry.id, "no longer pending; not retried");
                        return None;
                    }
                },
                Err(error) => {
                    tracing::warn!(entry = %entry.id, %error, "cannot deliver the entry again; it stays pending for a later claim");
                    return None;
                }
            }
        }
    }

    /// Gives up on an entry: lets the handler settle it (unless `settle`
    /// is false: an earlier call never returned), then dead-letters it.
    async fn give_up(
        &self,
        entry: RawEntry,
        envelope: Envelope,
        deliveries: u64,
        reason: String,
        settle: bool,
    ) -> Outcome {
        if !settle {
            let reason = format!("{reason}; not settled: an earlier give_up never returned");
            return dead(entry, reason, deliveries);
        }
        let delivery = delivery(&entry, &envelope, deliveries);
        let settled = AssertUnwindSafe(self.handler.give_up(delivery, &reason))
            .catch_unwind()
            .await;
        let failure = match settled {
            Ok(Ok(())) => return dead(entry, reason, deliveries),
            Ok(Err(error)) => error.to_string(),
            Err(panic) => format!("it panicked: {}", panic_message(&*panic)),
        };
        tracing::error!(stream = %self.config.stream, entry = %entry.id, %reason, %failure, "cannot settle an entry given up; dead-lettered without an outcome");
        dead(
            entry,
            format!("{reason}; settling it failed: {failure}"),
            deliveries,
        )
    }
}

fn delivery(entry: &RawEntry, envelope: &Envelope, deliveries: u64) -> Delivery {
    Delivery {
        entry_id: entry.id.clone(),
        envelope: envelope.clone(),
        deliveries,
    }
}

fn dead(entry: RawEntry, reason: String, deliveries: u64) -> Outcome {
    Outcome::Dead(DeadLetterRequest {
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
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
