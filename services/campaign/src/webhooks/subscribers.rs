//! The endpoints and the kinds each asked for, read from the database at
//! most once per [`SUBSCRIBERS_TTL`] and shared by the intake and the
//! dispatcher: with no endpoint registered, that read is all either does.
//! An endpoint registered or removed through this instance is seen at
//! once; through another, within the TTL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::store::{Subscriber, WebhookStore};

/// How long the endpoints' kinds are kept in memory before they are read
/// again: an endpoint registered through another instance receives events
/// within this.
pub const SUBSCRIBERS_TTL: Duration = Duration::from_secs(1);

/// The endpoints' kinds, cached.
#[derive(Clone)]
pub struct Subscribers {
    store: WebhookStore,
    cached: Arc<Mutex<Option<Cached>>>,
}

/// The endpoints' kinds and when they were read.
type Cached = (Instant, Arc<Vec<Subscriber>>);

impl Subscribers {
    /// The endpoints of `store`.
    pub fn new(store: WebhookStore) -> Self {
        Self {
            store,
            cached: Arc::default(),
        }
    }

    /// The endpoints' kinds, read at most every [`SUBSCRIBERS_TTL`].
    pub async fn current(&self) -> anyhow::Result<Arc<Vec<Subscriber>>> {
        let mut cached = self.cached.lock().await;
        if let Some((read_at, subscribers)) = cached.as_ref() {
            if read_at.elapsed() < SUBSCRIBERS_TTL {
                return Ok(subscribers.clone());
            }
        }
        let subscribers = Arc::new(self.store.subscribers().await?);
        *cached = Some((Instant::now(), subscribers.clone()));
        Ok(subscribers)
    }

    /// Drops the cached list, for the next look to read it again: after
    /// this instance registers or removes an endpoint.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}
