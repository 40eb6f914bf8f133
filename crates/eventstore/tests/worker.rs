//! The consumer-group worker against a real `redis-server`, and its key
//! scenarios against a real Redis Cluster too.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    eventually, fast_config, node_with, on_node_and_cluster, pending, pending_entries, publish_numbers,
    publisher, recording, spawn_recording, until_nothing_pending, Running, Seen, Server,
};
use eventstore::{deadletter, stream_stats, Delivery, HandleError, Worker};
use tokio_util::sync::CancellationToken;

on_node_and_cluster! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    acked_and_retried: handled_entries_are_acked_and_failed_ones_come_back,
        handled_entries_are_acked_and_failed_ones_come_back_on_a_cluster;
    claimed_from_the_dead: a_dead_consumers_entries_are_claimed_by_another,
        a_dead_consumers_entries_are_claimed_by_another_on_a_cluster;
    dead_lettered_and_replayed: poison_and_undecodable_entries_are_dead_lettered_and_the_worker_goes_on,
        poison_and_undecodable_entries_are_dead_lettered_and_the_worker_goes_on_on_a_cluster;
}

async fn acked_and_retried(server: Server) {
    let target = server.target();
    let publisher = publisher(&target).await;
    publish_numbers(&publisher, "s", 0..200).await;

    let seen: Seen = Arc::default();
    // Every tenth event fails on its first delivery only.
    let handler = recording(&seen, |n, deliveries| async move {
        if n % 10 == 0 && deliveries == 1 {
            return Err(HandleError::Retry(anyhow::anyhow!("transient failure of {n}")));
        }
        Ok(())
    });
    let mut running = Running::spawn(&target, fast_config("s", "g", "c1"), handler);

    running
        .until_handled("200 entries handled", Duration::from_secs(20), 200)
        .await;
    until_nothing_pending(&target, "g", Duration::from_secs(5)).await;
    running.stop().await;
    let counters = running.counters;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 200);
    for (n, deliveries) in &seen {
        if n % 10 == 0 {
            assert_eq!(deliveries, &vec![1, 2], "event {n} fails once, then comes back");
        } else {
            assert_eq!(deliveries, &vec![1], "event {n} is handled once");
        }
    }
    let snapshot = counters.snapshot();
    assert_eq!(
        (snapshot.failed, snapshot.retried, snapshot.dead_lettered),
        (20, 20, 0)
    );

    let stats = stream_stats(&mut target.shared().await.unwrap(), "s")
        .await
        .unwrap();
    assert_eq!(stats.length, 200);
    let group = &stats.groups[0];
    assert_eq!(
        (group.handled, group.retried, group.pending, group.lag),
        (200, 20, 0, Some(0))
    );
}

async fn claimed_from_the_dead(server: Server) {
    let target = server.target();
    publish_numbers(&publisher(&target).await, "s", 0..50).await;

    // The first consumer takes entries and hangs; then it dies: its runtime
    // is shut down, which stops every task it had and closes its
    // connections, as the end of its process would.
    let mut doomed_config = fast_config("s", "g", "doomed");
    doomed_config.concurrency = 20;
    let doomed_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    doomed_runtime.spawn(Worker::new(target.clone(), doomed_config.clone()).run(
        |_: Delivery| std::future::pending::<Result<(), HandleError>>(),
        CancellationToken::new(),
    ));
    eventually(
        "the doomed consumer holds 20 entries",
        Duration::from_secs(10),
        || async { pending(&target, "s", "g").await == 20 },
    )
    .await;
    doomed_runtime.shutdown_background();
    // Really dead: nothing keeps its entries fresh any more.
    eventually(
        "the doomed consumer's entries go idle",
        Duration::from_secs(10),
        || async {
            let entries = pending_entries(&target, "s", "g").await;
            entries.len() == 20
                && entries.iter().all(|entry| {
                    entry.consumer == "doomed" && entry.idle_ms > doomed_config.claim_idle.as_millis() as u64
                })
        },
    )
    .await;

    let seen: Seen = Arc::default();
    let mut survivor = spawn_recording(&target, fast_config("s", "g", "survivor"), &seen);
    survivor
        .until_handled("all 50 handled", Duration::from_secs(20), 50)
        .await;
    survivor.stop().await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.keys().copied().collect::<HashSet<_>>(), (0..50).collect());
    let claimed = seen.values().filter(|deliveries| deliveries[0] == 2).count();
    assert_eq!(
        claimed, 20,
        "the 20 entries of the dead consumer were claimed (second delivery)"
    );
    assert_eq!(pending(&target, "s", "g").await, 0);
}

