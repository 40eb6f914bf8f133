//! campaign-service: owns the campaigns. It serves the REST API and the
//! dashboard, announces new campaigns on `comms:campaigns`, and keeps each
//! campaign's progress exact from `comms:deliveries`.

pub mod config;
pub mod control;
pub mod domain;
pub mod erasure;
pub mod gauges;
pub mod handlers;
pub mod messages;
pub mod quota;
pub mod routes;
pub mod scheduler;
pub mod state;
pub mod store;
pub mod webhooks;

use std::time::Duration;

use contracts::consent::SUPPRESSIONS;
use contracts::control::ControlBoard;
use contracts::Streams;
use eventstore::Publisher;
use secrecy::ExposeSecret;
use servicekit::access::Access;
use servicekit::app_env::AppEnv;
use servicekit::service::{Service, Spec};
use servicekit::suppressed::SuppressedAddresses;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::handlers::{DeliveryHandler, Tracker};
use crate::state::AppState;
use crate::store::CampaignStore;
use crate::webhooks::store::WebhookStore;
use crate::webhooks::subscribers::Subscribers;

/// The consumer group of campaign-service (on both its streams).
pub const GROUP: &str = "campaign-service";

/// What campaign-service is to [`Service`].
const SPEC: Spec = Spec::new(GROUP, "CAMPAIGN_PORT", store::SCHEMA);

/// Builds campaign-service from `config`: connected and bound (port 0 picks
/// a free one), ready to run.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let access = Access::new(config.app_env, &config.api_token)?;
    let unsubscribe_key = contracts::unsubscribe::key_for(
        config.app_env == AppEnv::Prod,
        config.unsubscribe_key.expose_secret(),
    )
    .map_err(anyhow::Error::msg)?;
    let service = Service::build(&SPEC, &config.service).await?;
    let tracker = Tracker::new(CampaignStore::new(service.db().clone()), service.redis().clone());
    let reads = CampaignStore::new(service.reads().clone());
    let streams = Streams::new(service.partitions());
    let live = routes::live::LiveFeed::new(
        reads.clone(),
        service.routes_redis().clone(),
        streams.clone(),
        service.shutdown(),
    );
    let webhooks = WebhookStore::new(service.db().clone());
    let state = AppState {
        tracker: tracker.clone(),
        reads: reads.clone(),
        redis: service.routes_redis().clone(),
        publisher: Publisher::new(service.redis().clone()),
        unsubscribe_key,
        streams: streams.clone(),
        access,
        shutdown: service.shutdown(),
        live,
        board: ControlBoard::new(service.redis().clone()),
        max_in_progress: config.max_in_progress,
        suppressed: SuppressedAddresses::new(service.db().clone(), service.redis().clone(), SUPPRESSIONS),
        webhooks: webhooks.clone(),
        subscribers: Subscribers::new(webhooks),
        allow_link_local: config.webhook_allow_link_local,
    };
    let (board, controlled) = (state.board.clone(), tracker.store().clone());
    let publisher = state.publisher.clone();
    let reannounce = Duration::from_millis(config.reannounce_ms);
    let on_campaign = tracker.clone();
    let hashed = tracker.store().hash_message_recipients().await?;
    if hashed > 0 {
        tracing::info!(
            hashed,
            "hashed the addresses of the messages stored before erasure could find them"
        );
    }
    let eraser = erasure::UserEraser::new(
        service.db().clone(),
        tracker.store().clone(),
        state.publisher.clone(),
        streams.erasures.name(),
    );
    let intake = webhooks::intake::Intake::new(state.webhooks.clone(), state.subscribers.clone());
    let dispatcher = webhooks::dispatch::Dispatcher::new(
        state.webhooks.clone(),
        state.subscribers.clone(),
        tracker.store().clone(),
        config.webhooks(),
    );
    Ok(service
        .consume(&streams.campaigns, move |delivery| {
            let tracker = on_campaign.clone();
            async move { tracker.on_campaign_event(delivery).await }
        })
        .consume(&streams.deliveries, DeliveryHandler(tracker.clone()))
        .consume(&streams.erasures, eraser)
        .consume(&streams.suppressions, {
            let suppressed = state.suppressed.clone();
            move |delivery| {
                let suppressed = suppressed.clone();
                async move { suppressed.handle(delivery).await }
            }
        })
        .consume_in_group(webhooks::GROUP, &streams.deliveries, intake.clone())
        .consume_in_group(webhooks::GROUP, &streams.consent, intake)
        .once_per_cluster("webhooks", webhooks::EVERY, move || {
            let dispatcher = dispatcher.clone();
            async move { dispatcher.round().await }
        })
        .spawn(move |shutdown| gauges::refresh(reads, gauges::REFRESH, shutdown))
        .once_per_cluster("schedule", scheduler::EVERY, {
            let (tracker, max_in_progress) = (tracker.clone(), config.max_in_progress);
            move || {
                let tracker = tracker.clone();
                async move { scheduler::start_due(&tracker, max_in_progress).await }
            }
        })
        .once_per_cluster("control", control::EVERY, move || {
            let (store, board) = (controlled.clone(), board.clone());
            async move { control::mend(&store, &board).await }
        })
        .once_per_cluster("messages", messages::EVERY, {
            let (store, streams) = (tracker.store().clone(), streams.clone());
            move || {
                let (store, publisher, streams) = (store.clone(), publisher.clone(), streams.clone());
                async move { messages::reannounce(&store, &publisher, &streams, messages::AFTER).await }
            }
        })
        .once_per_cluster("reannounce", reannounce, move || {
            let tracker = tracker.clone();
            async move { tracker.reannounce_stalled(reannounce).await }
        })
        .open_to_every_page(routes::unsubscribe::ROUTE)
        .read_at_idle_priority(routes::READ_AT_IDLE_PRIORITY)
        .serve(
            routes::router(
                state,
                &routes::Peers {
                    user_service: config.user_service_url.clone(),
                    notification_service: config.notification_service_url.clone(),
                },
            ),
            routes::document(&streams),
        ))
}

/// Loads the configuration, builds and runs campaign-service until
/// `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    servicekit::binary::load_build_run(build, shutdown).await
}
