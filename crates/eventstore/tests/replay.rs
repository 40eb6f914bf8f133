//! Replaying every dead letter of a stream: each letter there when the
//! replay starts goes back once, however fast it fails again, and at the
//! pace its stream drains.

mod common;

use std::time::Duration;

use common::{eventually, fast_config, node_with, pending, Running};
use eventstore::deadletter::{self, Pace};
use eventstore::{trim, Delivery, HandleError, RedisTarget};
use testkit::RedisServer;
use tokio::time::Instant;

/// A worker of group `g` on `s` that refuses every entry as poison.
fn refusing(target: &RedisTarget) -> Running {
    Running::spawn(target, fast_config("s", "g", "c1"), |_: Delivery| async {
        Err::<(), _>(HandleError::Poison("refused".into()))
    })
}

/// A node whose stream `s` held the numbers `0..count`, and the
/// [`refusing`] worker that has dead-lettered each of them by now.
async fn dead_lettered(count: u64) -> (RedisServer, RedisTarget, Running) {
    let (redis, target) = node_with(0..count).await;
    let running = refusing(&target);
    eventually(
        &format!("{count} dead letters"),
        Duration::from_secs(20),
        || async { running.counters.snapshot().dead_lettered == count },
    )
    .await;
    (redis, target, running)
}

fn pace(max_backlog: u64, within: Duration) -> Pace {
    Pace {
        max_backlog,
        until: Instant::now() + within,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn letters_that_fail_again_at_once_are_replayed_once_each() {
    let (_redis, target, mut running) = dead_lettered(300).await;

    let mut conn = target.shared().await.unwrap();
    // Paced by a backlog of 50, the worker dead-letters each page again
    // before the replay reaches its end.
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        deadletter::replay_all(&mut conn, "s", pace(50, Duration::from_secs(30))),
    )
    .await
    .expect("the replay ends")
    .unwrap();
    assert_eq!((outcome.replayed, outcome.skipped, outcome.done), (300, 0, true));
    eventually("each failed again once", Duration::from_secs(20), || async {
        running.counters.snapshot().dead_lettered == 600
    })
    .await;
    running.stop().await;
    let letters = deadletter::list(&mut conn, "s", 1_000).await.unwrap();
    assert_eq!(letters.len(), 300, "each letter is back, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_waits_for_the_stream_to_drain() {
    let (redis, target, mut running) = dead_lettered(60).await;
    running.stop().await;

    // Nobody reads the stream now: the replay puts back what the bound
    // lets in, and stops at its time limit.
    let mut conn = target.shared().await.unwrap();
    let started = Instant::now();
    let outcome = deadletter::replay_all(&mut conn, "s", pace(25, Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!outcome.done);
    assert!(outcome.replayed <= 25, "{outcome:?}");
    assert!(trim::backlog(&mut conn, &["s".into()]).await.unwrap() <= 25);

    // With a reader again, the rest follows at the pace it drains.
    let most = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watch = {
        let (target, most) = (target.clone(), most.clone());
        tokio::spawn(async move {
            let mut conn = target.shared().await.unwrap();
            loop {
                let backlog = trim::backlog(&mut conn, &["s".into()]).await.unwrap();
                most.fetch_max(backlog, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut running = refusing(&target);
    let rest = deadletter::replay_all(&mut conn, "s", pace(25, Duration::from_secs(30)))
        .await
        .unwrap();
    watch.abort();
    assert!(rest.done);
    running.stop().await;
    assert_eq!(
        deadletter::list(&mut conn, "s", 1_000).await.unwrap().len(),
        60,
        "every letter replayed once and dead-lettered again"
    );
    assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 25);
    assert_eq!(pending(&target, "s", "g").await, 0);
    drop(redis);
}
