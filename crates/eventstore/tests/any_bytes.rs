//! A property: whatever bytes an entry's fields hold, the worker settles
//! it, handled when it is an envelope, dead-lettered with its bytes intact
//! when it is not, and nothing stays pending.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{fast_config, Numbered, Running};
use eventstore::{deadletter, Delivery, Envelope, HandleError, Redis, RedisTarget};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use testkit::RedisServer;

/// Raw field pairs.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Any fields at all, or a valid envelope with any fields beside it.
fn entries() -> impl Strategy<Value = Fields> {
    let field = (
        prop::collection::vec(any::<u8>(), 0..12),
        prop::collection::vec(any::<u8>(), 0..24),
    );
    let any_fields = prop::collection::vec(field.clone(), 1..6);
    let envelope_and_more = (any::<u64>(), prop::collection::vec(field, 0..4)).prop_map(|(n, extra)| {
        let mut fields: Fields = Envelope::new(&Numbered { n })
            .unwrap()
            .to_fields()
            .into_iter()
            .map(|(name, value)| (name.as_bytes().to_vec(), value.into_bytes()))
            .collect();
        fields.extend(extra);
        fields
    });
    prop_oneof![any_fields, envelope_and_more]
}

/// Where each case runs: one server, one worker recording what it handled.
struct Bench {
    conn: Redis,
    target: RedisTarget,
    handled: Arc<Mutex<HashSet<String>>>,
    /// The last dead letter seen, to read the next one after it.
    last_letter: Option<String>,
}

impl Bench {
    /// Adds `fields` as an entry and checks how it was settled.
    async fn check(&mut self, fields: Fields) -> Result<(), TestCaseError> {
        let mut xadd = redis::cmd("XADD");
        xadd.arg("s").arg("*");
        for (name, value) in &fields {
            xadd.arg(name.as_slice()).arg(value.as_slice());
        }
        let id: String = xadd.query_async(&mut self.conn).await.unwrap();
        let is_envelope = Envelope::from_fields(&fields).is_ok();
        let start = Instant::now();
        loop {
            prop_assert!(
                start.elapsed() < Duration::from_secs(10),
                "entry {} never settled",
                id
            );
            if common::pending(&self.target, "s", "g").await == 0 {
                if self.handled.lock().unwrap().contains(&id) {
                    prop_assert!(is_envelope, "{id} was handled, yet is no envelope");
                    return Ok(());
                }
                let page = deadletter::page(&mut self.conn, "s", self.last_letter.as_deref(), 1)
                    .await
                    .unwrap();
                if let Some(letter) = page.into_iter().next() {
                    prop_assert!(!is_envelope, "{id} was dead-lettered: {}", letter.reason);
                    prop_assert_eq!(&letter.original_id, &id);
                    let exact: Fields = letter
                        .fields_base64
                        .iter()
                        .map(|(name, value)| {
                            (STANDARD.decode(name).unwrap(), STANDARD.decode(value).unwrap())
                        })
                        .collect();
                    prop_assert_eq!(exact, fields);
                    self.last_letter = Some(letter.id);
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[test]
fn entries_of_any_bytes_are_handled_or_dead_lettered_intact() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let handled = Arc::new(Mutex::new(HashSet::new()));
    let recorded = handled.clone();
    let (mut running, conn) = runtime.block_on(async {
        let running = Running::spawn(&target, fast_config("s", "g", "c1"), move |delivery: Delivery| {
            recorded.lock().unwrap().insert(delivery.entry_id);
            std::future::ready(Ok::<(), HandleError>(()))
        });
        (running, target.shared().await.unwrap())
    });
    let bench = Mutex::new(Bench {
        conn,
        target: target.clone(),
        handled,
        last_letter: None,
    });
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&entries(), |fields| {
        runtime.block_on(bench.lock().unwrap().check(fields))
    });
    runtime.block_on(running.stop());
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
