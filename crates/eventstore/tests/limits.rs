//! What a worker holds is bounded: stalled acks stop the reading, a handler
//! run that never ends is cut off and retried, and a shutdown returns in
//! time whatever its handlers do.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, fast_config, node_with, pending, pending_entries, Running};
use eventstore::{stream_stats, Delivery, HandleError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_acks_stop_the_reading() {
    let (redis, target) = node_with(0..1_000).await;
    // Every ack fails until the permission comes back.
    assert_eq!(redis.command(&["ACL", "SETUSER", "default", "-xack"]), "+OK");

    let calls = Arc::new(AtomicU64::new(0));
    let mut config = fast_config("s", "g", "c1");
    config.concurrency = 4;
    config.batch_size = 4;
    let handler_calls = calls.clone();
    let mut running = Running::spawn(&target, config, move |_: Delivery| {
        let calls = handler_calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<(), HandleError>(())
        }
    });

    // The reading stops: the count of handled entries settles.
    let mut last = u64::MAX;
    eventually("the reading stops", Duration::from_secs(20), || {
        let now = calls.load(Ordering::SeqCst);
        let settled = now == last && now > 0;
        last = now;
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            settled
        }
    })
    .await;
    // Four slots held until the acker takes their outcomes, four outcomes
    // queued for it, and its batch of at most that many.
    let held = calls.load(Ordering::SeqCst);
    assert!(held <= 3 * 4, "{held} entries read while acks stall");
    assert_eq!(pending(&target, "s", "g").await, held);

    assert_eq!(redis.command(&["ACL", "SETUSER", "default", "+xack"]), "+OK");
    running
        .until_handled(
            "everything handled once acks work",
            Duration::from_secs(60),
            1_000,
        )
        .await;
    running.stop().await;
    assert_eq!(pending(&target, "s", "g").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_stuck_handlers_returns_within_the_grace_and_acks_nothing() {
    // Three entries of a consumer that died, claimable at once, for a
    // worker with two slots: the claim finds more than it has slots for.
    let (redis, target) = node_with(0..3).await;
    redis.command(&["XGROUP", "CREATE", "s", "g", "0"]);
    redis.command(&["XREADGROUP", "GROUP", "g", "gone", "STREAMS", "s", ">"]);
    for entry in pending_entries(&target, "s", "g").await {
        redis.command(&[
            "XCLAIM", "s", "g", "gone", "0", &entry.id, "IDLE", "60000", "JUSTID",
        ]);
    }

    let started = Arc::new(AtomicU64::new(0));
    let mut config = fast_config("s", "g", "c1");
    config.concurrency = 2;
    config.shutdown_grace = Duration::from_secs(1);
    let grace = config.shutdown_grace;
    let handler_started = started.clone();
    let mut running = Running::spawn(&target, config, move |_: Delivery| {
        handler_started.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<Result<(), HandleError>>()
    });
    eventually("both slots stuck", Duration::from_secs(10), || async {
        started.load(Ordering::SeqCst) == 2
    })
    .await;
    // A few claim rounds pass with no slot free.
    tokio::time::sleep(Duration::from_millis(500)).await;

    running.stop_within(grace + Duration::from_secs(3)).await;

    assert_eq!(started.load(Ordering::SeqCst), 2);
    assert_eq!(running.counters.snapshot().handled, 0);
    let left = pending_entries(&target, "s", "g").await;
    assert_eq!(left.len(), 3, "nothing was acked: {left:?}");
    assert_eq!(
        left.iter().filter(|entry| entry.consumer == "c1").count(),
        2,
        "the worker claimed no more than it had slots for: {left:?}"
    );
    let stats = stream_stats(&mut target.shared().await.unwrap(), "s")
        .await
        .unwrap();
    assert_eq!((stats.groups[0].handled, stats.dead_letters), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_run_past_its_timeout_is_cut_off_and_retried() {
    let (_redis, target) = node_with(0..5).await;

    let runs = Arc::new(AtomicU64::new(0));
    let mut config = fast_config("s", "g", "c1");
    config.handler_timeout = Duration::from_millis(200);
    let handler_runs = runs.clone();
    // Each entry's first run never returns; its second succeeds.
    let mut running = Running::spawn(&target, config, move |delivery: Delivery| {
        handler_runs.fetch_add(1, Ordering::SeqCst);
        async move {
            if delivery.deliveries == 1 {
                std::future::pending::<()>().await;
            }
            Ok::<(), HandleError>(())
        }
    });
    running
        .until_handled(
            "every entry handled on its second run",
            Duration::from_secs(20),
            5,
        )
        .await;
    let snapshot = running.counters.snapshot();
    assert_eq!((snapshot.retried, snapshot.dead_lettered), (5, 0));
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    running.stop().await;
    assert_eq!(pending(&target, "s", "g").await, 0);
}
