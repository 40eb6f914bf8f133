//! notification-service: owns the per-recipient notification records and
//! the campaigns' templates. It turns each notification request into a
//! rendered email request, and tracks each notification to its final status
//! from the delivery events.

pub mod config;
pub mod handlers;
pub mod routes;
pub mod store;
pub mod templates;

use contracts::{CAMPAIGNS, DELIVERIES, NOTIFICATIONS};
use eventstore::Publisher;
use secrecy::ExposeSecret;
use servicekit::http::{health_routes, Dependencies};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::handlers::{DeliveryHandler, Notifier, RequestHandler};
use crate::store::NotificationStore;

/// The consumer group of notification-service (on each of its streams).
pub const GROUP: &str = "notification-service";

/// Runs notification-service until `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Config::load().await?;
    let (target, redis) = servicekit::connect_redis(config.service.redis_url.expose_secret()).await?;
    let db = servicekit::db::connect(config.service.database_url.expose_secret(), store::SCHEMA).await?;
    let listener =
        servicekit::http::bind(&config.service.host, config.service.port, "NOTIFICATION_PORT").await?;
    let store = NotificationStore::new(db.clone());
    let notifier = Notifier::new(store.clone(), Publisher::new(redis.clone()));
    let consumer = servicekit::consumer_name(GROUP, config.service.port);

    let campaigns = config
        .service
        .streams
        .worker(&target, CAMPAIGNS, GROUP, &consumer);
    let on_campaign = notifier.clone();
    let campaigns = tokio::spawn(campaigns.run(
        move |delivery| {
            let notifier = on_campaign.clone();
            async move { notifier.on_campaign_event(delivery).await }
        },
        shutdown.clone(),
    ));
    let requests = config
        .service
        .streams
        .worker(&target, NOTIFICATIONS, GROUP, &consumer);
    let requests = tokio::spawn(requests.run(RequestHandler(notifier.clone()), shutdown.clone()));
    let deliveries = config
        .service
        .streams
        .worker(&target, DELIVERIES, GROUP, &consumer);
    let deliveries = tokio::spawn(deliveries.run(DeliveryHandler(notifier), shutdown.clone()));
    let trimmer = servicekit::spawn_trimmer(redis.clone(), &[NOTIFICATIONS, DELIVERIES], shutdown.clone());

    let app = routes::router(store)
        .merge(health_routes(Dependencies { redis, db }))
        .merge(servicekit::openapi::routes(
            <routes::ApiDoc as utoipa::OpenApi>::openapi(),
        ));
    tracing::info!(port = config.service.port, "notification-service ready");
    servicekit::http::serve(listener, app, shutdown.clone()).await?;
    let _ = tokio::join!(campaigns, requests, deliveries, trimmer);
    Ok(())
}
