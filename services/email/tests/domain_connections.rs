//! A receiving domain's connection limit against a real SMTP server and
//! Redis: its sends go one at a time while another domain's go together,
//! and those that find no place within the horizon come back later,
//! their leases given back, nothing sent or failed.

mod common;

use std::time::{Duration, Instant};

use contracts::EmailRequested;
use email_service::domains::DomainLimits;
use email_service::ledger::SCHEMA;
use email_service::limits::{DOMAIN_BUSY_AGAIN, HORIZON};
use eventstore::{Delivery, Envelope, HandleError};
use testkit::{RedisServer, SlowSmtp};

use common::email;

/// The server answers each message after this.
const REPLY: Duration = Duration::from_millis(300);

fn to(id: &str, address: &str) -> Delivery {
    let email = EmailRequested {
        to_email: address.into(),
        ..email(id)
    };
    Delivery {
        entry_id: "1-0".into(),
        envelope: Envelope::new(&email).unwrap(),
        deliveries: 1,
    }
}

#[tokio::test]
async fn a_domain_s_sends_take_turns_for_its_one_connection_and_the_others_go_together() {
    let redis = RedisServer::start();
    let smtp = SlowSmtp::start(REPLY);
    let dir = tempfile::tempdir().unwrap();
    let db = servicekit::db::connect(&format!("sqlite://{}/email.db", dir.path().display()), SCHEMA)
        .await
        .unwrap();
    let sender = common::sender(
        &redis,
        &db,
        smtp.port(),
        ("domains-test", 60_000),
        DomainLimits::parse(0.0, 0, "slow.test=1 connection").unwrap(),
    )
    .await;

    // Ten to slow.test, one at a time: seven fit in the 2 s horizon at
    // 0.3 s each. Four to fast.test, together.
    let mut batch: Vec<Delivery> = (0..10)
        .map(|n| to(&format!("s{n}"), &format!("u{n}@slow.test")))
        .collect();
    batch.extend((0..4).map(|n| to(&format!("f{n}"), &format!("u{n}@fast.test"))));
    let started = Instant::now();
    let answers = sender.handle_requests(batch).await;
    println!("the batch took {:?}", started.elapsed());

    let (slow, fast) = answers.split_at(10);
    assert!(fast.iter().all(Result::is_ok), "{fast:?}");
    let sent = slow.iter().filter(|answer| answer.is_ok()).count();
    let later: Vec<_> = slow
        .iter()
        .filter_map(|answer| match answer {
            Err(HandleError::Later(after, why)) => Some((*after, why.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(sent + later.len(), 10, "sent or later, nothing else: {slow:?}");
    let most = (HORIZON.as_millis() / REPLY.as_millis()) as usize + 1;
    assert!(
        (1..=most).contains(&sent) && !later.is_empty(),
        "{sent} sent at once: {slow:?}"
    );
    assert!(
        later.iter().all(
            |(after, why)| *after == DOMAIN_BUSY_AGAIN && why == "slow.test has its 1 connections in use"
        ),
        "{later:?}"
    );

    let times = |prefix: &str| -> Vec<Instant> {
        smtp.received_at()
            .into_iter()
            .filter(|(id, _)| id.starts_with(&format!("<{prefix}")))
            .map(|(_, at)| at)
            .collect()
    };
    let slow_times = times("s");
    assert_eq!(slow_times.len(), sent, "the ones answered later were not sent");
    for pair in slow_times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= REPLY.saturating_sub(Duration::from_millis(50)),
            "slow.test sends overlapped: {gap:?} apart"
        );
    }
    let fast_times = times("f");
    assert_eq!(fast_times.len(), 4);
    let spread = fast_times[3] - fast_times[0];
    assert!(
        spread < REPLY * 2,
        "fast.test's sends went one after the other: {spread:?}"
    );
}
