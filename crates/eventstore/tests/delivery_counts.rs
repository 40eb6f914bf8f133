//! Redis's delivery count of an entry is the number of times a handler was
//! started on it: a slow handler's entry is claimed by no one, its own
//! worker included, and a reconnect counts nothing.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, fast_config, node_with, pending, pending_entries, Numbered, Running};
use eventstore::{Delivery, HandleError, RedisTarget, WorkerConfig};
use testkit::RedisServer;

/// Per event number, who ran it with which delivery count.
type Runs = Arc<Mutex<HashMap<u64, Vec<(String, u64)>>>>;

/// Runs a worker whose handler records its run, then takes `slow`.
fn spawn_slow(target: &RedisTarget, config: WorkerConfig, slow: Duration, runs: &Runs) -> Running {
    let consumer = config.consumer.clone();
    let runs = runs.clone();
    Running::spawn(target, config, move |delivery: Delivery| {
        let (runs, consumer) = (runs.clone(), consumer.clone());
        async move {
            let event: Numbered = delivery.envelope.decode()?;
            runs.lock()
                .unwrap()
                .entry(event.n)
                .or_default()
                .push((consumer, delivery.deliveries));
            tokio::time::sleep(slow).await;
            Ok::<(), HandleError>(())
        }
    })
}

fn started(runs: &Runs) -> usize {
    runs.lock().unwrap().values().map(Vec::len).sum()
}

/// Where both scenarios stand once their first worker, `c1`, has started
/// its handlers on all ten entries of `s`, each taking six times its
/// `claim_idle`.
struct AllStarted {
    redis: RedisServer,
    target: RedisTarget,
    claim_idle: Duration,
    runs: Runs,
    first: Running,
}

impl AllStarted {
    async fn new() -> Self {
        let (redis, target) = node_with(0..10).await;
        let runs: Runs = Arc::default();
        let config = fast_config("s", "g", "c1");
        let claim_idle = config.claim_idle;
        let first = spawn_slow(&target, config, claim_idle * 6, &runs);
        eventually("all 10 started", Duration::from_secs(10), || async {
            started(&runs) == 10
        })
        .await;
        Self {
            redis,
            target,
            claim_idle,
            runs,
            first,
        }
    }

    /// Checks, for four times `claim_idle`, that every pending entry is
    /// counted once and never looks idle for `claim_idle`; then waits until
    /// all ten are acked.
    async fn counted_once_until_acked(&self) {
        let start = Instant::now();
        while start.elapsed() < self.claim_idle * 4 {
            for entry in pending_entries(&self.target, "s", "g").await {
                assert_eq!(entry.deliveries, 1, "{entry:?} counted more than its one run");
                assert!(
                    entry.idle_ms < self.claim_idle.as_millis() as u64,
                    "{entry:?} looks idle while its handler runs"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eventually("all 10 acked", Duration::from_secs(10), || async {
            pending(&self.target, "s", "g").await == 0
        })
        .await;
    }

    /// Who ran each entry with which delivery count.
    fn runs(&self) -> HashMap<u64, Vec<(String, u64)>> {
        self.runs.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handlers_entries_are_claimed_by_no_one_and_counted_once() {
    // Handlers take six times claim_idle; a second consumer of the group
    // looks for idle entries all the while.
    let mut scene = AllStarted::new().await;
    let mut second = spawn_slow(
        &scene.target,
        fast_config("s", "g", "c2"),
        Duration::ZERO,
        &scene.runs,
    );
    scene.counted_once_until_acked().await;
    tokio::join!(scene.first.stop(), second.stop());

    let runs = scene.runs();
    assert_eq!(runs.len(), 10);
    for (n, runs) in &runs {
        assert_eq!(runs, &vec![("c1".to_string(), 1)], "event {n} ran once, by c1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_counts_no_delivery() {
    let mut scene = AllStarted::new().await;
    // Every connection of the worker is cut while its handlers run.
    let killed = scene.redis.command(&["CLIENT", "KILL", "TYPE", "normal"]);
    assert_ne!(killed, ":0", "the worker's connections were cut");
    scene.counted_once_until_acked().await;
    scene.first.stop().await;

    let runs = scene.runs();
    assert_eq!(runs.len(), 10);
    assert!(
        runs.values().all(|runs| runs == &vec![("c1".to_string(), 1)]),
        "{runs:?}"
    );
}
