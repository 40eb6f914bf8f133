//! The shared rate against a real Redis: slots spaced by the rate after a
//! burst, lanes slower than the rate, quotas that refuse past their count
//! and say when to ask again, and two instances sharing one rate.

use std::time::{Duration, Instant};

use eventstore::rate::{Lane, RateLimiter, SharedLimits};
use eventstore::RedisTarget;
use testkit::RedisServer;

async fn limiter(redis: &RedisServer, limits: SharedLimits, horizon: Duration) -> RateLimiter {
    let conn = RedisTarget::parse(&redis.url()).unwrap().shared().await.unwrap();
    RateLimiter::new(conn, limits, horizon)
}

fn ms(slots: &[Option<Duration>]) -> Vec<Option<u128>> {
    slots
        .iter()
        .map(|slot| slot.map(|wait| wait.as_millis()))
        .collect()
}

fn campaign(id: &str, per_second: f64) -> Lane {
    Lane {
        name: format!("campaign:{id}"),
        per_second,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_goes_at_once_and_the_rest_at_the_rate_within_the_horizon() {
    let redis = RedisServer::start();
    let limits = SharedLimits {
        per_second: Some(10.0),
        burst: 5,
        ..SharedLimits::default()
    };
    let limiter = limiter(&redis, limits, Duration::from_millis(250)).await;
    let reservation = limiter.reserve(&vec![Vec::new(); 9]).await.unwrap();
    assert_eq!(
        ms(&reservation.slots),
        [
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(100),
            Some(200),
            None,
            None
        ]
    );
    // The next slot is 300 ms away: askable once it is within 250 ms.
    assert_eq!(reservation.retry_after.as_millis(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_s_lane_spaces_its_own_sends_and_leaves_the_others_alone() {
    let redis = RedisServer::start();
    let limiter = limiter(&redis, SharedLimits::default(), Duration::from_millis(200)).await;
    let slow = campaign("slow", 20.0);
    let sends = vec![
        vec![slow.clone()],
        Vec::new(),
        vec![slow.clone()],
        vec![slow.clone()],
        Vec::new(),
        vec![slow.clone()],
        vec![slow.clone()],
        vec![slow],
    ];
    let reservation = limiter.reserve(&sends).await.unwrap();
    assert_eq!(
        ms(&reservation.slots),
        [
            Some(0),
            Some(0),
            Some(50),
            Some(100),
            Some(0),
            Some(150),
            Some(200),
            None
        ]
    );
    // A second call goes on where the lane stands.
    let again = limiter
        .reserve(&[vec![campaign("slow", 20.0)], vec![campaign("other", 20.0)]])
        .await
        .unwrap();
    assert!(
        again.slots[0].is_none_or(|wait| wait.as_millis() >= 150),
        "{again:?}"
    );
    assert_eq!(ms(&again.slots[1..]), [Some(0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hourly_quota_refuses_past_its_count_until_its_oldest_sends_leave_the_hour() {
    let redis = RedisServer::start();
    let limits = SharedLimits {
        per_hour: Some(50),
        ..SharedLimits::default()
    };
    let limiter = limiter(&redis, limits, Duration::from_secs(1)).await;
    let reservation = limiter.reserve(&vec![Vec::new(); 64]).await.unwrap();
    let granted = reservation.slots.iter().filter(|slot| slot.is_some()).count();
    assert_eq!(granted, 50);
    assert!(reservation.slots[50..].iter().all(Option::is_none));
    let after = reservation.retry_after;
    assert!(
        after > Duration::from_secs(3600) && after <= Duration::from_secs(3660),
        "asks again once the first minute's sends are an hour old: {after:?}"
    );
    let more = limiter.reserve(&[Vec::new()]).await.unwrap();
    assert_eq!(more.slots, [None]);
    // Another instance sees the same count.
    let other = limiter_with(&redis, limits).await;
    assert_eq!(other.reserve(&[Vec::new()]).await.unwrap().slots, [None]);
}

async fn limiter_with(redis: &RedisServer, limits: SharedLimits) -> RateLimiter {
    limiter(redis, limits, Duration::from_secs(1)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_rate() {
    let redis = RedisServer::start();
    let limits = SharedLimits {
        per_second: Some(200.0),
        burst: 1,
        ..SharedLimits::default()
    };
    let horizon = Duration::from_millis(200);
    let instances = [
        limiter(&redis, limits, horizon).await,
        limiter(&redis, limits, horizon).await,
    ];
    // Each instance takes slots for 200 sends, batches of 16 at a time,
    // and notes when each slot is.
    let started = Instant::now();
    let runs = instances.map(|limiter| {
        tokio::spawn(async move {
            let mut slots = Vec::new();
            while slots.len() < 200 {
                let reservation = limiter.reserve(&vec![Vec::new(); 16]).await.unwrap();
                let now = Instant::now();
                let granted: Vec<Instant> = reservation
                    .slots
                    .iter()
                    .flatten()
                    .map(|wait| now + *wait)
                    .collect();
                let wait = if granted.is_empty() {
                    reservation.retry_after.max(Duration::from_millis(1))
                } else {
                    *granted.last().unwrap() - now
                };
                slots.extend(granted);
                tokio::time::sleep(wait).await;
            }
            slots.truncate(200);
            slots
        })
    });
    let mut slots = Vec::new();
    for run in runs {
        slots.extend(run.await.unwrap());
    }
    slots.sort();
    // 400 slots at 200 a second: two seconds from the first to the last,
    // not one (as two limits of their own would give).
    let span = *slots.last().unwrap() - slots[0];
    assert!(
        span >= Duration::from_millis(1_900) && span < Duration::from_millis(2_300),
        "400 slots over {span:?}"
    );
    // No second holds more than its 200 (and the clocks' jitter).
    for (i, first) in slots.iter().enumerate() {
        let within = slots[i..]
            .iter()
            .take_while(|at| **at - *first < Duration::from_secs(1))
            .count();
        assert!(within <= 205, "{within} slots within a second from slot {i}");
    }
    assert!(started.elapsed() >= Duration::from_millis(1_900));
}
