//! As late as the send: an email whose address went on the suppression
//! list after its notification was rendered is not sent, and its outcome
//! is `suppressed`; the latest change of an address wins, whatever order
//! the changes arrive in; a change already on `comms:suppressions` counts
//! from the first send, before any worker of the group has read it.

mod common;

use std::time::Duration;

use contracts::consent::{address_hash, SuppressionChanged, SuppressionReason, SUPPRESSIONS};
use email_service::domains::DomainLimits;
use email_service::ledger::SCHEMA;
use email_service::sender::Sender;
use eventstore::{Delivery, Envelope, Publisher, Redis};
use servicekit::suppressed::SuppressedAddresses;
use testkit::{RedisServer, SlowSmtp};

use common::email;

fn change(suppressed: bool, at: i64) -> SuppressionChanged {
    SuppressionChanged {
        address_hash: address_hash("ADA@example.com"),
        suppressed,
        reason: SuppressionReason::Unsubscribed,
        at,
    }
}

fn request(id: &str) -> Vec<Delivery> {
    vec![Delivery {
        entry_id: "1-0".into(),
        envelope: Envelope::new(&email(id)).unwrap(),
        deliveries: 1,
    }]
}

/// The statuses of the outcomes published on `comms:deliveries`, in order
/// (from the entries' JSON payloads).
fn statuses(redis: &RedisServer) -> Vec<String> {
    redis
        .entries(contracts::DELIVERIES)
        .split("\"status\":\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default().to_string())
        .collect()
}

/// A Redis, an SMTP server, an email-service database (in the directory
/// returned) and a sender on them.
async fn start() -> (RedisServer, SlowSmtp, tempfile::TempDir, sqlx::AnyPool, Sender) {
    let redis = RedisServer::start();
    let smtp = SlowSmtp::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/email.db", dir.path().display());
    let db = servicekit::db::connect(&url, SCHEMA).await.unwrap();
    let sender = common::sender(
        &redis,
        &db,
        smtp.port(),
        ("suppressed-test", 60_000),
        DomainLimits::default(),
    )
    .await;
    (redis, smtp, dir, db, sender)
}

async fn link(redis: &RedisServer) -> Redis {
    eventstore::RedisTarget::parse(&redis.url())
        .unwrap()
        .shared()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_suppressed_address_is_not_sent_to_and_the_latest_change_wins() {
    let (redis, smtp, _dir, db, sender) = start().await;
    let list = SuppressedAddresses::new(db.clone(), link(&redis).await, SUPPRESSIONS);

    list.apply(&change(true, 1_000)).await.unwrap();
    let answers = sender.handle_requests(request("n1")).await;
    assert!(matches!(answers[..], [Ok(())]), "{answers:?}");
    assert!(smtp.message_ids().is_empty(), "nothing was sent");
    assert_eq!(statuses(&redis), ["suppressed"]);
    assert!(
        redis
            .entries(contracts::DELIVERIES)
            .contains("on the suppression list (unsubscribed) at the send"),
        "the outcome says why"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM send_ledger WHERE notification_id = 'n1'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(status, "sending", "its lease is given back, not a final send");

    // Resubscribed later; a suppression asked earlier, read after it, does
    // not undo that.
    list.apply(&change(false, 2_000)).await.unwrap();
    list.apply(&change(true, 1_500)).await.unwrap();
    let answers = sender.handle_requests(request("n2")).await;
    assert!(matches!(answers[..], [Ok(())]), "{answers:?}");
    assert_eq!(smtp.message_ids().len(), 1, "sent once resubscribed");
    assert_eq!(statuses(&redis), ["suppressed", "sent"]);
}

/// What a restart looked like: the email was requested, then its address
/// suppressed (acknowledged: on the stream) while no worker of the group
/// ran. The first send must see it, whatever the group has read.
#[tokio::test]
async fn a_suppression_on_the_stream_counts_before_the_group_reads_it() {
    let (redis, smtp, _dir, _db, sender) = start().await;
    let publisher = Publisher::new(link(&redis).await);
    let announce = |change: SuppressionChanged| {
        let publisher = publisher.clone();
        async move {
            publisher
                .publish(SUPPRESSIONS, &Envelope::new(&change).unwrap())
                .await
                .unwrap()
        }
    };

    announce(change(true, 1_000)).await;
    let answers = sender.handle_requests(request("n1")).await;
    assert!(matches!(answers[..], [Ok(())]), "{answers:?}");
    assert!(smtp.message_ids().is_empty(), "nothing was sent");
    assert_eq!(statuses(&redis), ["suppressed"]);

    // A change added after the first look is read by the next one.
    announce(change(false, 2_000)).await;
    let answers = sender.handle_requests(request("n2")).await;
    assert!(matches!(answers[..], [Ok(())]), "{answers:?}");
    assert_eq!(smtp.message_ids().len(), 1, "sent once resubscribed");
    assert_eq!(statuses(&redis), ["suppressed", "sent"]);
}
