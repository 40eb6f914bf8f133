//! campaign-service: owns the campaigns. It serves the REST API and the
//! dashboard, announces new campaigns on `comms:campaigns`, and keeps each
//! campaign's progress exact from `comms:deliveries`.

pub mod config;
pub mod domain;
pub mod handlers;
pub mod routes;
pub mod store;

use std::time::Duration;

use contracts::{CAMPAIGNS, DELIVERIES};
use eventstore::Publisher;
use servicekit::http::{health_routes, Dependencies};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::handlers::Tracker;
use crate::routes::AppState;
use crate::store::CampaignStore;

/// The consumer group of campaign-service (on both its streams).
pub const GROUP: &str = "campaign-service";

/// Runs campaign-service until `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Config::load()?;
    let (target, redis) = servicekit::connect_redis(&config.redis_url).await?;
    let db = servicekit::db::connect(&config.database_url, store::SCHEMA).await?;
    let listener = servicekit::http::bind(&config.host, config.port, "CAMPAIGN_PORT").await?;
    let tracker = Tracker::new(CampaignStore::new(db.clone()), Publisher::new(redis.clone()));
    let consumer = servicekit::consumer_name(GROUP, config.port);

    let campaigns = config.streams.worker(&target, CAMPAIGNS, GROUP, &consumer);
    let on_campaign = tracker.clone();
    let campaigns = tokio::spawn(campaigns.run(
        move |delivery| {
            let tracker = on_campaign.clone();
            async move { tracker.on_campaign_event(delivery).await }
        },
        shutdown.clone(),
    ));
    let deliveries = config.streams.worker(&target, DELIVERIES, GROUP, &consumer);
    let on_delivery = tracker.clone();
    let deliveries = tokio::spawn(deliveries.run(
        move |delivery| {
            let tracker = on_delivery.clone();
            async move { tracker.on_delivery(delivery).await }
        },
        shutdown.clone(),
    ));
    let reannouncer = tokio::spawn(
        tracker
            .clone()
            .reannounce_stalled(Duration::from_secs(30), shutdown.clone()),
    );

    let app = routes::router(AppState {
        tracker,
        redis: redis.clone(),
    })
    .merge(health_routes(Dependencies { redis, db }));
    tracing::info!(port = config.port, "campaign-service ready");
    servicekit::http::serve(listener, app, shutdown.clone()).await?;
    let _ = tokio::join!(campaigns, deliveries, reannouncer);
    Ok(())
}
