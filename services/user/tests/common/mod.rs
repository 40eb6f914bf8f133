//! How the tests of user-service run it: in-process, on a Redis and a
//! database of its own.

#![allow(dead_code)]

use serde_json::Value;
use servicekit::config::ServiceSettings;
use testkit::ServiceHome;
use user_service::config::Config;

/// user-service with `seed` users, on `database` (an SQLite file of its
/// own by default), serving until the returned home drops.
pub async fn spawn(seed: i64, database: Option<String>) -> ServiceHome {
    spawn_with(seed, database, |_| {}).await
}

/// [`spawn`], with the configuration changed by `adjust` first.
pub async fn spawn_with(
    seed: i64,
    database: Option<String>,
    adjust: impl FnOnce(&mut Config),
) -> ServiceHome {
    let home = ServiceHome::new();
    let database = database.unwrap_or_else(|| home.sqlite_url("users.db"));
    let mut config = Config {
        service: ServiceSettings::on(&home.redis.url(), &database),
        seed_users: seed,
        ..Config::default()
    };
    adjust(&mut config);
    let service = user_service::build(config).await.unwrap();
    home.run(service.port(), |shutdown| service.run(shutdown))
}

/// POSTs `body` as `content_type` to the import of `home`; returns status
/// and answer (`null` when it is not JSON).
pub async fn import(home: &ServiceHome, content_type: &str, body: String) -> (u16, Value) {
    send(
        home,
        "POST",
        "/api/v1/users/import",
        &[("content-type", content_type)],
        body,
    )
    .await
}

/// Sends `body` to `path` of `home` with `method` and `headers`; returns
/// status and answer (`null` when it is not JSON).
pub async fn send(
    home: &ServiceHome,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, Value) {
    let (url, method) = (home.url(path), method.to_string());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let request = headers
            .iter()
            .fold(ureq::request(&method, &url), |request, (name, value)| {
                request.set(name, value)
            });
        let response = match request.send_string(&body) {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("{method} {url}: {error}"),
        };
        (
            response.status(),
            serde_json::from_str(&response.into_string().unwrap()).unwrap_or(Value::Null),
        )
    })
    .await
    .unwrap()
}
