//! The consumer-group worker through a Redis crash and restart: a node's,
//! a cluster master's, and a master lost long enough to bring the whole
//! cluster down. Nothing is lost either way.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{
    eventually, fast_config, publish_numbers, publisher, recording, until_all_seen, until_nothing_pending,
    Running, Seen, Server,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_and_restart_loses_nothing() {
    crash_and_restart(Server::node(), Outage::Brief).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_and_restart_of_the_streams_master_loses_nothing() {
    crash_and_restart(Server::cluster(), Outage::Brief).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_down_while_the_streams_master_is_lost_loses_nothing() {
    crash_and_restart(Server::cluster(), Outage::ClusterDown).await;
}

/// How long the server stays down.
enum Outage {
    /// Half a second: a restart within a cluster's node timeout.
    Brief,
    /// Until the other masters declare it failed and, with no replica to
    /// promote, the whole cluster refuses every command.
    ClusterDown,
}

async fn crash_and_restart(mut server: Server, outage: Outage) {
    const TOTAL: u64 = 10_000;
    let target = server.target();
    publish_numbers(&publisher(&target).await, "s", 0..TOTAL).await;

    let seen: Seen = Arc::default();
    let mut config = fast_config("s", "g", "c1");
    config.claim_idle = Duration::from_secs(2);
    config.batch_size = 100;
    // Slow enough that the crash lands mid-stream.
    let handler = recording(&seen, |_, _| async {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(())
    });
    let mut running = Running::spawn(&target, config, handler);
    let counters = running.counters.clone();

    eventually("a quarter handled", Duration::from_secs(120), || async {
        counters.snapshot().handled >= TOTAL / 4
    })
    .await;
    let killed = server.kill_holder_of("s");
    let handled_at_crash = counters.snapshot().handled;
    match (&server, outage) {
        (Server::Cluster(cluster), Outage::ClusterDown) => {
            tokio::task::block_in_place(|| cluster.wait_failed_without(killed));
        }
        _ => tokio::time::sleep(Duration::from_millis(500)).await,
    }
    server.restart(killed);

    until_all_seen(&seen, TOTAL, Duration::from_secs(60), Duration::from_secs(600)).await;
    until_nothing_pending(&target, "g", Duration::from_secs(60)).await;
    running.stop().await;

    let seen = seen.lock().unwrap();
    assert_eq!(seen.keys().copied().collect::<HashSet<_>>(), (0..TOTAL).collect());
    let redelivered = seen.values().filter(|d| d.len() > 1).count();
    assert!(handled_at_crash < TOTAL, "the crash happened mid-stream");
    println!("crash after {handled_at_crash} handled; {redelivered} entries handled more than once");
}
