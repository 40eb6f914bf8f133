//! Appending envelopes to streams.
//!
//! A single event is one `XADD`. Many go as pipelines of
//! [`Publisher::PIPELINE_CHUNK`] commands, one round trip per chunk instead
//! of one per entry: [`Publisher::publish_batch`] to one stream, and
//! [`Publisher::publish_many`] each to its own (a campaign's audience,
//! thousands of notifications, each to its recipient's partition).

use crate::batch::Batch;
use crate::connection::Redis;
use crate::envelope::Envelope;
use crate::error::Result;

/// Publishes envelopes on a shared, self-reconnecting connection.
/// Cloning is cheap; clones share the connection.
#[derive(Clone)]
pub struct Publisher {
    conn: Redis,
}

impl Publisher {
    /// How many `XADD`s one pipeline carries: large enough to amortise the
    /// round trip, small enough to keep Redis's reply buffer modest.
    pub const PIPELINE_CHUNK: usize = 2_000;

    /// A publisher on `conn` (see [`crate::RedisTarget::shared`]).
    pub fn new(conn: Redis) -> Self {
        Self { conn }
    }

    /// Appends one envelope to `stream` and returns its entry id.
    pub async fn publish(&self, stream: &str, envelope: &Envelope) -> Result<String> {
        let mut conn = self.conn.clone();
        let id: String = xadd(stream, envelope).query_async(&mut conn).await?;
        Ok(id)
    }

    /// Appends all `envelopes` to `stream`, in order, pipelined. Returns the
    /// number appended. On error, a prefix of the batch may have been written:
    /// callers publish events with deterministic ids so that repeating the
    /// whole batch is harmless downstream.
    pub async fn publish_batch(&self, stream: &str, envelopes: &[Envelope]) -> Result<usize> {
        let mut conn = self.conn.clone();
        for chunk in envelopes.chunks(Self::PIPELINE_CHUNK) {
            let mut pipe = redis::pipe();
            for envelope in chunk {
                pipe.add_command(xadd(stream, envelope)).ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
        }
        Ok(envelopes.len())
    }
}

impl Publisher {
    /// Appends each `(stream, envelope)` to its stream, in order, in one
    /// pipeline: for many small events from concurrent handlers, one round
    /// trip instead of one each (on a cluster, one per slot, each stream's
    /// entries still in order).
    pub async fn publish_many<S: AsRef<str>>(&self, events: &[(S, Envelope)]) -> Result<usize> {
        let mut conn = self.conn.clone();
        for chunk in events.chunks(Self::PIPELINE_CHUNK) {
            let mut batch = Batch::default();
            for (stream, envelope) in chunk {
                batch.add(xadd(stream.as_ref(), envelope));
            }
            batch.run(&mut conn).await?;
        }
        Ok(events.len())
    }
}

fn xadd(stream: &str, envelope: &Envelope) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (field, value) in envelope.to_fields() {
        cmd.arg(field).arg(value);
    }
    cmd
}
