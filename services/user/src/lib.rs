//! user-service: owns the users. It seeds them at start, serves them over
//! HTTP, and expands each new campaign's audience into one notification
//! request per user on `comms:notifications`.

pub mod config;
pub mod expand;
pub mod routes;
pub mod seed;
pub mod store;

use secrecy::ExposeSecret;
use std::time::Instant;

use contracts::CAMPAIGNS;
use servicekit::access::Access;
use servicekit::config::AppEnv;
use servicekit::http::{health_routes, Dependencies};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::expand::Expander;
use crate::store::UserStore;

/// The consumer group of user-service, the one that expands campaigns.
pub const GROUP: &str = contracts::AUDIENCE_GROUP;

/// The longest an expansion may run before the worker retries it.
const EXPANSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);

/// Runs user-service until `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Config::load().await?;
    let access = Access::new(AppEnv::parse(&config.app_env)?, &config.api_token)?;
    let (target, redis) = servicekit::connect_redis(config.service.redis_url.expose_secret()).await?;
    let db = servicekit::db::connect(config.service.database_url.expose_secret(), store::SCHEMA).await?;
    let store = UserStore::new(db.clone());
    let listener = servicekit::http::bind(&config.service.host, config.service.port, "USER_PORT").await?;

    let started = Instant::now();
    let seeded = store.seed(config.seed_users).await?;
    tracing::info!(seeded, seconds = started.elapsed().as_secs_f64(), "users seeded");

    let consumer = servicekit::consumer_name(GROUP, config.service.port);
    let expander = Expander::new(
        store.clone(),
        redis.clone(),
        config.page_size,
        config.expansion_backlog,
        consumer.clone(),
    );
    let mut worker = config.service.streams.worker_config(CAMPAIGNS, GROUP, &consumer);
    // An expansion runs at the pace of the services behind it: a large
    // campaign's takes as long as its sending, far past the usual bound of
    // one handler run. Its lease, not a timeout, guards against a stuck one.
    worker.handler_timeout = EXPANSION_TIMEOUT;
    let worker = eventstore::Worker::new(target.clone(), worker);
    let worker = tokio::spawn(worker.run(
        move |delivery| {
            let expander = expander.clone();
            async move { expander.handle(delivery).await }
        },
        shutdown.clone(),
    ));
    let trimmer = servicekit::spawn_trimmer(redis.clone(), &[CAMPAIGNS], shutdown.clone());

    let app = routes::router(store, access)
        .merge(health_routes(Dependencies { redis, db }))
        .merge(servicekit::openapi::routes(
            <routes::ApiDoc as utoipa::OpenApi>::openapi(),
        ));
    tracing::info!(port = config.service.port, "user-service ready");
    servicekit::http::serve(listener, app, shutdown.clone()).await?;
    let _ = tokio::join!(worker, trimmer);
    Ok(())
}
