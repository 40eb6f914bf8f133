//! What operators rely on: dead letters stay until they act, a malformed id
//! is their mistake, and a group created late says what it missed.

mod common;

use std::time::Duration;

use common::{eventually, fast_config, node_with, publish_numbers, publisher, stream_numbers, Running};
use eventstore::{deadletter, ensure_group, trim, Delivery, Error, GroupStart, HandleError, RedisTarget};
use testkit::RedisServer;

/// Every command the server ran (the slow log, with a threshold of zero),
/// as its arguments.
async fn commands_run(target: &RedisTarget) -> Vec<Vec<String>> {
    let mut conn = target.shared().await.unwrap();
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    log.into_iter()
        .filter_map(|entry| match entry {
            redis::Value::Array(parts) => parts.into_iter().nth(3),
            _ => None,
        })
        .map(|args| redis::from_redis_value::<Vec<String>>(args).unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_neither_capped_nor_trimmed() {
    let redis = RedisServer::start();
    assert_eq!(
        redis.command(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        "+OK"
    );
    assert_eq!(
        redis.command(&["CONFIG", "SET", "slowlog-max-len", "100000"]),
        "+OK"
    );
    let target = RedisTarget::parse(&redis.url()).unwrap();
    publish_numbers(&publisher(&target).await, "s", 0..50).await;

    let mut running = Running::spawn(&target, fast_config("s", "g", "c1"), |_: Delivery| async {
        Err::<(), _>(HandleError::Poison("refused".into()))
    });
    eventually("50 dead letters", Duration::from_secs(20), || async {
        running.counters.snapshot().dead_lettered == 50
    })
    .await;
    running.stop().await;

    let mut conn = target.shared().await.unwrap();
    assert_eq!(trim::trim(&mut conn, "s:dead").await.unwrap(), 0);
    trim::trim(&mut conn, "s").await.unwrap();
    assert_eq!(deadletter::list(&mut conn, "s", 1_000).await.unwrap().len(), 50);

    let commands = commands_run(&target).await;
    let on_dead: Vec<&Vec<String>> = commands
        .iter()
        .filter(|args| args.get(1).is_some_and(|key| key == "s:dead"))
        .collect();
    assert_eq!(
        on_dead
            .iter()
            .filter(|args| args[0].eq_ignore_ascii_case("XADD"))
            .count(),
        50,
        "every dead letter was seen being written"
    );
    for args in on_dead {
        let verb = args[0].to_ascii_uppercase();
        assert!(
            verb != "XTRIM"
                && !args
                    .iter()
                    .any(|arg| matches!(arg.to_ascii_uppercase().as_str(), "MAXLEN" | "MINID")),
            "a dead-letter stream is never capped or trimmed: {args:?}"
        );
    }
}

#[tokio::test]
async fn replaying_a_malformed_id_is_the_callers_error() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let mut conn = target.shared().await.unwrap();
    for id in ["not-an-id", "12", "", "1-2-3"] {
        match deadletter::replay(&mut conn, "s", id).await {
            Err(Error::InvalidId(given)) => assert_eq!(given, id),
            other => panic!("replay of {id:?} gave {other:?}"),
        }
    }
    assert_eq!(deadletter::replay(&mut conn, "s", "1-0").await.unwrap(), None);
}

#[tokio::test]
async fn a_group_created_after_trimming_reports_what_it_missed() {
    let (redis, target) = node_with(0..10).await;
    let mut conn = target.shared().await.unwrap();

    assert_eq!(
        ensure_group(&mut conn, "s", "early").await.unwrap(),
        GroupStart::Created { missed: 0 }
    );
    redis.command(&["XTRIM", "s", "MAXLEN", "4"]);
    assert_eq!(
        ensure_group(&mut conn, "s", "late").await.unwrap(),
        GroupStart::Created { missed: 6 }
    );
    assert_eq!(
        ensure_group(&mut conn, "s", "late").await.unwrap(),
        GroupStart::Existed
    );

    // A group deleted and recreated misses what was removed meanwhile.
    redis.command(&["XGROUP", "DESTROY", "s", "early"]);
    let (first, _) = stream_numbers(&mut conn, "s").await.remove(0);
    redis.command(&["XDEL", "s", &first]);
    assert_eq!(
        ensure_group(&mut conn, "s", "early").await.unwrap(),
        GroupStart::Created { missed: 7 }
    );
    assert_eq!(
        ensure_group(&mut conn, "fresh", "g").await.unwrap(),
        GroupStart::Created { missed: 0 }
    );
}
