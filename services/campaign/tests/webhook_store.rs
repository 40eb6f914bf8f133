//! The webhooks' store on real SQLite and PostgreSQL: events kept once per
//! endpoint, due in order, delivered, put off, dead once their time ran
//! out, replayed, blanked by an erasure, and gone with their endpoint.

use campaign_service::store::SCHEMA;
use campaign_service::webhooks::ends::ENDS_MARGIN_MS;
use campaign_service::webhooks::event::{Event, EventType};
use campaign_service::webhooks::store::{Failure, Target, WebhookStore, ERASE};
use serde_json::json;
use sqlx::AnyPool;
use testkit::Postgres;

/// An `email.sent` of notification `n`, at `at`.
fn sent(n: u32, at: i64) -> Event {
    let delivery = contracts::EmailDelivery {
        notification_id: format!("n-{n}"),
        campaign_id: "c-1".into(),
        status: contracts::DeliveryStatus::Sent,
        detail: None,
        recipient: Some(format!("person{n}@example.com")),
        tries: None,
    };
    Event::of_delivery(&delivery, at).unwrap()
}

async fn keeps_delivers_puts_off_and_replays(db: AnyPool) {
    let store = WebhookStore::new(db.clone());
    let target = Target {
        id: "hook-1".into(),
        url: "http://127.0.0.1:9/hooks".into(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        batch_size: 10,
        failures: 0,
    };
    let endpoint = store.add(&target, &[EventType::EmailSent], 100).await.unwrap();
    assert_eq!((endpoint.pending, endpoint.dead, endpoint.delivered), (0, 0, 0));
    let subscribers = store.subscribers().await.unwrap();
    assert_eq!(subscribers[0].events, [EventType::EmailSent]);

    for (n, kept_at) in [(1, 1_997), (2, 1_998), (3, 1_999), (1, 2_000)] {
        let events = [("hook-1".to_string(), sent(n, 1_000 + i64::from(n)))];
        store.enqueue(&events, kept_at).await.unwrap();
    }
    let stray = [("no-such-hook".to_string(), sent(9, 1_009))];
    store.enqueue(&stray, 2_000).await.unwrap();
    let due = store.due("hook-1", 2_000, 10).await.unwrap();
    let order: Vec<_> = due
        .iter()
        .map(|event| event.notification_id.clone().unwrap())
        .collect();
    assert_eq!(order, ["n-1", "n-2", "n-3"], "each once, in the order kept");
    assert_eq!(due[0], sent(1, 1_001), "read back as kept");
    assert_eq!(store.due_targets(2_000).await.unwrap().len(), 1);
    assert!(store.due("no-such-hook", 2_000, 10).await.unwrap().is_empty());

    // A failed POST puts the events and the endpoint off.
    let ids: Vec<String> = due.iter().map(|event| event.id.clone()).collect();
    let failure = |now, retry_at, dead_before| Failure {
        error: "HTTP 500: not now",
        now,
        retry_at,
        dead_before,
    };
    store
        .failed("hook-1", &ids, &failure(2_000, 3_000, 0))
        .await
        .unwrap();
    assert!(store.due("hook-1", 2_500, 10).await.unwrap().is_empty());
    assert!(store.due_targets(2_500).await.unwrap().is_empty());
    let endpoint = store.get("hook-1").await.unwrap().unwrap();
    assert_eq!(endpoint.failures, 1);
    assert_eq!(endpoint.last_error.as_deref(), Some("HTTP 500: not now"));

    // Two delivered; the third tried until its time runs out.
    store.delivered("hook-1", &ids[..2], 3_000).await.unwrap();
    let endpoint = store.get("hook-1").await.unwrap().unwrap();
    assert_eq!(
        (endpoint.delivered, endpoint.pending, endpoint.failures),
        (2, 1, 0)
    );
    store
        .failed("hook-1", &ids[2..], &failure(3_000, 4_000, 2_500))
        .await
        .unwrap();
    let endpoint = store.get("hook-1").await.unwrap().unwrap();
    assert_eq!((endpoint.pending, endpoint.dead), (0, 1));
    assert!(
        store.due("hook-1", 10_000, 10).await.unwrap().is_empty(),
        "dead is not due"
    );
    let dead = store.dead("hook-1", "", 10).await.unwrap();
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(dead[0].event["data"]["recipient"], "person3@example.com");

    // An erasure blanks the address; a replay brings it back, due now.
    servicekit::erasure::update_each(&db, ERASE, &["n-3".to_string()])
        .await
        .unwrap();
    let dead = store.dead("hook-1", "", 10).await.unwrap();
    assert_eq!(
        dead[0].event["data"],
        json!({ "campaign_id": "c-1", "notification_id": "n-3" })
    );
    assert_eq!(store.replay("hook-1", 5_000).await.unwrap(), 1);
    assert_eq!(store.due("hook-1", 5_000, 10).await.unwrap().len(), 1);

    // Campaign ends: the earliest first; once one is an event, only those
    // that ended since, less the margin, are looked at.
    for (id, status, ended) in [
        ("c-late", "cancelled", 5_000_000),
        ("c-early", "completed", 10_000),
    ] {
        sqlx::query(
            "INSERT INTO campaigns (id, name, subject, body, status, total, sent, failed, created_at, completed_at)
             VALUES ($1, 'n', 's', 'b', $2, 0, 0, 0, 0, $3)",
        )
        .bind(id)
        .bind(status)
        .bind(ended)
        .execute(&db)
        .await
        .unwrap();
    }
    let ended = store.campaigns_ended(0, 10).await.unwrap();
    assert_eq!(
        ended,
        [
            ("c-early".to_string(), false, 10_000),
            ("c-late".to_string(), true, 5_000_000)
        ]
    );
    store
        .enqueue_campaign_end(("c-late", 5_000_000), &[], 6_000)
        .await
        .unwrap();
    assert!(
        store.campaigns_ended(0, 10).await.unwrap().is_empty(),
        "c-early ended more than {ENDS_MARGIN_MS} ms before the last end made an event"
    );

    assert!(store.delete("hook-1").await.unwrap());
    assert!(!store.delete("hook-1").await.unwrap());
    assert!(
        store.due("hook-1", 5_000, 10).await.unwrap().is_empty(),
        "its events went with it"
    );
}

#[tokio::test]
async fn the_store_keeps_delivers_puts_off_and_replays_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/campaigns.db", dir.path().display());
    keeps_delivers_puts_off_and_replays(servicekit::db::connect(&url, SCHEMA).await.unwrap()).await;
}

#[tokio::test]
async fn the_store_keeps_delivers_puts_off_and_replays_on_postgres() {
    let postgres = Postgres::start();
    let url = postgres.database("campaigns");
    keeps_delivers_puts_off_and_replays(servicekit::db::connect(&url, SCHEMA).await.unwrap()).await;
}
