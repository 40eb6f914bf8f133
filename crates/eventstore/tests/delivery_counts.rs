//! Redis's delivery count of an entry is the number of times a handler was
//! started on it: a slow handler's entry is claimed by no one, its own
//! worker included, and a reconnect counts nothing.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, fast_config, pending, pending_entries, publish_numbers, publisher, Numbered};
use eventstore::{Delivery, HandleError, RedisTarget, Worker, WorkerConfig};
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

/// Per event number, who ran it with which delivery count.
type Runs = Arc<Mutex<HashMap<u64, Vec<(String, u64)>>>>;

/// Runs a worker whose handler records its run, then takes `slow`.
fn spawn_slow(
    target: &RedisTarget,
    config: WorkerConfig,
    slow: Duration,
    runs: &Runs,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let consumer = config.consumer.clone();
    let runs = runs.clone();
    tokio::spawn(Worker::new(target.clone(), config).run(
        move |delivery: Delivery| {
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
        },
        shutdown.clone(),
    ))
}

fn started(runs: &Runs) -> usize {
    runs.lock().unwrap().values().map(Vec::len).sum()
}

/// Checks, for `during`, that every pending entry is counted once and
/// never looks idle for `claim_idle`.
async fn assert_counted_once_and_fresh(target: &RedisTarget, claim_idle: Duration, during: Duration) {
    let start = Instant::now();
    while start.elapsed() < during {
        for entry in pending_entries(target, "s", "g").await {
            assert_eq!(entry.deliveries, 1, "{entry:?} counted more than its one run");
            assert!(
                entry.idle_ms < claim_idle.as_millis() as u64,
                "{entry:?} looks idle while its handler runs"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handlers_entries_are_claimed_by_no_one_and_counted_once() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    publish_numbers(&publisher(&target).await, "s", 0..10).await;

    // Handlers take six times claim_idle; a second consumer of the group
    // looks for idle entries all the while.
    let runs: Runs = Arc::default();
    let shutdown = CancellationToken::new();
    let config = fast_config("s", "g", "c1");
    let claim_idle = config.claim_idle;
    let first = spawn_slow(&target, config, claim_idle * 6, &runs, &shutdown);
    eventually("all 10 started", Duration::from_secs(10), || async {
        started(&runs) == 10
    })
    .await;
    let second = spawn_slow(
        &target,
        fast_config("s", "g", "c2"),
        Duration::ZERO,
        &runs,
        &shutdown,
    );
    assert_counted_once_and_fresh(&target, claim_idle, claim_idle * 4).await;
    eventually("all 10 acked", Duration::from_secs(10), || async {
        pending(&target, "s", "g").await == 0
    })
    .await;
    shutdown.cancel();
    first.await.unwrap();
    second.await.unwrap();

    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 10);
    for (n, runs) in &runs {
        assert_eq!(runs, &vec![("c1".to_string(), 1)], "event {n} ran once, by c1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_counts_no_delivery() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    publish_numbers(&publisher(&target).await, "s", 0..10).await;

    let runs: Runs = Arc::default();
    let shutdown = CancellationToken::new();
    let config = fast_config("s", "g", "c1");
    let claim_idle = config.claim_idle;
    let run = spawn_slow(&target, config, claim_idle * 6, &runs, &shutdown);
    eventually("all 10 started", Duration::from_secs(10), || async {
        started(&runs) == 10
    })
    .await;
    // Every connection of the worker is cut while its handlers run.
    let killed = redis.command(&["CLIENT", "KILL", "TYPE", "normal"]);
    assert_ne!(killed, ":0", "the worker's connections were cut");
    assert_counted_once_and_fresh(&target, claim_idle, claim_idle * 4).await;
    eventually("all 10 acked", Duration::from_secs(10), || async {
        pending(&target, "s", "g").await == 0
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 10);
    assert!(
        runs.values().all(|runs| runs == &vec![("c1".to_string(), 1)]),
        "{runs:?}"
    );
}
