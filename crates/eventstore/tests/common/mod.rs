//! Shared pieces of the event store's integration tests.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use eventstore::{
    Delivery, Envelope, Event, HandleError, Handler, Publisher, RedisTarget, Worker, WorkerConfig,
    WorkerCounters,
};
use serde::{Deserialize, Serialize};
use testkit::{Persistence, RedisCluster, RedisServer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where a scenario runs: one `redis-server`, or a three-master Redis
/// Cluster; the scenarios that matter run on both.
pub enum Server {
    Node(RedisServer),
    Cluster(RedisCluster),
}

impl Server {
    /// One node, its AOF fsynced on every write (it may be crashed).
    pub fn node() -> Self {
        Self::Node(RedisServer::start_with(Persistence::AofAlways, None))
    }

    /// A three-master cluster, each AOF fsynced on every write.
    pub fn cluster() -> Self {
        Self::Cluster(RedisCluster::start())
    }

    pub fn target(&self) -> RedisTarget {
        let url = match self {
            Self::Node(redis) => redis.url(),
            Self::Cluster(cluster) => cluster.url(),
        };
        RedisTarget::parse(&url).unwrap()
    }

    /// Runs a command outside the code under test (on a cluster, on the
    /// master of its key: its first argument, or its second after a
    /// subcommand such as `XGROUP CREATE`).
    pub fn command(&self, args: &[&str]) {
        match self {
            Self::Node(redis) => {
                redis.command(args);
            }
            Self::Cluster(cluster) => {
                let key = if args[0].eq_ignore_ascii_case("XGROUP") {
                    args[2]
                } else {
                    args[1]
                };
                cluster.command(cluster.master_of(key), args);
            }
        }
    }

    /// Kills the server holding `key` (on a cluster, its master) with
    /// SIGKILL; returns what [`Server::restart`] takes.
    pub fn kill_holder_of(&mut self, key: &str) -> usize {
        match self {
            Self::Node(redis) => {
                redis.kill();
                0
            }
            Self::Cluster(cluster) => {
                let master = cluster.master_of(key);
                cluster.kill(master);
                master
            }
        }
    }

    /// Starts what [`Server::kill_holder_of`] killed again, on its port and
    /// directory, so its AOF is replayed.
    pub fn restart(&mut self, killed: usize) {
        match self {
            Self::Node(redis) => redis.restart(),
            Self::Cluster(cluster) => cluster.restart(killed),
        }
    }
}

/// The event the tests publish: a number to recognise it by.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Numbered {
    pub n: u64,
}

impl Event for Numbered {
    const TYPE: &'static str = "test.numbered";
    const VERSION: u32 = 1;
}

pub async fn publisher(target: &RedisTarget) -> Publisher {
    Publisher::new(target.shared().await.expect("connect publisher"))
}

pub async fn publish_numbers(publisher: &Publisher, stream: &str, range: std::ops::Range<u64>) {
    let envelopes: Vec<Envelope> = range.map(|n| Envelope::new(&Numbered { n }).unwrap()).collect();
    publisher
        .publish_batch(stream, &envelopes)
        .await
        .expect("publish");
}

/// A worker configuration with times short enough for tests.
pub fn fast_config(stream: &str, group: &str, consumer: &str) -> WorkerConfig {
    let mut config = WorkerConfig::new(stream, group, consumer);
    config.block = Duration::from_millis(100);
    config.claim_idle = Duration::from_millis(300);
    config.claim_every = Duration::from_millis(100);
    config.max_deliveries = 3;
    config.shutdown_grace = Duration::from_secs(3);
    config
}

