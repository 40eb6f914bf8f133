//! Records each send's final outcome in the ledger as that send ends, not
//! when its whole batch does.
//!
//! A batch's sends end over many seconds (a slow server, a pool smaller
//! than the batch); an outcome kept in memory until the last of them ends
//! is lost with the process, and its email sent again by the next one. So
//! every outcome goes to one writer task as its send ends, and the writer
//! puts what has arrived into the ledger in one transaction: it waits at
//! most [`FLUSH_EVERY`] after the first outcome for more to join it (or
//! until [`FLUSH_AT`] have), and while a write runs the next outcomes
//! queue, so under load one write still takes many outcomes (one write per
//! flush, never one per email). A crash then sends again only the sends in
//! flight and the outcomes of the last few milliseconds, not a batch.
//!
//! The writer is a task of its own: a handler dropped past its timeout
//! leaves the outcomes it handed over to be recorded all the same.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::ledger::{Final, Ledger};

/// How long the writer waits after an outcome arrives for others to share
/// its write.
pub const FLUSH_EVERY: Duration = Duration::from_millis(5);

/// How many outcomes make a write at once, without waiting further.
pub const FLUSH_AT: usize = 256;

/// One outcome to record, and where to say whether it was (`Ok(false)`:
/// its lease was lost, the row is someone else's) or why the write failed.
type Request = (Final, oneshot::Sender<Result<bool, String>>);

/// The handle on the writer task; the task ends when every handle is
/// dropped.
#[derive(Clone)]
pub struct Recorder {
    requests: mpsc::Sender<Request>,
}

impl Recorder {
    /// Starts the writer on `ledger`.
    pub fn spawn(ledger: Ledger) -> Self {
        let (requests, queue) = mpsc::channel(FLUSH_AT * 4);
        tokio::spawn(write(ledger, queue));
        Self { requests }
    }

    /// Records `outcome` with the next flush; `true` when it was recorded,
    /// `false` when its lease had been lost.
    pub async fn record(&self, outcome: Final) -> anyhow::Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((outcome, reply))
            .await
            .map_err(|_| anyhow::anyhow!("the ledger writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the ledger writer has stopped"))?
            .map_err(|error| anyhow::anyhow!(error))
    }
}

/// The writer: takes what is queued (waiting up to [`FLUSH_EVERY`] for up
/// to [`FLUSH_AT`] outcomes), records it in one transaction, answers each.
async fn write(ledger: Ledger, mut queue: mpsc::Receiver<Request>) {
    let mut batch: Vec<Request> = Vec::with_capacity(FLUSH_AT);
    while queue.recv_many(&mut batch, FLUSH_AT).await > 0 {
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < FLUSH_AT {
            let room = FLUSH_AT - batch.len();
            match tokio::time::timeout_at(deadline, queue.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let (outcomes, replies): (Vec<Final>, Vec<_>) = batch.drain(..).unzip();
        match ledger.finish_all(&outcomes).await {
            Ok(recorded) => {
                for (reply, recorded) in replies.into_iter().zip(recorded) {
                    let _ = reply.send(Ok(recorded));
                }
            }
            Err(error) => {
                let error = format!("{error:#}");
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
