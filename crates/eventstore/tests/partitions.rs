//! A stream split into partitions: entries go to the partition of their
//! key, and the figures, dead letters and replays of the partitions add up
//! to the stream's, on one node and on a cluster whose masters hold
//! different partitions.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{eventually, fast_config, on_node_and_cluster, Numbered, Running, Server};
use eventstore::{
    deadletter, partition, partitioned_stats, Delivery, Envelope, Error, HandleError, Partitioned, Publisher,
    RedisTarget,
};
use testkit::RedisServer;

const ENTRIES: u64 = 200;

/// Every tenth entry is poison.
fn poison(n: u64) -> bool {
    n % 10 == 0
}

on_node_and_cluster! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    partitions_add_up: partitions_add_up_in_figures_dead_letters_and_replays,
        partitions_add_up_in_figures_dead_letters_and_replays_on_a_cluster;
}

async fn partitions_add_up(server: Server) {
    let target = server.target();
    let stream = Partitioned::new("orders", 4);
    let publisher = Publisher::new(target.shared().await.unwrap());
    let events: Vec<(&str, Envelope)> = (0..ENTRIES)
        .map(|n| {
            (
                stream.for_key(&format!("key{n}")),
                Envelope::new(&Numbered { n }).unwrap(),
            )
        })
        .collect();
    publisher.publish_many(&events).await.unwrap();

    let mut workers: Vec<Running> = stream
        .partitions()
        .iter()
        .map(|partition| {
            Running::spawn(
                &target,
                fast_config(partition, "g", "c1"),
                |delivery: Delivery| async move {
                    let numbered: Numbered = delivery.envelope.decode()?;
                    if poison(numbered.n) {
                        return Err(HandleError::Poison(format!("{} is poison", numbered.n)));
                    }
                    Ok(())
                },
            )
        })
        .collect();
    let mut conn = target.shared().await.unwrap();
    let poisoned = (0..ENTRIES).filter(|&n| poison(n)).count() as u64;
    eventually("every entry settled", Duration::from_secs(30), || {
        let mut conn = conn.clone();
        let stream = stream.clone();
        async move {
            let stats = partitioned_stats(&mut conn, &stream).await.unwrap();
            stats.dead_letters == poisoned && stats.groups.first().is_some_and(|group| group.pending == 0)
        }
    })
    .await;
    futures::future::join_all(workers.iter_mut().map(Running::stop)).await;

    let stats = partitioned_stats(&mut conn, &stream).await.unwrap();
    assert_eq!(stats.stream, "orders");
    assert_eq!(stats.length, ENTRIES);
    let partitions: Vec<&str> = stats.partitions.iter().map(|p| p.stream.as_str()).collect();
    assert_eq!(partitions, stream.partitions());
    assert!(
        stats.partitions.iter().all(|p| p.length > 0),
        "keys spread: {:?}",
        stats.partitions
    );
    assert_eq!(stats.partitions.iter().map(|p| p.length).sum::<u64>(), ENTRIES);
    assert_eq!(
        stats.partitions.iter().map(|p| p.dead_letters).sum::<u64>(),
        poisoned
    );
    let [group] = stats.groups.as_slice() else {
        panic!("one group over all partitions: {:?}", stats.groups)
    };
    assert_eq!(
        (group.handled, group.dead_lettered, group.pending, group.lag),
        (ENTRIES - poisoned, poisoned, 0, Some(0))
    );
    assert_eq!(group.consumers, 1, "one consumer reading every partition");

    // The dead letters of every partition, a page at a time, oldest first.
    let mut letters = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = deadletter::page_over(&mut conn, stream.partitions(), after.as_deref(), 7)
            .await
            .unwrap();
        letters.extend(page.iter().cloned());
        if page.len() < 7 {
            break;
        }
        after = page.last().map(|letter| letter.id.clone());
    }
    let numbers: HashSet<String> = letters.iter().map(|letter| letter.reason.clone()).collect();
    assert_eq!(numbers.len() as u64, poisoned, "each dead letter once");
    assert!(letters
        .iter()
        .all(|letter| stream.partitions().contains(&letter.stream)));
    let ids: Vec<_> = letters
        .iter()
        .map(|letter| eventstore::StreamId::parse(&letter.id))
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] <= pair[1]), "oldest first");

    // A replay from the letter's own partition (as the dashboard does) puts
    // the entry back there, once.
    let letter = &letters[3];
    let its_partition = std::slice::from_ref(&letter.stream);
    let before = partition_length(&mut conn, &letter.stream).await;
    let replayed = deadletter::replay_over(&mut conn, its_partition, &letter.id)
        .await
        .unwrap();
    assert!(replayed.is_some());
    assert_eq!(partition_length(&mut conn, &letter.stream).await, before + 1);
    let stats = partitioned_stats(&mut conn, &stream).await.unwrap();
    assert_eq!(stats.dead_letters, poisoned - 1);
    assert_eq!(
        deadletter::replay_over(&mut conn, its_partition, &letter.id)
            .await
            .unwrap(),
        None,
        "replayed once"
    );
}

