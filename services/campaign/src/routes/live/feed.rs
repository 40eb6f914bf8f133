//! What every client of the live channel is shown (the campaigns, the
//! streams' figures, the send limits'), read once per tick for all of them.
//!
//! Each client used to read the latest campaigns (bodies included) and
//! every stream's figures itself, every tick: 200 dashboards open made 200
//! reads of SQLite and Redis each half second, on the one database
//! connection the deliveries handler writes through. Now one task reads a
//! [`Snapshot`] per tick and publishes it on a `watch` channel; a client
//! only compares the snapshot it was last shown with the newest one. The
//! task runs only while some client listens: the first client starts it,
//! and it ends at the first tick with no one left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use contracts::relays::RelayBoard;
use contracts::Streams;
use eventstore::Redis;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::state::stream_stats;
use crate::store::CampaignStore;

/// How often the snapshot is read.
const TICK: Duration = Duration::from_millis(500);

/// Campaigns watched: the latest ones, as the dashboard lists them.
const WATCHED: i64 = 50;

/// What the live channel shows at one tick, as the JSON it sends.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The latest campaigns, newest first: each id and its JSON.
    pub campaigns: Vec<(String, String)>,
    /// The campaigns' JSON by id, for comparing one snapshot with another.
    by_id: HashMap<String, usize>,
    /// Every stream's figures, as JSON; `None` until first read.
    pub streams: Option<String>,
    /// The send limits' figures, as JSON; `None` until a send was limited.
    pub limits: Option<String>,
    /// The SMTP relays' figures, as JSON; `None` until an email-service
    /// instance reported them.
    pub relays: Option<String>,
}

impl Snapshot {
    /// The JSON of campaign `id` in this snapshot, if it is among them.
    pub fn campaign(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(|&at| self.campaigns[at].1.as_str())
    }
}

/// The channel a client reads: `None` until the first snapshot is read.
pub type Receiver = watch::Receiver<Option<Arc<Snapshot>>>;

/// The sender of the running task, shared with the subscribers.
type Sender = Arc<watch::Sender<Option<Arc<Snapshot>>>>;

/// The shared reader of the live channel's snapshots.
#[derive(Clone)]
pub struct LiveFeed {
    /// The campaigns.
    store: CampaignStore,
    /// For the stream figures.
    redis: Redis,
    /// The streams whose figures are shown.
    streams: Streams,
    /// Ends the task, and with it every client's channel.
    shutdown: CancellationToken,
    /// The running task's sender; `None` while no client listens.
    running: Arc<Mutex<Option<Sender>>>,
}

impl LiveFeed {
    /// A feed of `store`'s campaigns and `streams`' figures; nothing runs
    /// until a client subscribes.
    pub fn new(store: CampaignStore, redis: Redis, streams: Streams, shutdown: CancellationToken) -> Self {
        Self {
            store,
            redis,
            streams,
            shutdown,
            running: Arc::default(),
        }
    }

    /// A new client's view of the snapshots, starting the task that reads
    /// them if it is the only client. The channel closes at shutdown.
    pub fn subscribe(&self) -> Receiver {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = running.as_ref() {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(None);
        let sender = Arc::new(sender);
        *running = Some(sender.clone());
        tokio::spawn(self.clone().run(sender));
        receiver
    }

    /// Reads a snapshot per tick while some client listens, and until
    /// shutdown.
    async fn run(self, sender: Sender) {
        let mut last: Option<Arc<Snapshot>> = None;
        loop {
            let snapshot = Arc::new(self.read(last.as_deref()).await);
            last = Some(snapshot.clone());
            sender.send_if_modified(|current| {
                let changed = current.as_deref() != Some(&*snapshot);
                if changed {
                    *current = Some(snapshot);
                }
                changed
            });
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = tokio::time::sleep(TICK) => {}
            }
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            if sender.receiver_count() == 0 {
                *running = None;
                return;
            }
        }
        self.running.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    /// Reads the campaigns and the stream figures; a part that cannot be
    /// read keeps what `last` had (and says why in the log).
    async fn read(&self, last: Option<&Snapshot>) -> Snapshot {
        metrics::counter!("comms_live_snapshots_total").increment(1);
        let campaigns = match self.store.list(WATCHED).await {
            Ok(campaigns) => campaigns
                .into_iter()
                .map(|campaign| {
                    let json = serde_json::to_string(&campaign).expect("a campaign serializes");
                    (campaign.id, json)
                })
                .collect(),
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "live campaigns: cannot list");
                last.map(|last| last.campaigns.clone()).unwrap_or_default()
            }
        };
        let streams = match stream_stats(&self.redis, &self.streams).await {
            Ok(streams) => Some(serde_json::to_string(&streams).expect("stream figures serialize")),
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "live streams: cannot read");
                last.and_then(|last| last.streams.clone())
            }
        };
        let limits = match eventstore::rate::figures(&self.redis).await {
            Ok(figures) => figures.map(|figures| serde_json::to_string(&figures).expect("figures serialize")),
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "live limits: cannot read");
                last.and_then(|last| last.limits.clone())
            }
        };
        let relays = match RelayBoard::new(self.redis.clone())
            .figures(servicekit::now_ms())
            .await
        {
            Ok(figures) if figures.is_empty() => None,
            Ok(figures) => Some(serde_json::to_string(&figures).expect("figures serialize")),
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "live relays: cannot read");
                last.and_then(|last| last.relays.clone())
            }
        };
        let by_id = campaigns
            .iter()
            .enumerate()
            .map(|(at, (id, _))| (id.clone(), at))
            .collect();
        Snapshot {
            campaigns,
            by_id,
            streams,
            limits,
            relays,
        }
    }
}
