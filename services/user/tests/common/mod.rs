//! How the tests of user-service run it: in-process, on a Redis and a
//! database of its own.

#![allow(dead_code)]

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
