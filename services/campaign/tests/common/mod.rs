//! How the tests of campaign-service run it: in-process, on a Redis and an
//! SQLite database of its own.

// Each test file uses a part of it.
#![allow(dead_code)]

use campaign_service::config::Config;
use eventstore::{Publisher, RedisTarget};
use serde_json::Value;
use servicekit::config::ServiceSettings;
use testkit::ServiceHome;

/// Builds campaign-service (dev, no token, its configuration changed by
/// `adjust` first) and runs it until the returned home drops; the error of
/// a configuration it refuses.
pub async fn spawn_app(adjust: impl FnOnce(&mut Config)) -> anyhow::Result<ServiceHome> {
    let home = ServiceHome::new();
    let mut config = Config {
        service: ServiceSettings::on(&home.redis.url(), &home.sqlite_url("campaigns.db")),
        // Prod needs one; dev takes it as well.
        unsubscribe_key: "an-unsubscribe-key-of-32-characters".to_string().into(),
        ..Config::default()
    };
    adjust(&mut config);
    let app = campaign_service::build(config).await?;
    Ok(home.run(app.port(), |shutdown| app.run(shutdown)))
}

/// POSTs the JSON `body` to `path` of `app`, with `Idempotency-Key: key`
/// when given; returns the status, the `traceparent` answered and the JSON
/// answer.
pub async fn post_with_key(
    app: &ServiceHome,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, String, Value) {
    let (url, key, body) = (app.url(path), key.map(str::to_string), body.to_string());
    tokio::task::spawn_blocking(move || {
        let mut request = ureq::post(&url).set("content-type", "application/json");
        if let Some(key) = &key {
            request = request.set("idempotency-key", key);
        }
        let response = match request.send_string(&body) {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("POST {url}: {error}"),
        };
        let traceparent = response.header("traceparent").unwrap_or_default().to_string();
        (
            response.status(),
            traceparent,
            serde_json::from_str(&response.into_string().unwrap()).unwrap_or(Value::Null),
        )
    })
    .await
    .unwrap()
}

/// A publisher on `app`'s Redis, to play another service's part.
pub async fn publisher(app: &ServiceHome) -> Publisher {
    Publisher::new(
        RedisTarget::parse(&app.redis.url())
            .unwrap()
            .shared()
            .await
            .unwrap(),
    )
}
