//! Publishing, connecting and trimming against a real `redis-server`.

mod common;

use common::{publish_numbers, publisher, Numbered};
use eventstore::{trim, Envelope, RedisTarget};
use testkit::{Persistence, RedisServer};

#[tokio::test]
async fn a_batch_is_published_in_order_and_reads_back_as_envelopes() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let publisher = publisher(&target).await;
    publish_numbers(&publisher, "s", 0..10_000).await;
    let single = Envelope::new(&Numbered { n: 10_000 })
        .unwrap()
        .traced(Some("00-trace-span-01".into()));
    let id = publisher.publish("s", &single).await.unwrap();
    assert_eq!(redis.command(&["XLEN", "s"]), ":10001");

    let mut conn = target.shared().await.unwrap();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let numbers: Vec<u64> = entries
        .ids
        .iter()
        .map(|entry| {
            let fields: Vec<(String, Vec<u8>)> = entry
                .map
                .iter()
                .map(|(k, v)| (k.clone(), redis::from_redis_value_ref::<Vec<u8>>(v).unwrap()))
                .collect();
            Envelope::from_fields(&fields)
                .unwrap()
                .decode::<Numbered>()
                .unwrap()
                .n
        })
        .collect();
    assert_eq!(numbers, (0..=10_000).collect::<Vec<_>>());
    assert_eq!(entries.ids.last().unwrap().id, id);
}

#[tokio::test]
async fn a_password_protected_server_is_reached_and_the_password_never_shows() {
    let redis = RedisServer::start_with(Persistence::None, Some("hunter2-secret"));
    let target = RedisTarget::parse(&redis.url()).unwrap();
    assert!(!format!("{target} {target:?}").contains("hunter2-secret"));
    publisher(&target)
        .await
        .publish("s", &Envelope::new(&Numbered { n: 1 }).unwrap())
        .await
        .unwrap();

    let wrong = RedisTarget::parse(&format!("redis://:wrong-secret@127.0.0.1:{}", redis.port())).unwrap();
    let Err(error) = wrong.shared().await else {
        panic!("a wrong password is refused")
    };
    let error = error.to_string();
    assert!(
        error.contains("cannot connect to Redis at redis://:***@127.0.0.1"),
        "{error}"
    );
    assert!(!error.contains("wrong-secret"), "{error}");

    let nobody = RedisTarget::parse(&format!(
        "redis://:hunter2-secret@127.0.0.1:{}",
        testkit::free_port()
    ))
    .unwrap();
    let Err(error) = nobody.shared().await else {
        panic!("no server there")
    };
    let error = error.to_string();
    assert!(!error.contains("hunter2-secret"), "{error}");
}

#[tokio::test]
async fn trimming_never_removes_an_unacknowledged_entry() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let mut conn = target.shared().await.unwrap();
    publish_numbers(&publisher(&target).await, "s", 0..100).await;
    let all: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let ids: Vec<String> = all.ids.iter().map(|entry| entry.id.clone()).collect();

    // No group yet: nothing may go.
    assert_eq!(trim::trim(&mut conn, "s").await.unwrap(), 0);

    for group in ["a", "b", "idle"] {
        redis.command(&["XGROUP", "CREATE", "s", group, "0"]);
    }
    // Group `idle` has read nothing: still nothing may go.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&["GROUP", "a", "a1", "COUNT", "60", "STREAMS", "s", ">"])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&["GROUP", "b", "b1", "COUNT", "30", "STREAMS", "s", ">"])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(trim::trim(&mut conn, "s").await.unwrap(), 0);
    redis.command(&["XGROUP", "DESTROY", "s", "idle"]);

    // a acks its first 40 but entry 10 (still pending), b acks all 30.
    for (i, id) in ids[..40].iter().enumerate() {
        if i != 10 {
            redis.command(&["XACK", "s", "a", id]);
        }
    }
    for id in &ids[..30] {
        redis.command(&["XACK", "s", "b", id]);
    }
    // The oldest needed entry is a's pending #10.
    assert_eq!(trim::trim(&mut conn, "s").await.unwrap(), 10);
    assert_eq!(redis.command(&["XLEN", "s"]), ":90");

    // Once a acks #10, its next need is #40 (pending) and b's is #30 (undelivered).
    redis.command(&["XACK", "s", "a", &ids[10]]);
    assert_eq!(trim::trim(&mut conn, "s").await.unwrap(), 20);
    let first: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(first.ids[0].id, ids[30]);

    // Everything acked by both: only then is everything removable.
    for id in &ids[30..60] {
        redis.command(&["XACK", "s", "a", id]);
    }
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&["GROUP", "b", "b1", "COUNT", "100", "STREAMS", "s", ">"])
        .query_async(&mut conn)
        .await
        .unwrap();
    for id in &ids[30..] {
        redis.command(&["XACK", "s", "b", id]);
    }
    // a has 40 undelivered entries left (60..100), so those stay.
    assert_eq!(trim::trim(&mut conn, "s").await.unwrap(), 30);
    assert_eq!(redis.command(&["XLEN", "s"]), ":40");
}
