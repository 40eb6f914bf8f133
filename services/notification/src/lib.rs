//! notification-service: owns the per-recipient notification records and
//! the campaigns' templates. It turns each notification request into a
//! rendered email request, and tracks each notification to its final status
//! from the delivery events.

pub mod config;
pub mod export;
pub mod handlers;
pub mod held;
pub mod links;
pub mod resend;
pub mod routes;
pub mod store;
pub mod templates;

use contracts::control::ControlBoard;
use contracts::Streams;
use eventstore::Publisher;
use secrecy::ExposeSecret;
use servicekit::access::Access;
use servicekit::app_env::AppEnv;
use servicekit::erasure::Eraser;
use servicekit::pace::{self, Pacer};
use servicekit::service::{Service, Spec};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::config::Config;
use crate::handlers::{DeliveryHandler, Notifier, RequestHandler};
use crate::links::UnsubscribeLinks;
use crate::resend::Resends;
use crate::store::NotificationStore;

/// The consumer group of notification-service (on each of its streams).
pub const GROUP: &str = "notification-service";

/// What notification-service is to [`Service`].
const SPEC: Spec = Spec::new(GROUP, "NOTIFICATION_PORT", store::SCHEMA);

/// Builds notification-service from `config`: connected and bound (port 0
/// picks a free one), ready to run.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let access = Access::new(config.app_env, &config.api_token)?;
    let service = Service::build(&SPEC, &config.service).await?;
    let store = NotificationStore::new(service.db().clone());
    // The routes read on a pool of their own: a reader never holds up the
    // stream handlers' writes.
    let reads = NotificationStore::new(service.reads().clone());
    let streams = Streams::new(service.partitions());
    let key = contracts::unsubscribe::key_for(
        config.app_env == AppEnv::Prod,
        config.unsubscribe_key.expose_secret(),
    )
    .map_err(anyhow::Error::msg)?;
    let links = UnsubscribeLinks::new(key, &config.public_url, config.unsubscribe_mailto.as_deref())?;
    let notifier = Notifier::new(
        store.clone(),
        Publisher::new(service.redis().clone()),
        streams.clone(),
        links,
        ControlBoard::new(service.redis().clone()),
    );
    let on_campaign = notifier.clone();
    let downstream = [&streams.notifications, &streams.emails, &streams.deliveries]
        .iter()
        .flat_map(|stream| stream.partitions().to_vec())
        .collect();
    let resends = Resends::new(
        service.db().clone(),
        Publisher::new(service.redis().clone()),
        streams.clone(),
        ControlBoard::new(service.redis().clone()),
        Pacer::new(
            service.redis().clone(),
            service.shared_lease(pace::WINDOW),
            downstream,
            config.expansion_backlog,
        ),
    );
    let on_resend = resends.clone();
    let eraser = Eraser::new(service.db().clone(), &[store::ERASE]);
    Ok(service
        .consume(&streams.campaigns, move |delivery: eventstore::Delivery| {
            let (notifier, resends) = (on_campaign.clone(), on_resend.clone());
            async move {
                resends.on_campaign_event(&delivery).await?;
                notifier.on_campaign_event(delivery).await
            }
        })
        .consume(&streams.notifications, RequestHandler(notifier.clone()))
        .consume(&streams.deliveries, DeliveryHandler(notifier.clone()))
        .consume(&streams.erasures, eraser)
        .consume(&streams.consent, {
            let store = store.clone();
            move |delivery| {
                let store = store.clone();
                async move { handlers::on_consent(&store, delivery).await }
            }
        })
        .once_per_cluster("resend", resend::EVERY, move || {
            let resends = resends.clone();
            async move { resends.round().await }
        })
        .once_per_cluster("held", held::EVERY, move || {
            let notifier = notifier.clone();
            async move { held::round(&notifier).await }
        })
        .trim(&[&streams.notifications, &streams.deliveries])
        // The dashboard downloads a campaign's export from its pages.
        .allow_origin_of(&config.public_url)
        .read_at_idle_priority(routes::READ_AT_IDLE_PRIORITY)
        .serve(routes::router(reads, access), routes::ApiDoc::openapi()))
}

/// Loads the configuration, builds and runs notification-service until
/// `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    servicekit::binary::load_build_run(build, shutdown).await
}
