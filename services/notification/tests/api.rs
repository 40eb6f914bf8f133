//! notification-service's HTTP API against a real Redis and SQLite: a
//! notification holds its recipient's address, so in `prod` reading one
//! needs the bearer token; the counts per status stay open.

use contracts::{notification_id, NotificationRequested};
use notification_service::config::Config;
use notification_service::store::NotificationStore;
use serde_json::Value;
use servicekit::config::ServiceSettings;
use testkit::ServiceHome;

/// A running notification-service with its own Redis and database, and
/// one recorded notification.
struct TestApp {
    home: ServiceHome,
    notification: String,
}

async fn spawn_app(app_env: &str, api_token: &str) -> anyhow::Result<TestApp> {
    let home = ServiceHome::new();
    let config = Config {
        service: ServiceSettings::on(&home.redis.url(), &home.sqlite_url("notifications.db")),
        app_env: app_env.parse()?,
        api_token: api_token.into(),
        unsubscribe_key: "an-unsubscribe-key-of-32-characters-or-more".into(),
        ..Config::default()
    };
    let app = notification_service::build(config).await?;
    let notification = notification_id("c1", 7);
    NotificationStore::new(app.db().clone())
        .record(&[NotificationRequested {
            notification_id: notification.clone(),
            campaign_id: "c1".into(),
            user_id: 7,
            email: "ada@example.com".into(),
            name: "Ada".into(),
            suppressed: false,
        }])
        .await?;
    Ok(TestApp {
        home: home.run(app.port(), |shutdown| app.run(shutdown)),
        notification,
    })
}

/// GETs `url`, with the bearer `token` when given; returns status and JSON
/// body.
async fn get(url: String, token: Option<&str>) -> (u16, Value) {
    testkit::http::call("GET", url, token, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_prod_reading_a_notification_or_an_export_needs_the_bearer_token() {
    let error = spawn_app("prod", "")
        .await
        .err()
        .expect("prod without a token is refused");
    assert!(error.to_string().contains("API_TOKEN must be set"), "{error}");

    let app = spawn_app("prod", "s3cret-token").await.unwrap();
    let one = || {
        app.home
            .url(&format!("/api/v1/notifications/{}", app.notification))
    };

    let (status, error) = get(one(), None).await;
    assert_eq!(status, 401, "{error}");
    assert!(error["error"].as_str().unwrap().contains("Bearer"), "{error}");
    assert!(
        !error.to_string().contains("ada@example.com") && !error.to_string().contains("s3cret-token"),
        "a refusal shows neither the address nor the token: {error}"
    );
    let (status, _) = get(one(), Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, notification) = get(one(), Some("s3cret-token")).await;
    assert_eq!(status, 200, "{notification}");
    assert_eq!(notification["email"], "ada@example.com");

    // The export lists addresses: behind the token too.
    let export = app.home.url("/api/v1/campaigns/c1/export");
    let (status, error) = get(export.clone(), None).await;
    assert_eq!(status, 401, "{error}");
    let (status, csv) = testkit::http::send("GET", &export, Some("s3cret-token"), None);
    assert_eq!(status, 200);
    assert!(csv.contains("ada@example.com,pending"), "{csv}");

    let (status, counts) = get(app.home.url("/api/v1/campaigns/c1/notifications"), None).await;
    assert_eq!(status, 200, "the counts hold no personal data and stay open");
    assert_eq!(counts["pending"], 1, "{counts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dev_without_a_token_a_notification_is_open() {
    let app = spawn_app("dev", "").await.unwrap();
    let (status, notification) = get(
        app.home
            .url(&format!("/api/v1/notifications/{}", app.notification)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{notification}");
    assert_eq!(notification["status"], "pending");
}
