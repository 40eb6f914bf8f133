//! The lease against a real Redis: one holder at a time, a takeover after
//! a holder dies, a release on stop, and work cut short when lost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventstore::lease::Lease;
use eventstore::RedisTarget;
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_millis(600);

async fn lease(redis: &RedisServer, holder: &str) -> Lease {
    let conn = RedisTarget::parse(&redis.url()).unwrap().shared().await.unwrap();
    Lease::new(conn, "test:task", holder, TTL)
}

/// Runs rounds every 50 ms as `holder`, counting them in `rounds`.
fn contender(
    lease: Lease,
    rounds: Arc<AtomicU64>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(lease.run_rounds(
        Duration::from_millis(50),
        move || {
            let rounds = rounds.clone();
            async move {
                rounds.fetch_add(1, Ordering::SeqCst);
            }
        },
        shutdown,
    ))
}

#[tokio::test]
async fn of_two_contenders_exactly_one_holds() {
    let redis = RedisServer::start();
    let (a, b) = (lease(&redis, "a").await, lease(&redis, "b").await);
    let (took_a, took_b) = tokio::join!(a.acquire(), b.acquire());
    assert!(took_a.unwrap() ^ took_b.unwrap(), "exactly one of them holds");
    let holder = a.holder().await.unwrap().unwrap();
    // The holder renews; the other still cannot take it.
    let (holding, other) = if holder == "a" { (&a, &b) } else { (&b, &a) };
    tokio::time::sleep(TTL / 2).await;
    assert!(holding.acquire().await.unwrap());
    tokio::time::sleep(TTL / 2).await;
    assert!(
        !other.acquire().await.unwrap(),
        "renewed past the first time to live"
    );
    assert!(!other.release().await.unwrap(), "a non-holder cannot release it");
    assert_eq!(a.holder().await.unwrap().as_deref(), Some(holder.as_str()));
}

#[tokio::test]
async fn only_the_holder_runs_rounds_and_another_takes_over_after_it_dies() {
    let redis = RedisServer::start();
    let (rounds_a, rounds_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let never = CancellationToken::new();
    let a = contender(lease(&redis, "a").await, rounds_a.clone(), never.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = contender(lease(&redis, "b").await, rounds_b.clone(), never.clone());

    tokio::time::sleep(TTL * 2).await;
    assert!(rounds_a.load(Ordering::SeqCst) >= 5, "the holder runs its rounds");
    assert_eq!(rounds_b.load(Ordering::SeqCst), 0, "the other waits");

    // The holder dies without releasing: the lease stays until it expires.
    a.abort();
    let died = Instant::now();
    let observer = lease(&redis, "observer").await;
    assert_eq!(observer.holder().await.unwrap().as_deref(), Some("a"));
    while rounds_b.load(Ordering::SeqCst) == 0 {
        assert!(
            died.elapsed() < TTL * 3,
            "no takeover within three times the time to live"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        died.elapsed() >= TTL / 2,
        "taken over before the dead holder's lease ran out"
    );
    assert_eq!(observer.holder().await.unwrap().as_deref(), Some("b"));
    b.abort();
}

#[tokio::test]
async fn a_holder_that_stops_releases_and_another_takes_over_at_once() {
    let redis = RedisServer::start();
    let (rounds_a, rounds_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop_a = CancellationToken::new();
    let a = contender(lease(&redis, "a").await, rounds_a.clone(), stop_a.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stop_b = CancellationToken::new();
    let b = contender(lease(&redis, "b").await, rounds_b.clone(), stop_b.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rounds_b.load(Ordering::SeqCst), 0);

    stop_a.cancel();
    a.await.unwrap();
    let stopped = Instant::now();
    let observer = lease(&redis, "observer").await;
    while rounds_b.load(Ordering::SeqCst) == 0 {
        assert!(stopped.elapsed() < TTL, "no takeover within the time to live");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Taken at b's next ask (a third of the time to live), not at expiry.
    assert!(stopped.elapsed() < TTL / 2, "took {:?}", stopped.elapsed());
    stop_b.cancel();
    b.await.unwrap();
    assert_eq!(observer.holder().await.unwrap(), None, "released on stop");
}

#[tokio::test]
async fn exclusive_work_runs_one_at_a_time_in_each_contender() {
    let redis = RedisServer::start();
    let busy = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut contenders = Vec::new();
    for holder in ["a", "b", "c"] {
        let lease = lease(&redis, holder).await;
        let (busy, done) = (busy.clone(), done.clone());
        contenders.push(tokio::spawn(async move {
            lease
                .exclusive(|| {
                    let (busy, done) = (busy.clone(), done.clone());
                    async move {
                        assert!(!busy.swap(true, Ordering::SeqCst), "two ran at once");
                        // Longer than the time to live: renewed meanwhile.
                        tokio::time::sleep(TTL + TTL / 2).await;
                        busy.store(false, Ordering::SeqCst);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .await
                .unwrap();
            lease.holder().await.unwrap()
        }));
    }
    for contender in contenders {
        contender.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 3, "each ran its work once");
    let observer = lease(&redis, "observer").await;
    assert_eq!(observer.holder().await.unwrap(), None, "the last released it");
}

#[tokio::test]
async fn work_is_cut_short_when_the_lease_is_lost() {
    let redis = RedisServer::start();
    let a = lease(&redis, "a").await;
    assert!(a.acquire().await.unwrap());
    let started = Instant::now();
    let thief = async {
        tokio::time::sleep(TTL / 2).await;
        redis.command(&["SET", "comms:lease:test:task", "b"]);
    };
    let (cut, ()) = tokio::join!(a.while_held(tokio::time::sleep(TTL * 10)), thief);
    assert_eq!(cut, None, "the work ran past the loss of its lease");
    assert!(started.elapsed() < TTL * 2, "stopped at the next renewal");
    assert!(
        !a.release().await.unwrap(),
        "the new holder's lease is not released"
    );
    assert_eq!(a.holder().await.unwrap().as_deref(), Some("b"));
}
