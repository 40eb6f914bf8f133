//! One window for every expansion (user-service's of audiences,
//! notification-service's of resends): the check that the streams behind
//! the expansions have room for a page, and the page's publication, happen
//! as one step, one expansion at a time.
//!
//! Checked apart, the two let expansions overshoot together: twenty
//! campaigns, each seeing room for its page, publish twenty pages on one
//! window's room (measured: 2,000 entries held with a window of 300,
//! `tests/e2e/tests/flow_control.rs`). So a page goes out only through
//! [`Pacer::enter`], which hands out one [`Slot`] at a time: within a
//! process under a fair mutex (the expansions queue in turn), across
//! instances (and services) under the lease [`WINDOW`] in Redis. The holder of a
//! slot measures the backlog, publishes its page only when it fits, and
//! lets go; the next one measures again and sees that page. Between two
//! slots entries only drain, so at most a window of recipients are ever
//! in the pipeline (docs/architecture.md, *Flow control*, derives the
//! memory bound from that). The cost is two Redis round trips per page (the
//! lease taken and given back), none per email.
//!
//! Waiting expansions do not each poll Redis: a measurement that found no
//! room stands for [`PACE_POLL`], and the others queued behind it wait
//! that out without measuring again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventstore::lease::Lease;
use eventstore::{trim, Redis};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The lease every expander takes its slots under, whatever its service:
/// one window for all of them.
pub const WINDOW: &str = "expansions:pace";

/// How long a measurement that found no room stands before it is taken
/// again: how often waiting expansions look at the backlog.
pub const PACE_POLL: Duration = Duration::from_millis(50);

/// The shared window of the expansions of this process and, through its
/// lease, of every instance.
#[derive(Clone)]
pub struct Pacer {
    /// One page at a time in this process; holds when the last
    /// measurement found no room.
    gate: Arc<Mutex<Option<Instant>>>,
    /// One page at a time across instances.
    lease: Lease,
    /// For measuring the backlog.
    redis: Redis,
    /// Every partition of the streams behind the expansions.
    downstream: Arc<[String]>,
    /// Entries those streams may hold (the window).
    max_backlog: u64,
}

/// The right to publish one page: the backlog was measured under it and
/// the page fits. Given back with [`Slot::leave`] once the page is in the
/// streams.
pub struct Slot {
    /// Held until the page is published.
    gate: OwnedMutexGuard<Option<Instant>>,
    /// Released after the page is published.
    lease: Lease,
    /// What the streams held when the slot was given.
    pub backlog: u64,
}

impl Pacer {
    /// A window of `max_backlog` entries over the streams `downstream`,
    /// shared across instances through `lease`.
    pub fn new(redis: Redis, lease: Lease, downstream: Vec<String>, max_backlog: u64) -> Self {
        Self {
            gate: Arc::new(Mutex::new(None)),
            lease,
            redis,
            downstream: downstream.into(),
            max_backlog,
        }
    }

    /// The window, in entries.
    pub fn max_backlog(&self) -> u64 {
        self.max_backlog
    }

    /// A slot for a page of `page` entries when the streams have room for
    /// it (or are empty: a page larger than the window still goes, alone);
    /// `Err(backlog)` (`None` when not measured: another instance holds
    /// the window, or the last measurement stands) when the page must
    /// wait.
    pub async fn enter(&self, page: u64) -> anyhow::Result<Result<Slot, Option<u64>>> {
        let mut gate = Arc::clone(&self.gate).lock_owned().await;
        if gate.is_some_and(|measured| measured.elapsed() < PACE_POLL) {
            return Ok(Err(None));
        }
        if !self.lease.acquire().await? {
            return Ok(Err(None));
        }
        let measured = trim::backlog(&mut self.redis.clone(), &self.downstream).await;
        let backlog = match measured {
            Ok(backlog) => backlog,
            Err(error) => {
                self.lease.release().await?;
                return Err(error.into());
            }
        };
        if backlog == 0 || backlog + page <= self.max_backlog {
            *gate = None;
            return Ok(Ok(Slot {
                gate,
                lease: self.lease.clone(),
                backlog,
            }));
        }
        *gate = Some(Instant::now());
        self.lease.release().await?;
        Ok(Err(Some(backlog)))
    }
}

impl Slot {
    /// Gives the slot back once the page is in the streams (or given up):
    /// the next expansion measures again. A slot dropped without it frees
    /// this process' queue at once and other instances' when the lease's
    /// time to live runs out.
    pub async fn leave(self) -> anyhow::Result<()> {
        let Self { gate, lease, .. } = self;
        let released = lease.release().await;
        drop(gate);
        released?;
        Ok(())
    }
}