async fn partition_length(conn: &mut eventstore::Redis, stream: &str) -> u64 {
    redis::cmd("XLEN").arg(stream).query_async(conn).await.unwrap()
}

#[tokio::test]
async fn two_partitions_may_hold_one_id_and_neither_is_lost_nor_guessed() {
    let redis = RedisServer::start();
    let stream = Partitioned::new("s", 2);
    // Two partitions dead-lettered an entry in the same millisecond.
    for (dead, id) in [
        ("s:{0}:dead", "5-0"),
        ("s:{1}:dead", "5-0"),
        ("s:{0}:dead", "6-0"),
    ] {
        redis.command(&["XADD", dead, id, "event", "{}", "dead.reason", id]);
    }
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let mut conn = target.shared().await.unwrap();

    // A page never ends between the two.
    let first = deadletter::page_over(&mut conn, stream.partitions(), None, 1)
        .await
        .unwrap();
    let first: Vec<_> = first.iter().map(|l| (l.stream.as_str(), l.id.as_str())).collect();
    assert_eq!(first, [("s:{0}", "5-0"), ("s:{1}", "5-0")]);
    let next = deadletter::page_over(&mut conn, stream.partitions(), Some("5-0"), 1)
        .await
        .unwrap();
    let next: Vec<_> = next.iter().map(|l| (l.stream.as_str(), l.id.as_str())).collect();
    assert_eq!(next, [("s:{0}", "6-0")]);

    // A replay over both refuses to pick one, and replays nothing.
    let refused = deadletter::replay_over(&mut conn, stream.partitions(), "5-0")
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::AmbiguousId { id, streams } if id == "5-0" && streams == stream.partitions()),
        "{refused}"
    );
    assert_eq!(redis.command(&["XLEN", "s:{0}"]), ":0");
    assert_eq!(redis.command(&["XLEN", "s:{1}"]), ":0");
    // Named by its partition, each replays; an id only one holds needs no name.
    for partition in stream.partitions() {
        let replayed = deadletter::replay_over(&mut conn, std::slice::from_ref(partition), "5-0")
            .await
            .unwrap();
        assert!(replayed.is_some(), "{partition}");
    }
    assert!(deadletter::replay_over(&mut conn, stream.partitions(), "6-0")
        .await
        .unwrap()
        .is_some());
    assert_eq!(redis.command(&["XLEN", "s:{0}"]), ":2");
    assert_eq!(redis.command(&["XLEN", "s:{1}"]), ":1");
    assert_eq!(redis.command(&["XLEN", "s:{0}:dead"]), ":0");
    assert_eq!(redis.command(&["XLEN", "s:{1}:dead"]), ":0");
}

#[tokio::test]
async fn every_process_must_agree_on_the_partition_count() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let mut conn = target.shared().await.unwrap();
    partition::agree(&mut conn, 4).await.unwrap();
    partition::agree(&mut conn, 4).await.unwrap();
    let refused = partition::agree(&mut conn, 1).await.err().unwrap();
    assert!(
        matches!(
            refused,
            Error::PartitionsDiffer {
                asked: 1,
                recorded: 4
            }
        ),
        "{refused}"
    );
    assert_eq!(redis.command(&["GET", partition::PARTITIONS_KEY]), "4");
}
