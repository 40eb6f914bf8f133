//! Work done once per cluster, by one instance at a time: a lease in Redis.
//!
//! Several instances of a service share its streams, but some of its work
//! must not run in each of them at once: trimming, re-announcing stalled
//! campaigns, seeding. Whoever runs it holds the lease: the key
//! `comms:lease:<name>`, set to the holder's name with a time to live
//! (`SET … NX PX`). The holder renews it every third of that time
//! (compare-and-renew, one Lua script) and deletes it when it stops
//! (compare-and-delete), so another instance takes over at once after a
//! clean stop, and within about one time to live after the holder dies
//! without a word (a SIGKILL, a lost network).
//!
//! A holder that cannot renew (the key expired, another took it, Redis did
//! not answer) stops the work it runs under the lease at that point rather
//! than carrying on beside a successor: the work is dropped, so it must be
//! safe to cut short (a trim, a round of re-announcements, a database
//! transaction that rolls back).

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::connection::Redis;
use crate::error::Result;
use crate::keys::lease_key;

/// Takes the lease when it is free and renews it when it is the holder's,
/// in one step: `KEYS[1]` the lease, `ARGV[1]` the holder, `ARGV[2]` the
/// time to live in milliseconds. Returns 1 when the holder holds it after.
const ACQUIRE: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Deletes the lease only when it is still the holder's: a holder that
/// lost it never frees its successor's.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// One holder's handle on one lease: cheap to clone, each clone the same
/// holder.
#[derive(Clone)]
pub struct Lease {
    /// The event store's connection.
    conn: Redis,
    /// `comms:lease:<name>`.
    key: String,
    /// Who holds it when this handle does: a name unique among the live
    /// instances (the consumer name), readable in Redis.
    holder: String,
    /// How long the lease outlives its holder's last renewal.
    ttl: Duration,
}

impl Lease {
    /// The lease `name` as seen by `holder`, kept for `ttl` past each
    /// renewal (at least 3 ms, renewed every third of it).
    pub fn new(conn: Redis, name: &str, holder: &str, ttl: Duration) -> Self {
        Self {
            conn,
            key: lease_key(name),
            holder: holder.to_string(),
            ttl: ttl.max(Duration::from_millis(3)),
        }
    }

    /// How often the holder renews, and a waiting instance asks again.
    fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Takes the lease if it is free, renews it if it is already this
    /// holder's; `true` when this holder holds it now.
    pub async fn acquire(&self) -> Result<bool> {
        self.eval(ACQUIRE, Some(self.ttl.as_millis() as u64)).await
    }

    /// Gives the lease up if this holder holds it; `true` when it did.
    pub async fn release(&self) -> Result<bool> {
        self.eval(RELEASE, None).await
    }

    /// Runs `script` on the lease's key, with this holder (and `ttl_ms`,
    /// when given) as its arguments; `true` when it answered 1, which is
    /// how both scripts say they did what was asked.
    async fn eval(&self, script: &str, ttl_ms: Option<u64>) -> Result<bool> {
        let done: i64 = redis::cmd("EVAL")
            .arg(script)
            .arg(1)
            .arg(&self.key)
            .arg(&self.holder)
            .arg(ttl_ms)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(done == 1)
    }

    /// Who holds the lease now, if anyone.
    pub async fn holder(&self) -> Result<Option<String>> {
        Ok(redis::cmd("GET")
            .arg(&self.key)
            .query_async(&mut self.conn.clone())
            .await?)
    }

    /// Runs `work`, which must start with the lease held, renewing the
    /// lease while it runs; `None` when the lease was lost first, and
    /// `work` dropped there.
    pub async fn while_held<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                output = &mut work => return Some(output),
                () = tokio::time::sleep(self.renew_every()) => {}
            }
            match self.acquire().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(lease = %self.key, "lease taken by another holder; work stopped");
                    return None;
                }
                Err(error) => {
                    tracing::warn!(lease = %self.key, %error, "cannot renew the lease; work stopped");
                    return None;
                }
            }
        }
    }

    /// Waits for the lease, runs `work` under it, and releases it: the
    /// work of one instance at a time, done once by each (say, seeding,
    /// which the first does and the next finds done). A lease lost midway
    /// is waited for again and `work` run anew.
    pub async fn exclusive<F, Fut>(&self, mut work: F) -> Result<Fut::Output>
    where
        F: FnMut() -> Fut,
        Fut: Future,
    {
        loop {
            while !self.acquire().await? {
                tokio::time::sleep(self.renew_every()).await;
            }
            if let Some(output) = self.while_held(work()).await {
                self.release().await?;
                return Ok(output);
            }
        }
    }

    /// Runs `round` every `every` while this holder holds the lease, until
    /// `shutdown`; then releases it. The others keep asking, every third
    /// of the time to live, and one of them takes over when the holder
    /// stops or dies.
    pub async fn run_rounds<F, Fut>(self, every: Duration, mut round: F, shutdown: CancellationToken)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut ticker = tokio::time::interval(every.min(self.renew_every()));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_round: Option<Instant> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            match self.acquire().await {
                Ok(true) => {}
                Ok(false) => {
                    last_round = None;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(lease = %self.key, %error, "cannot take the lease; will retry");
                    continue;
                }
            }
            if last_round.is_some_and(|last| last.elapsed() < every) {
                continue;
            }
            last_round = Some(Instant::now());
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = self.while_held(round()) => {}
            }
        }
        if let Err(error) = self.release().await {
            tracing::warn!(lease = %self.key, %error, "cannot release the lease; it expires on its own");
        }
    }
}
