//! notification-service: owns the per-recipient notification records and
//! the campaigns' templates. It turns each notification request into a
//! rendered email request, and tracks each notification to its final status
//! from the delivery events.

pub mod config;
pub mod handlers;
pub mod routes;
pub mod store;
pub mod templates;

use contracts::Streams;
use eventstore::Publisher;
use servicekit::access::Access;
use servicekit::service::{Service, Spec};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::config::Config;
use crate::handlers::{DeliveryHandler, Notifier, RequestHandler};
use crate::store::NotificationStore;

/// The consumer group of notification-service (on each of its streams).
pub const GROUP: &str = "notification-service";

/// What notification-service is to [`Service`].
const SPEC: Spec = Spec {
    name: GROUP,
    port_variable: "NOTIFICATION_PORT",
    schema: store::SCHEMA,
};

/// Builds notification-service from `config`: connected and bound (port 0
/// picks a free one), ready to run.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let access = Access::new(config.app_env, &config.api_token)?;
    let service = Service::build(&SPEC, &config.service).await?;
    let store = NotificationStore::new(service.db().clone());
    let streams = Streams::new(service.partitions());
    let notifier = Notifier::new(
        store.clone(),
        Publisher::new(service.redis().clone()),
        streams.clone(),
    );
    let on_campaign = notifier.clone();
    Ok(service
        .consume(&streams.campaigns, move |delivery| {
            let notifier = on_campaign.clone();
            async move { notifier.on_campaign_event(delivery).await }
        })
        .consume(&streams.notifications, RequestHandler(notifier.clone()))
        .consume(&streams.deliveries, DeliveryHandler(notifier))
        .trim(&[&streams.notifications, &streams.deliveries])
        .serve(routes::router(store, access), routes::ApiDoc::openapi()))
}

/// Loads the configuration, builds and runs notification-service until
/// `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    build(servicekit::config::load_service::<Config>().await?)
        .await?
        .run(shutdown)
        .await
}
