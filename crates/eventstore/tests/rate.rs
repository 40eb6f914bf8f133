//! The shared rate against a real Redis: slots spaced by the rate after a
//! burst, lanes slower than the rate, quotas that refuse past their count
//! and say when to ask again, and two instances sharing one rate.

use std::time::{Duration, Instant};

use eventstore::rate::{Lane, RateLimiter, SharedLimits, Slot};
use eventstore::RedisTarget;
use testkit::RedisServer;

async fn limiter(redis: &RedisServer, limits: SharedLimits, horizon: Duration) -> RateLimiter {
    let conn = RedisTarget::parse(&redis.url()).unwrap().shared().await.unwrap();
    RateLimiter::new(conn, limits, horizon)
}

/// Each slot in ms: `Ok` its wait, `Err` when to ask again.
fn ms(slots: &[Slot]) -> Vec<Result<u128, u128>> {
    slots
        .iter()
        .map(|slot| match slot {
            Slot::In(wait) => Ok(wait.as_millis()),
            Slot::Later(after) => Err(after.as_millis()),
        })
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
    let slots = limiter.reserve(&vec![Vec::new(); 9]).await.unwrap();
    // The next slots are 300 and 400 ms away: askable once within 250 ms.
    assert_eq!(
        ms(&slots),
        [
            Ok(0),
            Ok(0),
            Ok(0),
            Ok(0),
            Ok(0),
            Ok(100),
            Ok(200),
            Err(50),
            Err(150)
        ]
    );
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
    let slots = limiter.reserve(&sends).await.unwrap();
    assert_eq!(
        ms(&slots),
        [Ok(0), Ok(0), Ok(50), Ok(100), Ok(0), Ok(150), Ok(200), Err(50)]
    );
    // A second call goes on where the lane stands.
    let again = limiter
        .reserve(&[vec![campaign("slow", 20.0)], vec![campaign("other", 20.0)]])
        .await
        .unwrap();
    assert!(matches!(again[0], Slot::Later(_)), "{again:?}");
    assert_eq!(again[1], Slot::In(Duration::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hourly_quota_refuses_past_its_count_until_its_oldest_sends_leave_the_hour() {
    let redis = RedisServer::start();
    let limits = SharedLimits {
        per_hour: Some(50),
        ..SharedLimits::default()
    };
    let limiter = limiter(&redis, limits, Duration::from_secs(1)).await;
    let slots = limiter.reserve(&vec![Vec::new(); 64]).await.unwrap();
    assert!(slots[..50].iter().all(|slot| *slot == Slot::In(Duration::ZERO)));
    for slot in &slots[50..] {
        let Slot::Later(after) = slot else {
            panic!("a slot past the quota: {slot:?}")
        };
        assert!(
            *after > Duration::from_secs(3600) && *after <= Duration::from_secs(3660),
            "asks again once the first minute's sends are an hour old: {after:?}"
        );
    }
    let more = limiter.reserve(&[Vec::new()]).await.unwrap();
    assert!(matches!(more[0], Slot::Later(_)));
    // Another instance sees the same count.
    let other = self::limiter(&redis, limits, Duration::from_secs(1)).await;
    assert!(matches!(
        other.reserve(&[Vec::new()]).await.unwrap()[0],
        Slot::Later(_)
    ));
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
    // Each instance takes slots for 200 sends, 16 asked at a time, and
    // notes when each slot is.
    let started = Instant::now();
    let runs = instances.map(|limiter| {
        tokio::spawn(async move {
            let mut slots = Vec::new();
            while slots.len() < 200 {
                let reserved = limiter.reserve(&vec![Vec::new(); 16]).await.unwrap();
                let now = Instant::now();
                let mut later = Duration::MAX;
                for slot in reserved {
                    match slot {
                        Slot::In(wait) => slots.push(now + wait),
                        Slot::Later(after) => later = later.min(after),
                    }
                }
                let last = slots.last().copied().unwrap_or(now);
                let wait = if last > now {
                    last - now
                } else {
                    later.min(Duration::from_millis(50))
                };
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
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
