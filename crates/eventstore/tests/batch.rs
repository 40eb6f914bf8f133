//! Batch handlers against a real `redis-server`: the entries of one read
//! reach the handler together, each gets its own answer, and only the ones
//! that failed run again, each on its own.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, fast_config, pending, publish_numbers, publisher, Numbered};
use eventstore::{Delivery, HandleError, Handler, RedisTarget, Worker};
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

/// Fails entry 13 once with a retry and refuses entry 17 as poison; records
/// the numbers of each batch it is given.
#[derive(Clone, Default)]
struct Recording {
    batches: Arc<Mutex<Vec<Vec<u64>>>>,
}

impl Recording {
    fn batches(&self) -> Vec<Vec<u64>> {
        self.batches.lock().unwrap().clone()
    }
}

impl Handler for Recording {
    async fn handle_batch(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandleError>> {
        let numbers: Vec<(u64, u64)> = deliveries
            .iter()
            .map(|d| (d.envelope.decode::<Numbered>().unwrap().n, d.deliveries))
            .collect();
        self.batches
            .lock()
            .unwrap()
            .push(numbers.iter().map(|(n, _)| *n).collect());
        numbers
            .into_iter()
            .map(|(n, deliveries)| match n {
                13 if deliveries == 1 => Err(HandleError::Retry(anyhow::anyhow!("busy"))),
                17 => Err(HandleError::Poison("never valid".into())),
                _ => Ok(()),
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_one_batch_and_only_its_failed_entries_run_again_alone() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let publisher = publisher(&target).await;
    publish_numbers(&publisher, "s", 0..50).await;

    let mut config = fast_config("s", "g", "c1");
    config.batch_size = 50;
    config.concurrency = 50;
    let handler = Recording::default();
    let worker = Worker::new(target.clone(), config);
    let counters = worker.counters();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(worker.run(handler.clone(), shutdown.clone()));

    eventually("all settled", Duration::from_secs(10), || async {
        let snapshot = counters.snapshot();
        snapshot.handled == 49 && snapshot.dead_lettered == 1
    })
    .await;
    assert_eq!(pending(&target, "s", "g").await, 0);
    shutdown.cancel();
    run.await.unwrap();

    let batches = handler.batches();
    assert_eq!(batches[0], (0..50).collect::<Vec<_>>(), "one read, one batch");
    assert_eq!(
        batches[1..].to_vec(),
        vec![vec![13]],
        "only the retried entry ran again, alone; the poison one was not run again"
    );
}
