//! An outcome campaign-service's group gives up on still counts, once, as
//! dead-lettered, and its replay moves the count to the real outcome:
//! against a real Redis and SQLite, whose writes of `sent` outcomes fail
//! until the test lets them through.

mod common;

use std::time::{Duration, Instant};

use common::spawn_app;
use contracts::{AudienceExpanded, DeliveryStatus, EmailDelivery, CAMPAIGNS, DELIVERIES};
use eventstore::{Envelope, Publisher, RedisTarget};
use serde_json::{json, Value};
use servicekit::streams::StreamSettings;
use testkit::http::call;

/// Waits until `url` answers a campaign whose progress is `expected`.
async fn wait_progress(url: &str, expected: Value) -> Value {
    let start = Instant::now();
    loop {
        let (_, campaign) = call("GET", url, None, None).await;
        if campaign["progress"] == expected {
            return campaign;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "progress {} never became {expected}",
            campaign["progress"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn outcome(campaign_id: &str, n: u32, status: DeliveryStatus) -> Envelope {
    let outcome = EmailDelivery {
        notification_id: format!("{campaign_id}:{n}"),
        campaign_id: campaign_id.into(),
        status,
        detail: None,
        recipient: Some(format!("user{n}@example.com")),
        tries: None,
    };
    Envelope::with_id(&outcome, format!("delivery:{campaign_id}:{n}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_given_up_counts_once_as_dead_lettered_until_replayed() {
    let app = spawn_app(|config| {
        config.service.streams = StreamSettings {
            claim_idle_ms: 100,
            retry_budget_secs: 1,
            ..StreamSettings::default()
        };
    })
    .await
    .unwrap();
    let base = app.base();

    let request = json!({ "name": "n", "subject": "Hi {{ name }}", "body": "Dear {{ name }}" }).to_string();
    let (status, campaign) = call("POST", format!("{base}/api/v1/campaigns"), None, Some(&request)).await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_string();
    let campaign_url = format!("{base}/api/v1/campaigns/{id}");

    // The database refuses `sent` outcomes, as if away whenever one comes.
    let db = servicekit::db::connect(&app.sqlite_url("campaigns.db"), "")
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER away BEFORE INSERT ON outcomes WHEN NEW.status = 'sent'
         BEGIN SELECT RAISE(ABORT, 'database away'); END",
    )
    .execute(&db)
    .await
    .unwrap();

    let publisher = Publisher::new(
        RedisTarget::parse(&app.redis.url())
            .unwrap()
            .shared()
            .await
            .unwrap(),
    );
    let total = AudienceExpanded {
        campaign_id: id.clone(),
        total: 2,
        not_expanded: 0,
    };
    publisher
        .publish(
            CAMPAIGNS,
            &Envelope::with_id(&total, format!("expanded:{id}")).unwrap(),
        )
        .await
        .unwrap();
    for (n, status) in [(1, DeliveryStatus::Sent), (2, DeliveryStatus::Failed)] {
        publisher
            .publish(DELIVERIES, &outcome(&id, n, status))
            .await
            .unwrap();
    }

    // Past its retry budget the `sent` outcome is given up: it counts as
    // dead-lettered and the campaign completes instead of staying `sending`.
    let campaign = wait_progress(
        &campaign_url,
        json!({ "total": 2, "sent": 0, "failed": 1, "dead_lettered": 1, "suppressed": 0, "cancelled": 0, "pending": 0 }),
    )
    .await;
    assert_eq!(campaign["status"], "completed");
    let (_, failures) = call("GET", format!("{campaign_url}/failures"), None, None).await;
    let given_up = failures["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|failure| failure["status"] == "dead_lettered")
        .unwrap_or_else(|| panic!("{failures}"));
    assert_eq!(given_up["notification_id"], format!("{id}:1"));
    assert!(
        given_up["detail"]
            .as_str()
            .unwrap()
            .starts_with("dead-lettered: "),
        "{given_up}"
    );

    // The database back, the operator replays the dead letter: the count
    // moves to the real outcome, once however often the outcome comes.
    sqlx::query("DROP TRIGGER away").execute(&db).await.unwrap();
    let (status, replayed) = call(
        "POST",
        format!("{base}/api/v1/dead-letters/replay-all?stream={DELIVERIES}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(
        (&replayed["replayed"], &replayed["skipped"], &replayed["done"]),
        (&json!(1), &json!(0), &json!(true)),
        "{replayed}"
    );
    let done = json!({ "total": 2, "sent": 1, "failed": 1, "dead_lettered": 0, "suppressed": 0, "cancelled": 0, "pending": 0 });
    wait_progress(&campaign_url, done.clone()).await;
    let again = publisher
        .publish(DELIVERIES, &outcome(&id, 1, DeliveryStatus::Sent))
        .await
        .unwrap();
    let mut conn = RedisTarget::parse(&app.redis.url())
        .unwrap()
        .shared()
        .await
        .unwrap();
    let start = Instant::now();
    while eventstore::pending::awaits(&mut conn, DELIVERIES, campaign_service::GROUP, &again)
        .await
        .unwrap()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the outcome was never handled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, campaign) = call("GET", campaign_url.clone(), None, None).await;
    assert_eq!(campaign["progress"], done);
}
