//! campaign-service: owns the campaigns. It serves the REST API and the
//! dashboard, announces new campaigns on `comms:campaigns`, and keeps each
//! campaign's progress exact from `comms:deliveries`.

pub mod config;
pub mod domain;
pub mod gauges;
pub mod handlers;
pub mod routes;
pub mod state;
pub mod store;

use std::time::Duration;

use contracts::Streams;
use servicekit::access::Access;
use servicekit::service::{Service, Spec};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::handlers::{DeliveryHandler, Tracker};
use crate::state::AppState;
use crate::store::CampaignStore;

/// The consumer group of campaign-service (on both its streams).
pub const GROUP: &str = "campaign-service";

/// What campaign-service is to [`Service`].
const SPEC: Spec = Spec {
    name: GROUP,
    port_variable: "CAMPAIGN_PORT",
    schema: store::SCHEMA,
};

/// Builds campaign-service from `config`: connected and bound (port 0 picks
/// a free one), ready to run.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let access = Access::new(config.app_env, &config.api_token)?;
    let service = Service::build(&SPEC, &config.service).await?;
    let tracker = Tracker::new(CampaignStore::new(service.db().clone()), service.redis().clone());
    let streams = Streams::new(service.partitions());
    let state = AppState {
        tracker: tracker.clone(),
        redis: service.redis().clone(),
        streams: streams.clone(),
        access,
        shutdown: service.shutdown(),
    };
    let reannounce = Duration::from_millis(config.reannounce_ms);
    let on_campaign = tracker.clone();
    Ok(service
        .consume(&streams.campaigns, move |delivery| {
            let tracker = on_campaign.clone();
            async move { tracker.on_campaign_event(delivery).await }
        })
        .consume(&streams.deliveries, DeliveryHandler(tracker.clone()))
        .spawn({
            let store = tracker.store().clone();
            move |shutdown| gauges::refresh(store, gauges::REFRESH, shutdown)
        })
        .once_per_cluster("reannounce", reannounce, move || {
            let tracker = tracker.clone();
            async move { tracker.reannounce_stalled(reannounce).await }
        })
        .serve(routes::router(state), routes::document(&streams)))
}

/// Loads the configuration, builds and runs campaign-service until
/// `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    build(servicekit::config::load_service::<Config>().await?)
        .await?
        .run(shutdown)
        .await
}
