//! What campaign-service's routes share, and the figures several of them
//! read (the stream figures are both a route and part of the live channel).

use contracts::Streams;
use eventstore::{partitioned_stats, Redis, StreamStats};
use servicekit::access::Access;
use tokio_util::sync::CancellationToken;

use crate::handlers::Tracker;

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    /// Campaign store and publisher.
    pub tracker: Tracker,
    /// For stream figures and dead letters.
    pub redis: Redis,
    /// The streams and their partitions.
    pub streams: Streams,
    /// Who may write.
    pub access: Access,
    /// Ends the live channels at shutdown.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// The figures of every stream of comms, a split stream's partitions
    /// added up.
    pub async fn stream_stats(&self) -> anyhow::Result<Vec<StreamStats>> {
        let mut conn = self.redis.clone();
        let mut all = Vec::new();
        for stream in self.streams.all() {
            all.push(partitioned_stats(&mut conn, stream).await?);
        }
        Ok(all)
    }
}
