//! A group's lag after the stream was trimmed (or had entries deleted) is
//! exactly what is left for it to read: 0 once it has read everything,
//! never entries that are gone.

mod common;

use common::{node_with, publish_numbers, publisher};
use eventstore::{stream_stats, RedisTarget};
use testkit::RedisServer;

/// Has `group` (created at the stream's start) read `count` entries.
fn read(redis: &RedisServer, group: &str, count: u64) {
    redis.command(&["XGROUP", "CREATE", "s", group, "0"]);
    if count > 0 {
        let count = count.to_string();
        redis.command(&[
            "XREADGROUP",
            "GROUP",
            group,
            "c",
            "COUNT",
            &count,
            "STREAMS",
            "s",
            ">",
        ]);
    }
}

/// Asserts each group's lag, by name, as the stream's figures give it.
async fn assert_lags(target: &RedisTarget, expected: [(&str, u64); 4]) {
    let stats = stream_stats(&mut target.shared().await.unwrap(), "s")
        .await
        .unwrap();
    let lags: Vec<(String, Option<u64>)> = stats
        .groups
        .into_iter()
        .map(|group| (group.group, group.lag))
        .collect();
    let expected: Vec<(String, Option<u64>)> = expected
        .iter()
        .map(|(group, lag)| (group.to_string(), Some(*lag)))
        .collect();
    assert_eq!(lags, expected);
}

#[tokio::test]
async fn the_lag_after_a_trim_is_what_is_left_to_read() {
    let (redis, target) = node_with(0..10).await;
    read(&redis, "all", 10);
    read(&redis, "most", 8);
    read(&redis, "some", 3);
    read(&redis, "none", 0);
    assert_lags(&target, [("all", 0), ("most", 2), ("none", 10), ("some", 7)]).await;

    // Entries 1 to 5 go: what "some" read, and two it had not.
    redis.command(&["XTRIM", "s", "MAXLEN", "5"]);
    assert_lags(&target, [("all", 0), ("most", 2), ("none", 5), ("some", 5)]).await;

    // One entry "most" has not read is deleted out of order: Redis can no
    // longer tell the lags; they are counted.
    let ids = redis_ids(&redis);
    redis.command(&["XDEL", "s", &ids[3]]);
    assert_lags(&target, [("all", 0), ("most", 1), ("none", 4), ("some", 4)]).await;

    // Trimmed to nothing, nothing is left to read for anyone.
    redis.command(&["XTRIM", "s", "MAXLEN", "0"]);
    assert_lags(&target, [("all", 0), ("most", 0), ("none", 0), ("some", 0)]).await;

    // New entries after the trim are each group's whole lag.
    publish_numbers(&publisher(&target).await, "s", 10..13).await;
    assert_lags(&target, [("all", 3), ("most", 3), ("none", 3), ("some", 3)]).await;
}

/// The ids of the stream's entries, oldest first, read with `redis-cli`.
fn redis_ids(redis: &RedisServer) -> Vec<String> {
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "--raw", "XRANGE", "s", "-", "+"])
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| {
            line.split_once('-')
                .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok())
        })
        .map(str::to_string)
        .collect()
}
