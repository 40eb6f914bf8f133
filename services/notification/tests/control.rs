//! notification-service reads a campaign's control only for a request it
//! records for the first time, on real Redis and SQLite. A request seen
//! again (its handler died, or lost Redis, before the ack) may have had its
//! email requested and sent already: settled `cancelled` here, an email
//! that went out would be counted cancelled. It is requested again, and
//! email-service settles it by its send ledger.

use contracts::control::{Control, ControlBoard};
use contracts::unsubscribe::TokenKey;
use contracts::{NotificationRequested, Streams, DELIVERIES, EMAILS};
use eventstore::{Delivery, Envelope, Publisher, RedisTarget};
use notification_service::handlers::Notifier;
use notification_service::links::UnsubscribeLinks;
use notification_service::store::{NotificationStore, StoredTemplates, SCHEMA};
use testkit::RedisServer;

/// The request of notification `id` of campaign `c`, delivered once more
/// than `earlier` times.
fn request(id: &str, earlier: u64) -> Delivery {
    let request = NotificationRequested {
        notification_id: id.into(),
        campaign_id: "c".into(),
        user_id: 7,
        email: "ada@example.com".into(),
        name: "Ada".into(),
        suppressed: false,
    };
    Delivery {
        entry_id: "1-0".into(),
        envelope: Envelope::new(&request).unwrap(),
        deliveries: earlier + 1,
    }
}

/// How many entries of `stream` name notification `id`.
fn entries_naming(redis: &RedisServer, stream: &str, id: &str) -> usize {
    redis
        .entries(stream)
        .matches(&format!(r#""notification_id":"{id}""#))
        .count()
}

#[tokio::test]
async fn a_request_seen_again_after_its_campaign_was_cancelled_is_requested_again_not_settled() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/notifications.db", dir.path().display());
    let store = NotificationStore::new(servicekit::db::connect(&url, SCHEMA).await.unwrap());
    let templates = StoredTemplates {
        subject: "Hello".into(),
        body: "Hi {{ name }}".into(),
        html: None,
        rate_per_s: None,
    };
    store.save_templates("c", &templates).await.unwrap();
    let link = RedisTarget::parse(&redis.url()).unwrap().shared().await.unwrap();
    let board = ControlBoard::new(link.clone());
    let key = TokenKey::new("an-unsubscribe-key-of-32-characters-or-more").unwrap();
    let notifier = Notifier::new(
        store,
        Publisher::new(link),
        Streams::new(1),
        UnsubscribeLinks::new(key, "http://localhost:8080", None).unwrap(),
        board.clone(),
    );

    // n1's email is requested while the campaign sends; its ack is lost.
    let answers = notifier.on_requests(vec![request("n1", 0)]).await;
    assert!(matches!(answers[..], [Ok(())]), "{answers:?}");
    assert_eq!(entries_naming(&redis, EMAILS, "n1"), 1);

    board.set("c", Some(Control::Cancelled)).await.unwrap();
    let answers = notifier
        .on_requests(vec![request("n1", 1), request("n2", 0)])
        .await;
    assert!(matches!(answers[..], [Ok(()), Ok(())]), "{answers:?}");

    // n1, seen again, is left to email-service's ledger: its email is
    // requested again and no outcome is made up for it here.
    assert_eq!(entries_naming(&redis, EMAILS, "n1"), 2);
    assert_eq!(entries_naming(&redis, DELIVERIES, "n1"), 0);
    // n2, new, is settled `cancelled` at once, with no email requested.
    assert_eq!(entries_naming(&redis, EMAILS, "n2"), 0);
    let outcomes = redis.entries(DELIVERIES);
    assert!(
        outcomes.contains(r#""notification_id":"n2","campaign_id":"c","status":"cancelled""#),
        "n2 cancelled in {outcomes}"
    );
}