/// Polls `condition` until it holds; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `seen` holds `total` event numbers, failing only when it
/// stops growing for `stall` (the worker is stuck) or after `bound`: a
/// slow machine (a disk that fsyncs slowly under `appendfsync always`)
/// takes longer, a stuck worker makes no progress at all.
pub async fn until_all_seen(seen: &Seen, total: u64, stall: Duration, bound: Duration) {
    let start = Instant::now();
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        let now = seen.lock().unwrap().len() as u64;
        if now == total {
            return;
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        assert!(
            last_change.elapsed() < stall,
            "no entry handled for {stall:?}: {now} of {total} seen"
        );
        assert!(start.elapsed() < bound, "{now} of {total} seen after {bound:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Entries of `group` on `stream` delivered but not acknowledged (0 while
/// the group does not exist yet).
pub async fn pending(target: &RedisTarget, stream: &str, group: &str) -> u64 {
    let mut conn = target.shared().await.unwrap();
    let summary: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(&mut conn)
        .await;
    match summary {
        Err(error) if error.code() == Some("NOGROUP") => 0,
        Err(error) => panic!("XPENDING failed: {error}"),
        Ok(summary) => pending_count(summary),
    }
}

fn pending_count(summary: redis::Value) -> u64 {
    match summary {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    }
}

/// One row of a group's pending list.
#[derive(Debug, Clone)]
pub struct PendingEntry {
    pub id: String,
    pub consumer: String,
    pub idle_ms: u64,
    pub deliveries: u64,
}

/// The pending list of `group` on `stream` (up to 10,000 rows), as Redis
/// holds it.
pub async fn pending_entries(target: &RedisTarget, stream: &str, group: &str) -> Vec<PendingEntry> {
    let mut conn = target.shared().await.unwrap();
    let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(10_000)
        .query_async(&mut conn)
        .await
        .expect("XPENDING");
    rows.into_iter()
        .map(|(id, consumer, idle_ms, deliveries)| PendingEntry {
            id,
            consumer,
            idle_ms,
            deliveries,
        })
        .collect()
}

/// Per event number, the delivery counts it was handled with.
pub type Seen = Arc<Mutex<HashMap<u64, Vec<u64>>>>;

/// Records, per event number, the delivery counts it was handled with.
pub fn record(seen: &Seen, delivery: &Delivery) -> Result<u64, HandleError> {
    let event: Numbered = delivery.envelope.decode()?;
    seen.lock()
        .unwrap()
        .entry(event.n)
        .or_default()
        .push(delivery.deliveries);
    Ok(event.n)
}

/// A handler that records each delivery (see [`record`]), then answers
/// what `then` makes of the event's number and its delivery count: the
/// handler of the scenarios that check which entries ran how often, each
/// saying only how it fails. Recording happens when the handler's future
/// first runs, as a handler's own work would.
pub fn recording<F, Fut>(seen: &Seen, then: F) -> impl Handler
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandleError>> + Send + 'static,
{
    let (seen, then) = (seen.clone(), Arc::new(then));
    move |delivery: Delivery| {
        let (seen, then) = (seen.clone(), then.clone());
        async move {
            let n = record(&seen, &delivery)?;
            then(n, delivery.deliveries).await
        }
    }
}

/// Runs a worker whose handler only records what it sees.
pub fn spawn_recording(target: &RedisTarget, config: WorkerConfig, seen: &Seen) -> Running {
    Running::spawn(target, config, recording(seen, |_, _| async { Ok(()) }))
}

/// A worker running in a task of its own, with what a test watches it by
/// and stops it with: the one way these tests start a worker, so that each
/// says only its configuration, its handler and what it waits for.
pub struct Running {
    /// The worker's counters, live while it runs and final once stopped.
    pub counters: Arc<WorkerCounters>,
    /// The worker's shutdown signal, cancelled by [`Running::stop`].
    shutdown: CancellationToken,
    /// The task of `Worker::run`.
    run: JoinHandle<()>,
}

impl Running {
    /// Starts a worker of `config` on `target`, running `handler`.
    pub fn spawn(target: &RedisTarget, config: WorkerConfig, handler: impl Handler) -> Self {
        capture_logs();
        let worker = Worker::new(target.clone(), config);
        let counters = worker.counters();
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(worker.run(handler, shutdown.clone()));
        Self {
            counters,
            shutdown,
            run,
        }
    }

    /// Waits until the worker has handled (and acked) `count` entries,
    /// exactly; panics with `what` after `timeout`.
    pub async fn until_handled(&self, what: &str, timeout: Duration, count: u64) {
        eventually(what, timeout, || async {
            self.counters.snapshot().handled == count
        })
        .await;
    }

    /// Asks the worker to stop and waits until its run has returned
    /// (panicking if the run panicked).
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        (&mut self.run).await.unwrap();
    }

    /// [`Running::stop`], panicking if the run takes longer than `bound`
    /// to return.
    pub async fn stop_within(&mut self, bound: Duration) {
        self.shutdown.cancel();
        tokio::time::timeout(bound, &mut self.run)
            .await
            .unwrap_or_else(|_| panic!("run did not return within {bound:?} of the shutdown"))
            .unwrap();
    }
}

/// Sends the worker's logs (info and above, or `RUST_LOG`) to the test's
/// captured output, so that a failing scenario shows what the worker did.
fn capture_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _already_set = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Waits until nothing of `group` on stream `s` is pending; panics after
/// `timeout`.
pub async fn until_nothing_pending(target: &RedisTarget, group: &str, timeout: Duration) {
    eventually("nothing pending", timeout, || async {
        pending(target, "s", group).await == 0
    })
    .await;
}

/// A plain `redis-server` (no persistence) whose stream `s` holds the
/// numbered events of `numbers`: where most single-node scenarios begin.
pub async fn node_with(numbers: std::ops::Range<u64>) -> (RedisServer, RedisTarget) {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    publish_numbers(&publisher(&target).await, "s", numbers).await;
    (redis, target)
}

/// Declares each scenario's two tests, one on a lone `redis-server` and
/// one on a Redis Cluster, both under the test attribute given: a list of
/// `scenario: test_on_a_node,` then `test_on_a_cluster;`, one for each
/// scenario of a file that matters on both.
#[allow(unused_macros)]
macro_rules! on_node_and_cluster {
    (#[$attr:meta] $($scenario:ident: $node:ident, $cluster:ident;)+) => {
        $(
            #[$attr]
            async fn $node() {
                $scenario(common::Server::node()).await;
            }

            #[$attr]
            async fn $cluster() {
                $scenario(common::Server::cluster()).await;
            }
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use on_node_and_cluster;

/// Every entry of `stream`, oldest first (`XRANGE - +`), in the reply
/// type `T`: typed for entries the tests wrote, raw for odd ones.
pub async fn xrange<T: redis::FromRedisValue>(conn: &mut eventstore::Redis, stream: &str) -> T {
    redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap()
}

/// Every entry of `stream`, oldest first, as its id and the number of the
/// [`Numbered`] event it carries.
pub async fn stream_numbers(conn: &mut eventstore::Redis, stream: &str) -> Vec<(String, u64)> {
    let entries: redis::streams::StreamRangeReply = xrange(conn, stream).await;
    entries
        .ids
        .iter()
        .map(|entry| {
            let fields: Vec<(String, Vec<u8>)> = entry
                .map
                .iter()
                .map(|(name, value)| (name.clone(), redis::from_redis_value_ref(value).unwrap()))
                .collect();
            let event: Numbered = Envelope::from_fields(&fields).unwrap().decode().unwrap();
            (entry.id.clone(), event.n)
        })
        .collect()
}
