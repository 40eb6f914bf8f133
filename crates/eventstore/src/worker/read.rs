//! A read loop: one reading connection of a worker, and the dispatch of
//! what it reads (and, for the primary loop, what it claims) to a task per
//! read, whose entries run together.
//!
//! Slots are reserved before each read or claim, so no loop ever takes
//! more entries than there are free slots, and waiting for a slot watches
//! shutdown.

use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::attempt::{Attempts, Step};
use super::backoff::Backoff;
use super::commands::{claim_idle_ids, forget_idle_consumers, read_new, take, Claimed};
use super::keeper::Held;
use super::settle::Settlement;
use super::Handler;
use crate::connection::{Redis, RedisTarget};
use crate::group::ensure_group;

/// One reading connection of a worker. A worker runs `readers` of them:
/// reading, parsing and dispatching a batch are sequential within one loop,
/// so a second loop keeps Redis and the handlers busy meanwhile. The
/// primary loop also claims the group's idle entries.
pub(crate) struct ReadLoop<H> {
    pub target: RedisTarget,
    pub ctrl: Redis,
    pub primary: bool,
    pub dispatcher: Dispatcher<H>,
}

impl<H: Handler> ReadLoop<H> {
    /// Reads, claims and dispatches until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let config = self.dispatcher.attempts.config.clone();
        let mut reader: Option<Redis> = None;
        let mut backoff = Backoff::default();
        let mut last_claim: Option<Instant> = None;

