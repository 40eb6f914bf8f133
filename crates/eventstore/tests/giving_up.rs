//! No entry leaves without an outcome: the handler settles every entry the
//! worker gives up on before it is dead-lettered; transient failures are
//! retried with a growing backoff for a budget in time, never for a number
//! of deliveries; `max_deliveries` counts only deliveries that never
//! answered; a deferral is a wait, past any budget and count.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, fast_config, pending, publisher, Numbered};
use eventstore::{deadletter, Delivery, Envelope, HandleError, Handler, RedisTarget, Worker};
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

/// Per event number: (delivery count, when) of each run.
type Runs = Arc<Mutex<HashMap<u64, Vec<(u64, Instant)>>>>;

/// A handler that fails event numbers in `failing` with a retry, records
/// every run and every give-up.
#[derive(Clone, Default)]
struct Recorder {
    failing: Arc<Mutex<Vec<u64>>>,
    /// Event numbers answered "later" (for how long), and how many more
    /// times each is.
    deferring: Arc<Mutex<HashMap<u64, (Duration, u32)>>>,
    runs: Runs,
    /// (event number, delivery count, reason) of each give-up.
    given_up: Arc<Mutex<Vec<(u64, u64, String)>>>,
}

impl Recorder {
    fn failing(numbers: &[u64]) -> Self {
        let recorder = Self::default();
        *recorder.failing.lock().unwrap() = numbers.to_vec();
        recorder
    }

    fn runs(&self, n: u64) -> Vec<(u64, Instant)> {
        self.runs.lock().unwrap().get(&n).cloned().unwrap_or_default()
    }

    fn given_up(&self) -> Vec<(u64, u64, String)> {
        self.given_up.lock().unwrap().clone()
    }
}

impl Recorder {
    fn run(&self, delivery: &Delivery) -> Result<(), HandleError> {
        let event: Numbered = delivery.envelope.decode()?;
        self.runs
            .lock()
            .unwrap()
            .entry(event.n)
            .or_default()
            .push((delivery.deliveries, Instant::now()));
        if self.failing.lock().unwrap().contains(&event.n) {
            return Err(HandleError::Retry(anyhow::anyhow!("{} is greylisted", event.n)));
        }
        if let Some((wait, left @ 1..)) = self.deferring.lock().unwrap().get_mut(&event.n) {
            *left -= 1;
            return Err(HandleError::Later(*wait, "the send rate".into()));
        }
        Ok(())
    }
}

