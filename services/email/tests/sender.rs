//! Retrying is the worker's: an outcome the ledger could not take after
//! the server's `250 OK` is kept by the sender, and the worker's retry of
//! the entry records it instead of sending the email again.

mod common;

use std::time::Duration;

use contracts::{Streams, DELIVERIES};
use email_service::config::Config;
use email_service::ledger::{Ledger, SCHEMA};
use email_service::mailer::Mailer;
use email_service::sender::Sender;
use eventstore::{Delivery, Envelope, HandleError, Publisher, RedisTarget};
use testkit::{RedisServer, SlowSmtp};

use common::email;

#[tokio::test]
async fn a_send_the_ledger_could_not_record_is_recorded_on_the_retry_not_sent_again() {
    let redis = RedisServer::start();
    let smtp = SlowSmtp::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/email.db", dir.path().display());
    let db = servicekit::db::connect(&url, SCHEMA).await.unwrap();
    let mailer = Mailer::new(&Config {
        smtp_port: smtp.port(),
        ..Config::default()
    })
    .unwrap();
    let publisher = Publisher::new(RedisTarget::parse(&redis.url()).unwrap().shared().await.unwrap());
    let ledger = Ledger::new(db.clone(), "sender-test".into(), 60_000);
    let sender = Sender::new(mailer, ledger, publisher, Streams::new(1).deliveries);

    // The ledger refuses to mark a send done, as a database briefly away
    // would, after the server has taken the message.
    sqlx::query(
        "CREATE TRIGGER refuse_sent BEFORE UPDATE ON send_ledger WHEN NEW.status = 'sent'
         BEGIN SELECT RAISE(ABORT, 'the ledger is away'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    let delivery = Delivery {
        entry_id: "1-0".into(),
        envelope: Envelope::new(&email("n1")).unwrap(),
        deliveries: 1,
    };
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