        while !shutdown.is_cancelled() {
            let Some(conn) = reader.as_mut() else {
                match self.connect_reader().await {
                    Ok(conn) => reader = Some(conn),
                    Err(error) => {
                        tracing::warn!(stream = %config.stream, %error, "cannot reach Redis; retrying");
                        if !backoff.wait(&shutdown).await {
                            break;
                        }
                    }
                }
                continue;
            };

            if self.primary && last_claim.is_none_or(|at| at.elapsed() >= config.claim_every) {
                last_claim = Some(Instant::now());
                let Some(reserved) = self.dispatcher.reserve(&shutdown).await else {
                    break;
                };
                if let Err(error) = self.claim_idle(reserved).await {
                    tracing::warn!(stream = %config.stream, %error, "claiming idle entries failed");
                }
            }

            let Some(reserved) = self.dispatcher.reserve(&shutdown).await else {
                break;
            };
            match read_new(conn, &config, reserved.num_permits()).await {
                Ok(entries) => {
                    backoff.reset();
                    self.dispatcher.dispatch(entries, reserved);
                }
                Err(error) if error.code() == Some("NOGROUP") => {
                    if let Err(error) = ensure_group(&mut self.ctrl, &config.stream, &config.group).await {
                        tracing::warn!(stream = %config.stream, %error, "cannot recreate the consumer group");
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
    }

    async fn connect_reader(&mut self) -> crate::Result<Redis> {
        let config = &self.dispatcher.attempts.config;
        let conn = self.target.dedicated(config.block).await?;
        ensure_group(&mut self.ctrl, &config.stream, &config.group).await?;
        Ok(conn)
    }

    /// Claims entries of the group idle longer than `claim_idle` (their
    /// consumer died, or left them when Redis was away), as many as
    /// `reserved` has slots, and dispatches them. An idle entry this worker
    /// still holds (its keeping failed meanwhile) is left to its task. Then
    /// forgets the group's consumers left idle with nothing pending (dead
    /// processes' names).
    async fn claim_idle(&mut self, reserved: OwnedSemaphorePermit) -> crate::Result<()> {
        let config = self.dispatcher.attempts.config.clone();
        let mut reserved = Some(reserved);
        let mut cursor = "0-0".to_string();
        while let Some(slots) = reserved.as_ref().map(OwnedSemaphorePermit::num_permits) {
            let page = claim_idle_ids(&mut self.ctrl, &config, &cursor, slots).await?;
            let ids: Vec<String> = page
                .ids
                .into_iter()
                .filter(|id| !self.dispatcher.held.holds(id))
                .collect();
            if !ids.is_empty() {
                let claimed = take(&mut self.ctrl, &config, &ids).await?;
                tracing::info!(stream = %config.stream, claimed = claimed.len(), "claimed idle entries");
                reserved = self
                    .dispatcher
                    .dispatch(claimed, reserved.take().expect("slots left"));
            }
            match page.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let forgotten = forget_idle_consumers(&mut self.ctrl, &config).await?;
        if forgotten > 0 {
            tracing::info!(stream = %config.stream, forgotten, "forgot consumers left idle with nothing pending");
        }
        Ok(())
    }
}

/// Starts a task per read: its entries run together, each holding one slot.
pub(crate) struct Dispatcher<H> {
    pub attempts: Attempts<H>,
    pub held: Held,
    pub permits: Arc<Semaphore>,
    pub outcomes: mpsc::Sender<Settlement>,
    pub tasks: TaskTracker,
    /// Cut at the end of the shutdown grace: tasks drop what they run.
    pub abandon: CancellationToken,
}

impl<H: Handler> Dispatcher<H> {
    /// Waits for at least one free slot and reserves up to `batch_size`
    /// of the free ones; `None` at shutdown.
    async fn reserve(&self, shutdown: &CancellationToken) -> Option<OwnedSemaphorePermit> {
        let batch = self.attempts.config.batch_size.max(1);
        loop {
            let free = self.permits.available_permits();
            if free > 0 {
                if let Ok(reserved) = self
                    .permits
                    .clone()
                    .try_acquire_many_owned(free.min(batch) as u32)
                {
                    return Some(reserved);
                }
                continue;
            }
            tokio::select! {
                permit = self.permits.clone().acquire_owned() => drop(permit),
                () = shutdown.cancelled() => return None,
            }
        }
    }

    /// Starts one task for the entries not already held, each with one
    /// slot of `reserved` (their number is recorded as
    /// `comms_worker_read_batch_size`, the batch a handler gets): it runs them together, hands each outcome to the
    /// acker as soon as the entry has one, and starts a task of its own for
    /// each entry that failed. Returns the slots left over.
    fn dispatch(
        &self,
        entries: Vec<Claimed>,
        reserved: OwnedSemaphorePermit,
    ) -> Option<OwnedSemaphorePermit> {
        let mut reserved = Some(reserved);
        let mut batch = Vec::with_capacity(entries.len());
        let mut slots = Vec::with_capacity(entries.len());
        for claimed in entries {
            if !self.held.hold(&claimed.entry.id) {
                continue;
            }
            let Some(permit) = take_one(&mut reserved) else {
                // Never more entries than slots were asked for; should it
                // happen, the entry stays pending and is claimed later.
                self.held.release([claimed.entry.id.as_str()]);
                continue;
            };
            batch.push(claimed);
            slots.push(permit);
        }
        if batch.is_empty() {
            return reserved;
        }
        let config = &self.attempts.config;
        let labels = [("stream", config.stream.clone()), ("group", config.group.clone())];
        metrics::histogram!("comms_worker_read_batch_size", &labels).record(batch.len() as f64);
        let (attempts, settler, tasks) = (self.attempts.clone(), self.settler(), self.tasks.clone());
        self.tasks.spawn(async move {
            let steps = tokio::select! {
                steps = attempts.first_run(batch) => steps,
                () = settler.abandon.cancelled() => return,
            };
            for (step, slot) in steps.into_iter().zip(slots) {
                match step {
                    Step::Done(outcome) => settler.hand_over(outcome, slot).await,
                    Step::Failed(failed) => {
                        let (attempts, settler) = (attempts.clone(), settler.clone());
                        tasks.spawn(async move {
                            let id = failed.id().to_string();
                            let outcome = tokio::select! {
                                outcome = attempts.finish(failed, slot) => outcome,
                                () = settler.abandon.cancelled() => return,
                            };
                            match outcome {
                                Some((outcome, slot)) => settler.hand_over(outcome, slot).await,
                                None => settler.held.release([id.as_str()]),
                            }
                        });
                    }
                }
            }
        });
        reserved
    }

    fn settler(&self) -> Settler {
        Settler {
            held: self.held.clone(),
            outcomes: self.outcomes.clone(),
            abandon: self.abandon.clone(),
        }
    }
}

/// Hands outcomes from the entry tasks to the acker.
#[derive(Clone)]
struct Settler {
    held: Held,
    outcomes: mpsc::Sender<Settlement>,
    abandon: CancellationToken,
}

impl Settler {
    /// Sends `outcome` to the acker; its entry's `slot` is freed once the
    /// acker has taken it. Stops waiting when the task is abandoned.
    async fn hand_over(&self, outcome: Settlement, slot: OwnedSemaphorePermit) {
        let _slot = slot;
        tokio::select! {
            sent = self.outcomes.send(outcome) => {
                if let Err(unsent) = sent {
                    self.held.release([unsent.0.id()]);
                }
            }
            () = self.abandon.cancelled() => {}
        }
    }
}

/// One slot out of `reserved`, leaving the rest in it.
fn take_one(reserved: &mut Option<OwnedSemaphorePermit>) -> Option<OwnedSemaphorePermit> {
    match reserved.take() {
        Some(mut batch) if batch.num_permits() > 1 => {
            let one = batch.split(1);
            *reserved = Some(batch);
            one
        }
        last => last,
    }
}
