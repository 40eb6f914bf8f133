//! `POST /api/v1/campaigns` with an `Idempotency-Key`, against a real Redis
//! and SQLite or PostgreSQL: a retried creation gets its campaign back, at
//! once or later, and never makes a second one (nor a second announcement,
//! which would email everyone twice).

mod common;

use serde_json::Value;
use testkit::ServiceHome;

const SPRING: &str = r#"{"name": "Spring", "subject": "Hi {{ name }}", "body": "Dear {{ name }}"}"#;

/// POSTs `body` as a campaign with `Idempotency-Key: key` when given;
/// returns the status, the `traceparent` and the JSON answer.
async fn create(app: &ServiceHome, key: Option<&str>, body: &str) -> (u16, String, Value) {
    common::post_with_key(app, "/api/v1/campaigns", key, body).await
}

/// The campaigns the service lists.
async fn campaigns(app: &ServiceHome) -> Vec<Value> {
    let (status, list) = testkit::http::call("GET", app.url("/api/v1/campaigns"), None, None).await;
    assert_eq!(status, 200);
    list["campaigns"].as_array().unwrap().clone()
}

/// campaign-service on `database` (SQLite by default).
async fn spawn(database: Option<String>) -> ServiceHome {
    common::spawn_app(|config| {
        if let Some(database) = database {
            config.service.database_url = database.into();
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_creation_gets_its_campaign_back_and_another_body_under_its_key_is_a_409() {
    let app = spawn(None).await;
    let (status, traceparent, first) = create(&app, Some("order-1234"), SPRING).await;
    assert_eq!(status, 201, "{first}");
    let id = first["id"].as_str().unwrap().to_string();

    let (status, again, retried) = create(&app, Some("order-1234"), SPRING).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["id"], id.as_str());
    // In the first one's trace.
    assert_eq!(
        contracts::trace_id_of(&again),
        contracts::trace_id_of(&traceparent)
    );
    assert_eq!(campaigns(&app).await.len(), 1);
    // Announced once: user-service expands it once.
    assert_eq!(app.redis.command(&["XLEN", "comms:campaigns"]), ":1");

    let other = r#"{"name": "Spring", "subject": "Hi {{ name }}", "body": "Dear {{ name }}, again"}"#;
    let (status, _, refused) = create(&app, Some("order-1234"), other).await;
    assert_eq!(status, 409, "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(error.contains(&id), "{error}");

    // Another key, or none, is another campaign.
    let (status, _, second) = create(&app, Some("order-1235"), SPRING).await;
    assert_eq!(status, 201);
    assert_ne!(second["id"], id.as_str());
    assert_eq!(create(&app, None, SPRING).await.0, 201);
    assert_eq!(create(&app, None, SPRING).await.0, 201);
    assert_eq!(campaigns(&app).await.len(), 4);
    assert_eq!(app.redis.command(&["XLEN", "comms:campaigns"]), ":4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_empty_too_long_or_not_visible_ascii_is_a_400_that_creates_nothing() {
    let app = spawn(None).await;
    let too_long = "k".repeat(256);
    for key in ["", "with space", "tab\there", too_long.as_str()] {
        let (status, _, refused) = create(&app, Some(key), SPRING).await;
        assert_eq!(status, 400, "{key:?}: {refused}");
        let error = refused["error"].as_str().unwrap_or_default();
        assert!(error.contains("Idempotency-Key"), "{error}");
    }
    assert_eq!(create(&app, Some(&"k".repeat(255)), SPRING).await.0, 201);
    assert_eq!(campaigns(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_at_once_with_one_key_make_one_campaign_on_sqlite() {
    at_once_with_one_key(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_at_once_with_one_key_make_one_campaign_on_postgresql() {
    let postgres = testkit::Postgres::start();
    at_once_with_one_key(Some(postgres.database("campaign"))).await;
}

/// Sends 8 creations with one key at once, on `database`: one is created,
/// the others get it back.
async fn at_once_with_one_key(database: Option<String>) {
    let app = spawn(database).await;
    let answers = futures::future::join_all((0..8).map(|_| create(&app, Some("at-once"), SPRING))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|(status, _, _)| *status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 201], "{answers:?}");
    let ids: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|(_, _, campaign)| campaign["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(campaigns(&app).await.len(), 1);
    assert_eq!(app.redis.command(&["XLEN", "comms:campaigns"]), ":1");
}

/// The HTML body is part of what a key compares: the same request again
/// is the same campaign, another HTML (or none) under its key a 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_compares_the_html_body_too() {
    let app = spawn(None).await;
    let html = r#"{"name": "Rich", "subject": "Hi", "html": "<p>Dear {{ name }}</p>"}"#;
    let (status, _, first) = create(&app, Some("rich-1"), html).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["html"], "<p>Dear {{ name }}</p>");
    assert_eq!(first["body"], "");
    let (status, _, again) = create(&app, Some("rich-1"), html).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]), "{again}");
    let other = r#"{"name": "Rich", "subject": "Hi", "html": "<p>Hello {{ name }}</p>"}"#;
    assert_eq!(create(&app, Some("rich-1"), other).await.0, 409);
    let text = r#"{"name": "Rich", "subject": "Hi", "body": ""}"#;
    assert_eq!(
        create(&app, Some("rich-1"), text).await.0,
        400,
        "an empty body is refused"
    );
    let (status, _, plain) = create(&app, Some("plain-1"), SPRING).await;
    assert_eq!(status, 201);
    assert_eq!(plain["html"], Value::Null);
}
