//! How the tests of campaign-service run it: in-process, on a Redis and an
//! SQLite database of its own.

use campaign_service::config::Config;
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