async fn dead_lettered_and_replayed(server: Server) {
    let target = server.target();
    let publisher = publisher(&target).await;
    publish_numbers(&publisher, "s", 0..10).await;
    // Not an envelope at all, an unknown version, and an unknown type.
    server.command(&["XADD", "s", "*", "garbage", "yes"]);
    for (kind, version, id) in [("test.numbered", "9", "x"), ("test.other", "1", "y")] {
        server.command(&[
            "XADD", "s", "*", "type", kind, "v", version, "id", id, "time", "1", "payload", "{}",
        ]);
    }

    // 3 always fails (retryable), 5 is refused as poison, 7 panics; the fix
    // for 3 arrives later, for the replay.
    let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let mut config = fast_config("s", "g", "c1");
    config.retry_budget = Duration::from_secs(2);
    let handler_fixed = fixed.clone();
    let handler = recording(&seen, move |n, _| {
        std::future::ready(match n {
            3 if !handler_fixed.load(std::sync::atomic::Ordering::SeqCst) => {
                Err(HandleError::Retry(anyhow::anyhow!("the mail server is away")))
            }
            5 => Err(HandleError::Poison("recipient is not an address".into())),
            7 => panic!("bug in the handler"),
            _ => Ok(()),
        })
    });
    let mut running = Running::spawn(&target, config, handler);

    let mut conn = target.shared().await.unwrap();
    eventually("six dead letters", Duration::from_secs(20), || {
        let mut conn = conn.clone();
        async move { deadletter::list(&mut conn, "s", 100).await.unwrap().len() == 6 }
    })
    .await;
    // The worker is still alive and handles what comes next.
    publish_numbers(&publisher, "s", 100..110).await;
    running
        .until_handled("later entries handled", Duration::from_secs(10), 7 + 10)
        .await;
    until_nothing_pending(&target, "g", Duration::from_secs(5)).await;

    let letters = deadletter::list(&mut conn, "s", 100).await.unwrap();
    let reason_of = |needle: &str| {
        letters
            .iter()
            .find(|letter| letter.reason.contains(needle))
            .unwrap_or_else(|| panic!("no dead letter says {needle:?}: {letters:#?}"))
    };
    assert_eq!(reason_of("missing field `type`").deliveries, 1);
    reason_of("unsupported version 9");
    reason_of("unexpected event type `test.other`");
    let retried_out = reason_of("the mail server is away");
    assert!(retried_out.reason.contains("retry budget"), "{retried_out:?}");
    let attempts: Vec<u64> = (1..=retried_out.deliveries).collect();
    assert!(attempts.len() >= 2, "retried before its budget ran out");
    assert_eq!(retried_out.group, "g");
    reason_of("recipient is not an address");
    reason_of("handler panicked: bug in the handler");
    assert_eq!(seen.lock().unwrap()[&3], attempts);
    assert_eq!(
        reason_of("handler panicked").deliveries,
        3,
        "a panic counts against max_deliveries"
    );
    // All thirteen entries were read, and run, as one batch; 7's panic lost
    // the batch's answers, so each of them ran once more on its own: 5
    // then said poison again and was not run a third time, and the
    // entries that succeed were each handled on their second run.
    assert_eq!(
        seen.lock().unwrap()[&5],
        vec![1, 2],
        "poison is not retried on its own"
    );
    assert_eq!(
        seen.lock().unwrap()[&0],
        vec![1, 2],
        "a panic reruns its batch, each entry alone"
    );

    // Once fixed, a replay re-publishes it and it is handled.
    fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    let replayed = deadletter::replay(&mut conn, "s", &retried_out.id).await.unwrap();
    assert!(replayed.is_some());
    eventually(
        "the replayed entry is handled",
        Duration::from_secs(10),
        || async { seen.lock().unwrap()[&3].len() == attempts.len() + 1 },
    )
    .await;
    assert_eq!(deadletter::list(&mut conn, "s", 100).await.unwrap().len(), 5);
    assert_eq!(
        deadletter::replay(&mut conn, "s", &retried_out.id).await.unwrap(),
        None
    );

    let stats = stream_stats(&mut conn, "s").await.unwrap();
    assert_eq!(stats.dead_letters, 5);
    assert_eq!(stats.groups[0].dead_lettered, 6);
    let consumers = &stats.groups[0].consumer_details;
    assert!(
        consumers
            .iter()
            .any(|consumer| consumer.pending == 0 && consumer.idle_ms < 10_000),
        "the running consumer, holding nothing, seen lately: {consumers:?}"
    );
    running.stop().await;

    // With the worker stopped, replaying everything empties the dead-letter
    // stream and puts the five entries back in the stream, unread (the
    // replay trims what every group has acknowledged as it measures the
    // stream's backlog).
    let pace = deadletter::Pace {
        max_backlog: 1_000,
        until: tokio::time::Instant::now() + Duration::from_secs(10),
    };
    let outcome = deadletter::replay_all(&mut conn, "s", pace).await.unwrap();
    assert_eq!((outcome.replayed, outcome.done), (5, true));
    let stats = stream_stats(&mut conn, "s").await.unwrap();
    assert_eq!((stats.dead_letters, stats.length), (0, 5));
    assert_eq!(stats.groups[0].lag, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_work_and_acks_only_what_was_handled() {
    let (_redis, target) = node_with(0..100).await;

    let started = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let finished = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut config = fast_config("s", "g", "c1");
    config.concurrency = 8;
    let (s, f) = (started.clone(), finished.clone());
    let mut running = Running::spawn(&target, config, move |_: Delivery| {
        let (started, finished) = (s.clone(), f.clone());
        async move {
            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(700)).await;
            finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<(), HandleError>(())
        }
    });
    eventually("handlers running", Duration::from_secs(10), || async {
        started.load(std::sync::atomic::Ordering::SeqCst) >= 8
    })
    .await;
    let asked = Instant::now();
    running.stop().await;
    let took = asked.elapsed();
    let counters = running.counters;

    let started = started.load(std::sync::atomic::Ordering::SeqCst);
    let finished = finished.load(std::sync::atomic::Ordering::SeqCst);
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    assert_eq!(started, finished, "every handler that started was let finish");
    assert_eq!(
        counters.snapshot().handled,
        finished,
        "all finished work was acked"
    );
    let stats = stream_stats(&mut target.shared().await.unwrap(), "s")
        .await
        .unwrap();
    let group = &stats.groups[0];
    assert_eq!(group.handled, finished);
    assert_eq!(group.pending, 0, "nothing was read that was not handled");
    assert_eq!(
        group.lag,
        Some(100 - finished),
        "the rest waits for the next consumer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_read_loops_share_the_work_and_handle_each_entry_once() {
    let (_redis, target) = node_with(0..5_000).await;

    let seen: Seen = Arc::default();
    let mut config = fast_config("s", "g", "c1");
    config.readers = 2;
    config.batch_size = 100;
    let mut running = spawn_recording(&target, config, &seen);
    running
        .until_handled("5,000 handled", Duration::from_secs(20), 5_000)
        .await;
    running.stop().await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5_000);
    assert!(
        seen.values().all(|deliveries| deliveries == &vec![1]),
        "each entry once"
    );
    assert_eq!(pending(&target, "s", "g").await, 0);
}
