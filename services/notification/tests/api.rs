//! notification-service's HTTP API against a real Redis and SQLite: a
//! notification holds its recipient's address, so in `prod` reading one
//! needs the bearer token; the counts per status stay open.

use contracts::{notification_id, NotificationRequested};
use notification_service::config::Config;
use notification_service::store::NotificationStore;
use serde_json::Value;
use servicekit::config::ServiceSettings;
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

/// A running notification-service with its own Redis and database, and
/// one recorded notification.
struct TestApp {
    base: String,
    notification: String,
    shutdown: CancellationToken,
    _redis: RedisServer,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn spawn_app(app_env: &str, api_token: &str) -> anyhow::Result<TestApp> {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir()?;
    let config = Config {
        service: ServiceSettings {
            redis_url: redis.url().into(),
            database_url: format!("sqlite://{}/notifications.db", dir.path().display()).into(),
            ..ServiceSettings::new(0)
        },
        app_env: app_env.parse()?,
        api_token: api_token.into(),
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
        }])
        .await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    Ok(TestApp {
        base,
        notification,
        shutdown,
        _redis: redis,
        _dir: dir,
    })
}

/// GETs `url`, with the bearer `token` when given; returns status and JSON
/// body.
async fn get(url: String, token: Option<&str>) -> (u16, Value) {
    let token = token.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut request = ureq::get(&url);
        if let Some(token) = token {
            request = request.set("authorization", &format!("Bearer {token}"));
        }
        let response = match request.call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("GET {url}: {error}"),
        };
        (response.status(), response.into_json().unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_prod_reading_a_notification_needs_the_bearer_token() {
    let error = spawn_app("prod", "")
        .await
        .err()
        .expect("prod without a token is refused");
    assert!(error.to_string().contains("API_TOKEN must be set"), "{error}");

    let app = spawn_app("prod", "s3cret-token").await.unwrap();
    let one = || format!("{}/api/v1/notifications/{}", app.base, app.notification);

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

    let (status, counts) = get(format!("{}/api/v1/campaigns/c1/notifications", app.base), None).await;
    assert_eq!(status, 200, "the counts hold no personal data and stay open");
    assert_eq!(counts["pending"], 1, "{counts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dev_without_a_token_a_notification_is_open() {
    let app = spawn_app("dev", "").await.unwrap();
    let (status, notification) = get(
        format!("{}/api/v1/notifications/{}", app.base, app.notification),
        None,
    )
    .await;
    assert_eq!(status, 200, "{notification}");
    assert_eq!(notification["status"], "pending");
}
