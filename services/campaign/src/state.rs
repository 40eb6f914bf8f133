//! What campaign-service's routes share, and the figures several of them
//! read (the stream figures are both a route and part of the live channel).

use contracts::control::ControlBoard;
use contracts::unsubscribe::TokenKey;
use contracts::Streams;
use eventstore::{partitioned_stats, Publisher, Redis, StreamStats};
use servicekit::access::Access;
use servicekit::suppressed::SuppressedAddresses;
use tokio_util::sync::CancellationToken;

use crate::handlers::Tracker;
use crate::routes::live::LiveFeed;
use crate::store::CampaignStore;
use crate::webhooks::store::WebhookStore;
use crate::webhooks::subscribers::Subscribers;

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    /// Campaign store and publisher: the routes' writes.
    pub tracker: Tracker,
    /// The campaigns as the routes read them, on the service's read pool
    /// ([`servicekit::service::Service::reads`]): a reader never holds up
    /// the stream handlers' writes.
    pub reads: CampaignStore,
    /// For stream figures and dead letters: the routes' own connection
    /// ([`servicekit::service::Service::routes_redis`]), never the
    /// pipeline's, since the routes read at the idle priority use it.
    pub redis: Redis,
    /// Publishes what a request asks for (an unsubscribe's consent change).
    pub publisher: Publisher,
    /// Verifies the tokens of unsubscribe links (`UNSUBSCRIBE_KEY`).
    pub unsubscribe_key: TokenKey,
    /// The streams and their partitions.
    pub streams: Streams,
    /// Who may write.
    pub access: Access,
    /// Ends the live channels at shutdown.
    pub shutdown: CancellationToken,
    /// The snapshots every live channel shows, read once for all.
    pub live: LiveFeed,
    /// Where the other services read which campaigns are paused or
    /// cancelled.
    pub board: ControlBoard,
    /// Campaigns that may be in progress at once (`CAMPAIGN_MAX_IN_PROGRESS`):
    /// a creation past it is refused ([`crate::quota`]).
    pub max_in_progress: u64,
    /// The copy of the suppression list: a message to an address on it is
    /// refused.
    pub suppressed: SuppressedAddresses,
    /// The webhook endpoints and their events.
    pub webhooks: WebhookStore,
    /// The endpoints' kinds, as the intake and dispatcher see them.
    pub subscribers: Subscribers,
    /// Whether webhook URLs may go to link-local and metadata addresses
    /// (`CAMPAIGN_WEBHOOK_ALLOW_LINK_LOCAL`).
    pub allow_link_local: bool,
}

impl AppState {
    /// The figures of every stream of comms, a split stream's partitions
    /// added up.
    pub async fn stream_stats(&self) -> anyhow::Result<Vec<StreamStats>> {
        stream_stats(&self.redis, &self.streams).await
    }
}

/// The figures of every stream of `streams`, a split stream's partitions
/// added up.
pub async fn stream_stats(redis: &Redis, streams: &Streams) -> anyhow::Result<Vec<StreamStats>> {
    let mut conn = redis.clone();
    let mut all = Vec::new();
    for stream in streams.all() {
        all.push(partitioned_stats(&mut conn, stream).await?);
    }
    Ok(all)
}