impl Handler for Recorder {
    async fn handle_batch(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandleError>> {
        deliveries.iter().map(|delivery| self.run(delivery)).collect()
    }

    async fn give_up(&self, delivery: Delivery, reason: &str) -> Result<(), HandleError> {
        let event: Numbered = delivery.envelope.decode()?;
        self.given_up
            .lock()
            .unwrap()
            .push((event.n, delivery.deliveries, reason.to_string()));
        Ok(())
    }
}

async fn publish(target: &RedisTarget, numbers: std::ops::Range<u64>) -> Vec<String> {
    let publisher = publisher(target).await;
    let mut ids = Vec::new();
    for n in numbers {
        ids.push(
            publisher
                .publish("s", &Envelope::new(&Numbered { n }).unwrap())
                .await
                .unwrap(),
        );
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_that_never_answered_are_settled_by_the_handler_then_dead_lettered() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let ids = publish(&target, 0..3).await;
    // A consumer that crashed on each delivery: entry 0 was delivered
    // max_deliveries (3) times, entry 1 twice, entry 2 four times (its
    // give-up crashed too). Redis holds just that after such crashes.
    redis.command(&["XGROUP", "CREATE", "s", "g", "0"]);
    redis.command(&["XREADGROUP", "GROUP", "g", "crashed", "STREAMS", "s", ">"]);
    for (id, count) in ids.iter().zip(["3", "2", "4"]) {
        let claimed = redis.command(&[
            "XCLAIM",
            "s",
            "g",
            "crashed",
            "0",
            id,
            "IDLE",
            "60000",
            "RETRYCOUNT",
            count,
            "JUSTID",
        ]);
        assert_eq!(claimed, "*1");
    }

    let recorder = Recorder::default();
    let shutdown = CancellationToken::new();
    let worker = Worker::new(target.clone(), fast_config("s", "g", "c1"));
    let counters = worker.counters();
    let run = tokio::spawn(worker.run(recorder.clone(), shutdown.clone()));
    eventually("all three settled", Duration::from_secs(20), || async {
        let counts = counters.snapshot();
        (counts.handled, counts.dead_lettered) == (1, 2)
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    assert_eq!(
        recorder.runs(0).len(),
        0,
        "an entry that crashes is not run again"
    );
    assert_eq!(recorder.runs(2).len(), 0);
    assert_eq!(
        recorder.runs(1).iter().map(|run| run.0).collect::<Vec<_>>(),
        vec![3]
    );
    let given_up = recorder.given_up();
    assert_eq!(given_up.len(), 1, "{given_up:?}");
    let (n, deliveries, reason) = &given_up[0];
    assert_eq!((*n, *deliveries), (0, 4));
    assert!(reason.contains("without an answer"), "{reason}");

    let mut conn = target.shared().await.unwrap();
    let letters = deadletter::list(&mut conn, "s", 10).await.unwrap();
    let letter = |id: &str| letters.iter().find(|letter| letter.original_id == id).unwrap();
    assert_eq!(&letter(&ids[0]).reason, reason, "the dead letter says why");
    assert!(
        letter(&ids[2]).reason.contains("not settled"),
        "a give-up that crashed is not called again: {}",
        letter(&ids[2]).reason
    );
    assert_eq!(pending(&target, "s", "g").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_entry_comes_back_after_its_wait_past_any_budget_or_count() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    publish(&target, 0..2).await;
    let wait = Duration::from_millis(300);
    let recorder = Recorder::default();
    recorder.deferring.lock().unwrap().insert(0, (wait, 6));
    let shutdown = CancellationToken::new();
    let mut config = fast_config("s", "g", "c1");
    config.retry_budget = Duration::from_secs(1);
    config.max_deliveries = 1;
    let worker = Worker::new(target.clone(), config);
    let counters = worker.counters();
    let run = tokio::spawn(worker.run(recorder.clone(), shutdown.clone()));
    eventually("both entries handled", Duration::from_secs(20), || async {
        counters.snapshot().handled == 2
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    let runs = recorder.runs(0);
    assert_eq!(runs.len(), 7, "six deferrals, then handled: {runs:?}");
    for pair in runs.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= wait,
            "came back before its wait: {runs:?}"
        );
    }
    assert!(
        runs[6].1 - runs[0].1 > Duration::from_secs(1),
        "deferred past its retry budget"
    );
    let snapshot = counters.snapshot();
    assert_eq!((snapshot.failed, snapshot.dead_lettered), (0, 0), "{snapshot:?}");
    assert!(recorder.given_up().is_empty());
    assert_eq!(pending(&target, "s", "g").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_comes_back_after_a_growing_backoff_until_its_budget_is_spent() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let ids = publish(&target, 0..2).await;

    // Entry 0 always fails; entry 1 fails once.
    let recorder = Recorder::failing(&[0, 1]);
    let shutdown = CancellationToken::new();
    let mut config = fast_config("s", "g", "c1");
    config.claim_idle = Duration::from_millis(200);
    config.retry_backoff_max = Duration::from_millis(800);
    config.retry_budget = Duration::from_secs(3);
    config.max_deliveries = 2;
    let worker = Worker::new(target.clone(), config.clone());
    let counters = worker.counters();
    let run = tokio::spawn(worker.run(recorder.clone(), shutdown.clone()));
    eventually("entry 1 failed once", Duration::from_secs(10), || async {
        !recorder.runs(1).is_empty()
    })
    .await;
    recorder.failing.lock().unwrap().retain(|n| *n != 1);
    eventually("entry 0 given up", Duration::from_secs(20), || async {
        counters.snapshot().dead_lettered == 1
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    let runs = recorder.runs(0);
    let counts: Vec<u64> = runs.iter().map(|run| run.0).collect();
    assert_eq!(
        counts,
        (1..=runs.len() as u64).collect::<Vec<_>>(),
        "one count per run"
    );
    assert!(
        runs.len() as u64 > config.max_deliveries,
        "retries within the budget do not stop at max_deliveries: {} runs",
        runs.len()
    );
    for (k, pair) in runs.windows(2).enumerate() {
        let backoff = (config.claim_idle * 2u32.pow(k as u32)).min(config.retry_backoff_max);
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap >= backoff,
            "retry {} came after {gap:?}, before its backoff of {backoff:?}",
            k + 1
        );
    }
    assert_eq!(
        recorder.runs(1).iter().map(|run| run.0).collect::<Vec<_>>(),
        vec![1, 2]
    );

    let given_up = recorder.given_up();
    assert_eq!(given_up.len(), 1, "{given_up:?}");
    let (n, deliveries, reason) = &given_up[0];
    assert_eq!((*n, *deliveries), (0, runs.len() as u64));
    assert!(
        reason.contains("retry budget") && reason.contains("0 is greylisted"),
        "{reason}"
    );
    let mut conn = target.shared().await.unwrap();
    let letters = deadletter::list(&mut conn, "s", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!((&letters[0].original_id, &letters[0].reason), (&ids[0], reason));
    assert_eq!(pending(&target, "s", "g").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_waiting_out_a_backoff_leave_their_slots_to_the_others() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    publish(&target, 0..2).await;

    // Both slots' first entries keep failing, with a backoff far longer
    // than the others take.
    let recorder = Recorder::failing(&[0, 1]);
    let shutdown = CancellationToken::new();
    let mut config = fast_config("s", "g", "c1");
    config.concurrency = 2;
    config.batch_size = 2;
    config.claim_idle = Duration::from_secs(5);
    config.retry_backoff_max = Duration::from_secs(5);
    let worker = Worker::new(target.clone(), config);
    let counters = worker.counters();
    let run = tokio::spawn(worker.run(recorder.clone(), shutdown.clone()));
    eventually("entries 0 and 1 failed", Duration::from_secs(10), || async {
        !recorder.runs(0).is_empty() && !recorder.runs(1).is_empty()
    })
    .await;
    publish(&target, 2..12).await;
    eventually(
        "the ten later entries handled while 0 and 1 wait",
        Duration::from_secs(4),
        || async { counters.snapshot().handled == 10 },
    )
    .await;
    assert_eq!(recorder.runs(0).len(), 1, "entry 0 still waits out its backoff");
    assert_eq!(recorder.runs(1).len(), 1, "entry 1 still waits out its backoff");
    assert_eq!(
        pending(&target, "s", "g").await,
        2,
        "the waiting entries stay pending"
    );

    shutdown.cancel();
    run.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_cut_short_by_a_restart_do_not_count_as_crashes() {
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    publish(&target, 0..1).await;
    let mut config = fast_config("s", "g", "c1");
    config.claim_idle = Duration::from_millis(100);
    config.retry_backoff_max = Duration::from_millis(200);
    config.max_deliveries = 2;

    // The first process retries the entry past max_deliveries, then stops.
    let first = Recorder::failing(&[0]);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(Worker::new(target.clone(), config.clone()).run(first.clone(), shutdown.clone()));
    eventually("four failed runs", Duration::from_secs(10), || async {
        first.runs(0).len() >= 4
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();
    let runs_before = first.runs(0).len() as u64;
    assert_eq!(pending(&target, "s", "g").await, 1, "left pending at shutdown");

    // The next one claims it and runs it: nothing crashed.
    let second = Recorder::default();
    let shutdown = CancellationToken::new();
    let worker = Worker::new(target.clone(), config);
    let counters = worker.counters();
    let run = tokio::spawn(worker.run(second.clone(), shutdown.clone()));
    eventually("handled after the restart", Duration::from_secs(10), || async {
        counters.snapshot().handled == 1
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    assert_eq!(
        second.runs(0).iter().map(|run| run.0).collect::<Vec<_>>(),
        vec![runs_before + 1]
    );
    assert!(second.given_up().is_empty() && first.given_up().is_empty());
    let mut conn = target.shared().await.unwrap();
    assert!(deadletter::list(&mut conn, "s", 10).await.unwrap().is_empty());
    assert_eq!(
        redis.command(&["EXISTS", "s:retries:g"]),
        ":0",
        "retry counts go with the ack"
    );
}
