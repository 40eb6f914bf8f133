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

/// A task running rounds of a lease every 50 ms, counting them.
struct Contender {
    /// How many rounds it has run.
    rounds: Arc<AtomicU64>,
    /// Cancelling it stops the rounds (and releases the lease).
    stop: CancellationToken,
    /// The task of `Lease::run_rounds`.
    task: tokio::task::JoinHandle<()>,
}

impl Contender {
    fn start(lease: Lease) -> Self {
        let (rounds, stop) = (Arc::new(AtomicU64::new(0)), CancellationToken::new());
        let counted = rounds.clone();
        let task = tokio::spawn(lease.run_rounds(
            Duration::from_millis(50),
            move || {
                let rounds = counted.clone();
                async move {
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
            },
            stop.clone(),
        ));
        Self { rounds, stop, task }
    }

    fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::SeqCst)
    }

    /// Waits until it has run a round; panics with `what` unless that
    /// comes within `within` of `since`.
    async fn until_first_round(&self, since: Instant, within: Duration, what: &str) {
        while self.rounds() == 0 {
            assert!(since.elapsed() < within, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Contender `a`, and contender `b` started 100 ms later, once `a` holds:
/// how the takeover scenarios begin.
async fn a_then_b(redis: &RedisServer) -> (Contender, Contender) {
    let a = Contender::start(lease(redis, "a").await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = Contender::start(lease(redis, "b").await);
    (a, b)
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
    let (a, b) = a_then_b(&redis).await;

    tokio::time::sleep(TTL * 2).await;
    assert!(a.rounds() >= 5, "the holder runs its rounds");
    assert_eq!(b.rounds(), 0, "the other waits");

    // The holder dies without releasing: the lease stays until it expires.
    a.task.abort();
    let died = Instant::now();
    let observer = lease(&redis, "observer").await;
    assert_eq!(observer.holder().await.unwrap().as_deref(), Some("a"));
    b.until_first_round(died, TTL * 3, "no takeover within three times the time to live")
        .await;
    assert!(
        died.elapsed() >= TTL / 2,
        "taken over before the dead holder's lease ran out"
    );
    assert_eq!(observer.holder().await.unwrap().as_deref(), Some("b"));
    b.task.abort();
}

#[tokio::test]
async fn a_holder_that_stops_releases_and_another_takes_over_at_once() {
    let redis = RedisServer::start();
    let (a, b) = a_then_b(&redis).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.rounds(), 0);

    a.stop.cancel();
    a.task.await.unwrap();
    let stopped = Instant::now();
    let observer = lease(&redis, "observer").await;
    b.until_first_round(stopped, TTL, "no takeover within the time to live")
        .await;
    // Taken at b's next ask (a third of the time to live), not at expiry.
    assert!(stopped.elapsed() < TTL / 2, "took {:?}", stopped.elapsed());
    b.stop.cancel();
    b.task.await.unwrap();
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
