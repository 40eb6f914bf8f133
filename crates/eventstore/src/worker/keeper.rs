//! The entries a worker holds, kept from looking idle.
//!
//! An entry is held from its read (or claim) until the acker has settled
//! it, or until its task lets it go. A slow handler must not make its entry
//! look abandoned: every `claim_idle / 3` the keeper re-claims the held
//! entries to this consumer with `XCLAIM … JUSTID`, which restarts their
//! idle time without counting a delivery (Redis 7.0), so no consumer, this
//! one included, claims them while they are held. When the worker dies the
//! keeping stops, and the entries become claimable after `claim_idle`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::connection::Redis;
use tokio_util::sync::CancellationToken;

use super::commands::keep;
use super::config::WorkerConfig;

/// The ids of the entries this worker holds, shared by the read loops (which
/// add them), the tasks and the acker (which remove them).
#[derive(Clone, Default)]
pub(crate) struct Held(Arc<Mutex<HashSet<String>>>);

impl Held {
    /// Holds `id`; `false` if it is held already (a second handler must
    /// not start on it).
    pub fn hold(&self, id: &str) -> bool {
        self.lock().insert(id.to_string())
    }

    /// Whether `id` is held.
    pub fn holds(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    /// Lets `ids` go.
    pub fn release<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut held = self.lock();
        for id in ids {
            held.remove(id);
        }
    }

    fn snapshot(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Re-claims the held entries every [`WorkerConfig::keep_every`] until
/// `stop`. A failure is logged and tried again at the next tick.
pub(crate) async fn keep_held(
    mut conn: Redis,
    config: Arc<WorkerConfig>,
    held: Held,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(config.keep_every());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let ids = held.snapshot();
        if ids.is_empty() {
            continue;
        }
        if let Err(error) = keep(&mut conn, &config, &ids).await {
            tracing::warn!(stream = %config.stream, %error, held = ids.len(), "cannot keep the held entries fresh");
        }
    }
}
