//! The pause between two tries to reach Redis.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Exponential backoff from 50 ms to 2 s, cut short by cancellation.
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(50),
        }
    }
}

impl Backoff {
    /// Sleeps the current delay and doubles it; `false` if `cancel` fired.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(2));
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = cancel.cancelled() => false,
        }
    }

    /// Starts again from the shortest delay.
    pub fn reset(&mut self) {
        self.next = Duration::from_millis(50);
    }
}
