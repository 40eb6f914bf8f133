//! What a service writes: a [`Handler`] of [`Delivery`]s, which answers
//! with success, [`HandleError::Retry`], [`HandleError::Later`] or
//! [`HandleError::Poison`], and may settle the entries the worker gives up
//! on ([`Handler::give_up`]).
//!
//! The worker hands each read's entries to [`Handler::handle_batch`] at
//! once, so that a service can share one database transaction and one
//! publish pipeline among them; each entry still gets its own answer, and
//! only the entries that failed are run again, each on its own.
//!
//! Retry is decided in one place, the worker: a handler says "transient" or
//! "permanent" and nothing more.

use std::future::Future;
use std::time::Duration;

use crate::envelope::{DecodeError, Envelope};

/// One entry handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The entry's id in the stream.
    pub entry_id: String,
    /// The decoded envelope; the handler decodes the payload to its type.
    pub envelope: Envelope,
    /// How many times a handler has been started on this entry, this time
    /// included, by any consumer of the group (Redis's delivery count; the
    /// worker raises it only when it is about to run the handler).
    pub deliveries: u64,
}

/// Why a handler did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// A transient failure (a database or server briefly away): the worker
    /// delivers the entry again after a backoff that grows from
    /// `claim_idle` to `retry_backoff_max`, for as long as the entry is
    /// younger than `retry_budget`; `max_deliveries` does not apply.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// Not now, and nothing failed (a send rate or quota is used up): the
    /// worker delivers the entry again after this wait (at least
    /// [`MIN_LATER`]), without counting a failure, without a backoff
    /// and whatever its age: `retry_budget` and `max_deliveries` do not
    /// apply. The string says what it waits for.
    #[error("deferred for {0:?}: {1}")]
    Later(Duration, String),
    /// The entry can never succeed (unknown event, invalid payload): it goes
    /// to the dead-letter stream at once.
    #[error("{0}")]
    Poison(String),
}

/// The shortest wait of a [`HandleError::Later`]: a handler that answers
/// "later" at once, again and again, still leaves the worker room.
pub const MIN_LATER: Duration = Duration::from_millis(10);

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

/// What a worker runs on the entries of each read. Any
/// `Fn(Delivery) -> Future` closure is a handler, run on the entries of a
/// read concurrently (one that settles nothing when an entry is given up).
/// It must be idempotent: at-least-once delivery means it may see the same
/// entry again.
pub trait Handler: Send + Sync + 'static {
    /// Handles the entries of one read together, answering one result per
    /// delivery, in their order. An entry's effects must be complete (its
    /// writes committed, its events published) when its result is `Ok`:
    /// the worker acks it then.
    ///
    /// The worker runs a batch under one `handler_timeout`; a panic or a
    /// timeout counts against every entry of the batch, and each failed
    /// entry is then run again on its own (a batch of one), so one bad entry
    /// does not hold the others back.
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl Future<Output = Vec<Result<(), HandleError>>> + Send;

    /// Called once when the worker gives up on an entry that decodes as an
    /// envelope (poison, a retry budget spent, too many deliveries that
    /// never answered), just before it is moved to the dead-letter stream
    /// and acked. This is where a service publishes the entry's final
    /// outcome (say, `failed: dead-lettered`), so that nothing downstream
    /// waits for it forever. It must not attempt the entry's effect again:
    /// the entry may be one that crashes the process.
    ///
    /// An error (or a panic) is logged and written into the dead letter's
    /// reason; the entry is dead-lettered all the same, for an operator to
    /// replay. The default settles nothing.
    fn give_up(
        &self,
        delivery: Delivery,
        reason: &str,
    ) -> impl Future<Output = Result<(), HandleError>> + Send {
        let _ = (delivery, reason);
        async { Ok(()) }
    }
}

/// A shared handler: the workers of a stream's partitions run one handler.
impl<H: Handler> Handler for std::sync::Arc<H> {
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl Future<Output = Vec<Result<(), HandleError>>> + Send {
        self.as_ref().handle_batch(deliveries)
    }

    fn give_up(
        &self,
        delivery: Delivery,
        reason: &str,
    ) -> impl Future<Output = Result<(), HandleError>> + Send {
        self.as_ref().give_up(delivery, reason)
    }
}

impl<F, Fut> Handler for F
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandleError>> + Send,
{
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl Future<Output = Vec<Result<(), HandleError>>> + Send {
        futures::future::join_all(deliveries.into_iter().map(self))
    }
}
