//! Retrying is the worker's: an outcome the ledger could not take after
//! the server's `250 OK` is kept by the sender, and the worker's retry of
//! the entry records it instead of sending the email again. A send in
//! flight when its sender died is finished, whatever happened to its
//! campaign since.

mod common;

use std::time::Duration;

use contracts::control::{Control, ControlBoard};
use contracts::DELIVERIES;
use email_service::domains::DomainLimits;
use email_service::ledger::{Ledger, SCHEMA};
use email_service::sender::Sender;
use eventstore::{Delivery, Envelope, HandleError, RedisTarget};
use sqlx::AnyPool;
use tempfile::TempDir;
use testkit::{Answer, RedisServer, SlowSmtp};

use common::email;

/// A sender as email-service builds one, to the SMTP server on
/// `smtp_port`, publishing on `redis`, with a ledger of leases of
/// `lease_ms` in a new SQLite database that `trigger` (SQL) makes refuse
/// what the ledger would write. Returns the sender, the database (to lift
/// the trigger) and its directory.
async fn sender_on(
    redis: &RedisServer,
    smtp_port: u16,
    lease_ms: i64,
    trigger: &str,
) -> (Sender, AnyPool, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/email.db", dir.path().display());
    let db = servicekit::db::connect(&url, SCHEMA).await.unwrap();
    sqlx::query(trigger).execute(&db).await.unwrap();
    let sender = common::sender(
        redis,
        &db,
        smtp_port,
        ("sender-test", lease_ms),
        DomainLimits::default(),
    )
    .await;
    (sender, db, dir)
}

/// The first delivery of the request to send the email of notification
/// `n1`.
fn request_n1() -> Delivery {
    Delivery {
        entry_id: "1-0".into(),
        envelope: Envelope::new(&email("n1")).unwrap(),
        deliveries: 1,
    }
}

#[tokio::test]
async fn a_send_the_ledger_could_not_record_is_recorded_on_the_retry_not_sent_again() {
    let redis = RedisServer::start();
    let smtp = SlowSmtp::start(Duration::ZERO);
    // The ledger refuses to mark a send done, as a database briefly away
    // would, after the server has taken the message.
    let (sender, db, _dir) = sender_on(
        &redis,
        smtp.port(),
        60_000,
        "CREATE TRIGGER refuse_sent BEFORE UPDATE ON send_ledger WHEN NEW.status = 'sent'
         BEGIN SELECT RAISE(ABORT, 'the ledger is away'); END",
    )
    .await;
    let delivery = request_n1();
    let first = sender.handle_requests(vec![delivery.clone()]).await;
    assert!(matches!(first[..], [Err(HandleError::Retry(_))]), "{first:?}");
    assert_eq!(smtp.message_ids().len(), 1);

    // The worker's retry of the entry, once the ledger is back.
    sqlx::query("DROP TRIGGER refuse_sent")
        .execute(&db)
        .await
        .unwrap();
    let retry = Delivery {
        deliveries: 2,
        ..delivery
    };
    let second = sender.handle_requests(vec![retry]).await;
    assert!(matches!(second[..], [Ok(())]), "{second:?}");
    assert_eq!(smtp.message_ids().len(), 1, "the email went out once");
    let status: String = sqlx::query_scalar("SELECT status FROM send_ledger WHERE notification_id = 'n1'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(status, "sent");
    assert_eq!(
        redis.command(&["XLEN", DELIVERIES]).trim(),
        ":1",
        "its outcome is published"
    );
}

/// A renewal that fails while a send waits on the server, before its
/// `DATA`: the send stops there, and the server never gets the message.
#[tokio::test]
async fn a_send_whose_lease_renewal_failed_never_reaches_data() {
    let redis = RedisServer::start();
    // Slow to answer `MAIL FROM`: several renewals come and go first.
    let smtp = SlowSmtp::answering(Answer::Accept {
        mail_delay: Duration::from_millis(1_500),
        reply_delay: Duration::ZERO,
    });
    // Renewed every 200 ms; every renewal fails, as with a database away.
    let (sender, _db, _dir) = sender_on(
        &redis,
        smtp.port(),
        600,
        "CREATE TRIGGER refuse_renewal BEFORE UPDATE OF lease_until ON send_ledger
         WHEN NEW.lease_until > OLD.lease_until
         BEGIN SELECT RAISE(ABORT, 'the ledger is away'); END",
    )
    .await;
    let delivery = request_n1();
    let answer = sender.handle_requests(vec![delivery]).await;
    assert!(matches!(answer[..], [Err(HandleError::Retry(_))]), "{answer:?}");
    assert!(
        smtp.message_ids().is_empty(),
        "sent without a lease: {:?}",
        smtp.message_ids()
    );
}

/// A send in flight when its sender died may have gone out: once its
/// lease lapses, it is finished, though its campaign was cancelled
/// meanwhile (a possible duplicate, never an email counted `cancelled`
/// that went out). One whose lease was given back (nothing handed over)
/// is settled `cancelled`, and not sent.
#[tokio::test]
async fn a_send_in_flight_when_its_sender_died_is_finished_though_its_campaign_was_cancelled() {
    let redis = RedisServer::start();
    let smtp = SlowSmtp::start(Duration::ZERO);
    let (sender, db, _dir) = sender_on(&redis, smtp.port(), 60_000, "SELECT 1").await;
    // An instance that died mid-send (n1, its 1 ms lease left to lapse),
    // and one that gave its lease back after a failure (n2).
    let dead = Ledger::new(db.clone(), "dead".into(), 1);
    dead.claim_all(&["n1".into(), "n2".into()]).await.unwrap();
    dead.release(&("n2".into(), 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let link = RedisTarget::parse(&redis.url()).unwrap().shared().await.unwrap();
    ControlBoard::new(link)
        .set("c", Some(Control::Cancelled))
        .await
        .unwrap();

    let requests = ["n1", "n2"].map(|id| Delivery {
        entry_id: "1-0".into(),
        envelope: Envelope::new(&email(id)).unwrap(),
        deliveries: 2,
    });
    let answers = sender.handle_requests(requests.to_vec()).await;
    assert!(matches!(answers[..], [Ok(()), Ok(())]), "{answers:?}");
    assert_eq!(smtp.message_ids(), vec!["<n1@comms>"], "only the one in flight");
    let published = redis.entries(contracts::DELIVERIES);
    for (id, status) in [("n1", "sent"), ("n2", "cancelled")] {
        let outcome = format!(r#""notification_id":"{id}","campaign_id":"c","status":"{status}""#);
        assert!(published.contains(&outcome), "{outcome} in {published}");
    }
}
