//! `pending::awaits` against a real `redis-server`: an entry is awaited by a
//! group until that group has acknowledged it.

mod common;

use std::time::Duration;

use common::{eventually, fast_config, publisher, Numbered};
use eventstore::{pending::awaits, Envelope, HandleError, RedisTarget, Worker};
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn an_entry_is_awaited_until_its_group_acknowledges_it() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let mut conn = target.shared().await.unwrap();
    let id = publisher(&target)
        .await
        .publish("s", &Envelope::new(&Numbered { n: 1 }).unwrap())
        .await
        .unwrap();
    assert!(
        awaits(&mut conn, "s", "g", &id).await.unwrap(),
        "a group that does not exist yet will read it"
    );

    // Delivered to the group but not acknowledged: still awaited.
    redis.command(&["XGROUP", "CREATE", "s", "g", "0"]);
    redis.command(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"]);
    assert!(awaits(&mut conn, "s", "g", &id).await.unwrap());
    redis.command(&["XACK", "s", "g", &id]);
    assert!(!awaits(&mut conn, "s", "g", &id).await.unwrap());
    assert!(
        !awaits(&mut conn, "gone", "g", "1-0").await.unwrap(),
        "nothing awaits an entry of a stream that does not exist"
    );

    // Undelivered behind a group that exists: awaited until a worker of the
    // group handles it.
    let later = publisher(&target)
        .await
        .publish("s", &Envelope::new(&Numbered { n: 2 }).unwrap())
        .await
        .unwrap();
    assert!(awaits(&mut conn, "s", "g", &later).await.unwrap());
    let shutdown = CancellationToken::new();
    let worker = Worker::new(target.clone(), fast_config("s", "g", "c"));
    let running = tokio::spawn(worker.run(|_delivery| async { Ok::<(), HandleError>(()) }, shutdown.clone()));
    eventually("the worker settles the entry", Duration::from_secs(10), || {
        let mut conn = conn.clone();
        let later = later.clone();
        async move { !awaits(&mut conn, "s", "g", &later).await.unwrap() }
    })
    .await;
    shutdown.cancel();
    running.await.unwrap();
}
