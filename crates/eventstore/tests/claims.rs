//! A claim takes only what its consumer left: an entry that another live
//! consumer holds (it claimed it, and keeps it fresh) is never taken back,
//! neither by the keeper of a worker that held it before nor by that
//! worker's retry.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, fast_config, node_with, pending_entries, Running};
use eventstore::{Delivery, HandleError, RedisTarget};
use tokio_util::sync::CancellationToken;

/// Plays a live consumer `live` that has claimed entry `id` of group `g`
/// and keeps it fresh, as a worker's keeper does, until `stop`; returns
/// once it holds it.
async fn keep_as_live(
    target: &RedisTarget,
    id: String,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let mut conn = target.shared().await.unwrap();
    let claim = redis::cmd("XCLAIM")
        .arg("s")
        .arg("g")
        .arg("live")
        .arg(0)
        .arg(&id)
        .arg("JUSTID")
        .to_owned();
    claim.query_async::<()>(&mut conn).await.unwrap();
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            claim.query_async::<()>(&mut conn).await.unwrap();
        }
    })
}

/// Samples the consumer holding the only pending entry of group `g` for
/// `during`; returns every owner seen.
async fn owners_during(target: &RedisTarget, during: Duration) -> Vec<String> {
    let start = std::time::Instant::now();
    let mut owners = Vec::new();
    while start.elapsed() < during {
        for entry in pending_entries(target, "s", "g").await {
            if !owners.contains(&entry.consumer) {
                owners.push(entry.consumer);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    owners
}

/// Has a live consumer claim the only pending entry of group `g` and keep
/// it ([`keep_as_live`]) while the consumers holding it are sampled for
/// `during` ([`owners_during`]); returns every owner seen.
async fn owners_beside_a_live_consumer(target: &RedisTarget, during: Duration) -> Vec<String> {
    let id = pending_entries(target, "s", "g").await[0].id.clone();
    let stop = CancellationToken::new();
    let live = keep_as_live(target, id, stop.clone()).await;
    let owners = owners_during(target, during).await;
    stop.cancel();
    live.await.unwrap();
    owners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_does_not_take_back_an_entry_a_live_consumer_claimed() {
    let (_redis, target) = node_with(0..1).await;
    let started = Arc::new(AtomicU64::new(0));
    let handler_started = started.clone();
    // A slow handler: while it runs, another consumer claims its entry.
    let mut running = Running::spawn(&target, fast_config("s", "g", "c1"), move |_: Delivery| {
        handler_started.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<(), HandleError>(())
        }
    });
    eventually("the handler started", Duration::from_secs(10), || async {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    let owners = owners_beside_a_live_consumer(&target, Duration::from_secs(1)).await;
    running.stop().await;
    assert_eq!(owners, ["live"], "the entry stayed with the live consumer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_does_not_take_back_an_entry_a_live_consumer_claimed() {
    let (_redis, target) = node_with(0..1).await;
    let runs = Arc::new(AtomicU64::new(0));
    let handler_runs = runs.clone();
    let mut config = fast_config("s", "g", "c1");
    // The first retry comes after a second.
    config.claim_idle = Duration::from_secs(1);
    let mut running = Running::spawn(&target, config, move |_: Delivery| {
        handler_runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Err::<(), _>(HandleError::Retry(anyhow::anyhow!("away"))))
    });
    eventually("the first run failed", Duration::from_secs(10), || async {
        runs.load(Ordering::SeqCst) == 1
    })
    .await;
    let owners = owners_beside_a_live_consumer(&target, Duration::from_secs(2)).await;
    running.stop().await;
    assert_eq!(owners, ["live"], "the entry stayed with the live consumer");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the worker did not run it again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_of_dead_processes_are_forgotten_once_they_hold_nothing() {
    // Two processes gone: one held nothing, one held an entry.
    let (redis, target) = node_with(0..1).await;
    redis.command(&["XGROUP", "CREATE", "s", "g", "0"]);
    redis.command(&["XGROUP", "CREATECONSUMER", "s", "g", "idle-one"]);
    redis.command(&["XREADGROUP", "GROUP", "g", "holder", "STREAMS", "s", ">"]);
    let seen = common::Seen::default();
    let mut running = common::spawn_recording(&target, fast_config("s", "g", "c1"), &seen);
    running
        .until_handled(
            "the holder's entry claimed and handled",
            Duration::from_secs(10),
            1,
        )
        .await;
    let consumers = || async {
        let mut conn = target.shared().await.unwrap();
        let stats = eventstore::stream_stats(&mut conn, "s").await.unwrap();
        let mut names: Vec<String> = stats.groups[0]
            .consumer_details
            .iter()
            .map(|consumer| consumer.name.clone())
            .collect();
        names.sort();
        names
    };
    eventually(
        "only the live consumer is left",
        Duration::from_secs(10),
        || async { consumers().await == ["c1"] },
    )
    .await;
    running.stop().await;
}
