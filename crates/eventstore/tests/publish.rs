//! Publishing, connecting and trimming against a real `redis-server`, and
//! against a real Redis Cluster where keys live on several masters.

mod common;

use common::{on_node_and_cluster, publish_numbers, publisher, stream_numbers, Numbered, Server};
use eventstore::{trim, Envelope, RedisTarget};
use testkit::{Persistence, RedisServer};

on_node_and_cluster! {
    #[tokio::test]
    many_streams: events_for_many_streams_go_out_together_each_stream_in_order,
        events_for_many_streams_go_out_together_each_stream_in_order_on_a_cluster;
    trimmed_safely: trimming_never_removes_an_unacknowledged_entry,
        trimming_never_removes_an_unacknowledged_entry_on_a_cluster;
}

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
    let entries = stream_numbers(&mut conn, "s").await;
    let numbers: Vec<u64> = entries.iter().map(|(_, n)| *n).collect();
    assert_eq!(numbers, (0..=10_000).collect::<Vec<_>>());
    assert_eq!(entries.last().unwrap().0, id);
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

async fn many_streams(server: Server) {
    let target = server.target();
    let streams = ["a", "b", "c", "d", "e", "f"];
    let events: Vec<(&str, Envelope)> = (0..600u64)
        .map(|n| {
            (
                streams[n as usize % streams.len()],
                Envelope::new(&Numbered { n }).unwrap(),
            )
        })
        .collect();
    assert_eq!(publisher(&target).await.publish_many(&events).await.unwrap(), 600);
    let mut conn = target.shared().await.unwrap();
    for (index, stream) in streams.iter().enumerate() {
        let numbers: Vec<u64> = stream_numbers(&mut conn, stream)
            .await
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        let expected: Vec<u64> = (0..600)
            .filter(|n| *n as usize % streams.len() == index)
            .collect();
        assert_eq!(numbers, expected, "stream {stream}");
    }
}

async fn trimmed_safely(server: Server) {
    let target = server.target();
    let mut conn = target.shared().await.unwrap();
    publish_numbers(&publisher(&target).await, "s", 0..100).await;
    let ids: Vec<String> = stream_numbers(&mut conn, "s")
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();

    // No group yet: nothing may go.
    assert_eq!(trim::trim(&mut conn, "s").await.unwrap(), 0);

    for group in ["a", "b", "idle"] {
        server.command(&["XGROUP", "CREATE", "s", group, "0"]);
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
    server.command(&["XGROUP", "DESTROY", "s", "idle"]);

    // a acks its first 40 but entry 10 (still pending), b acks all 30.
    for (i, id) in ids[..40].iter().enumerate() {
        if i != 10 {
            server.command(&["XACK", "s", "a", id]);
        }
    }
    for id in &ids[..30] {
        server.command(&["XACK", "s", "b", id]);
    }
    // The oldest needed entry is a's pending #10.
    assert_eq!(trim::trim(&mut conn, "s").await.unwrap(), 10);
    assert_eq!(xlen(&mut conn, "s").await, 90);

    // Once a acks #10, its next need is #40 (pending) and b's is #30 (undelivered).
    server.command(&["XACK", "s", "a", &ids[10]]);
    assert_eq!(trim::trim(&mut conn, "s").await.unwrap(), 20);
    assert_eq!(stream_numbers(&mut conn, "s").await[0].0, ids[30]);

    // Everything acked by both: only then is everything removable.
    for id in &ids[30..60] {
        server.command(&["XACK", "s", "a", id]);
    }
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&["GROUP", "b", "b1", "COUNT", "100", "STREAMS", "s", ">"])
        .query_async(&mut conn)
        .await
        .unwrap();
    for id in &ids[30..] {
        server.command(&["XACK", "s", "b", id]);
    }
    // a has 40 undelivered entries left (60..100), so those stay.
    assert_eq!(trim::trim(&mut conn, "s").await.unwrap(), 30);
    assert_eq!(xlen(&mut conn, "s").await, 40);
}

async fn xlen(conn: &mut eventstore::Redis, stream: &str) -> u64 {
    redis::cmd("XLEN").arg(stream).query_async(conn).await.unwrap()
}
