//! `rediss://`: the event store over TLS to a real `redis-server`, trusting
//! a private CA through `SSL_CERT_FILE` (the system's store otherwise).

mod common;

use std::time::Duration;

use common::{fast_config, publish_numbers, publisher, Running};
use eventstore::{Delivery, HandleError, RedisTarget};
use testkit::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_and_consuming_over_tls() {
    let redis = RedisServer::start_tls("tls-secret");
    // This test binary holds only this test, so the variable affects nothing else.
    std::env::set_var("SSL_CERT_FILE", redis.ca_file());
    let target = RedisTarget::parse(&redis.url()).unwrap();
    assert!(
        target.to_string().starts_with("rediss://:***@localhost:"),
        "{target}"
    );

    publish_numbers(&publisher(&target).await, "s", 0..100).await;
    let mut running = Running::spawn(&target, fast_config("s", "g", "c1"), |_: Delivery| async {
        Ok::<(), HandleError>(())
    });
    running
        .until_handled("100 handled over TLS", Duration::from_secs(20), 100)
        .await;
    running.stop().await;

    let plain = RedisTarget::parse(&redis.url().replacen("rediss://", "redis://", 1)).unwrap();
    let Err(error) = plain.shared().await else {
        panic!("a plain connection to a TLS-only server must fail");
    };
    assert!(!error.to_string().contains("tls-secret"), "{error}");
}
