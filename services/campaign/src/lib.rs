//! campaign-service: owns the campaigns. It serves the REST API and the
//! dashboard, announces new campaigns on `comms:campaigns`, and keeps each
//! campaign's progress exact from `comms:deliveries`.

pub mod config;
pub mod domain;
pub mod handlers;
pub mod live;
pub mod routes;
pub mod store;

use secrecy::ExposeSecret;
use std::time::Duration;

use contracts::{CAMPAIGNS, DELIVERIES};
use eventstore::RedisTarget;
use servicekit::access::Access;
use servicekit::config::AppEnv;
use servicekit::http::{health_routes, Dependencies};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::config::Config;
use crate::handlers::{DeliveryHandler, Tracker};
use crate::routes::AppState;
use crate::store::CampaignStore;

/// The consumer group of campaign-service (on both its streams).
pub const GROUP: &str = "campaign-service";

/// campaign-service, connected and bound, not yet serving.
pub struct Application {
    config: Config,
    target: RedisTarget,
    listener: TcpListener,
    port: u16,
    state: AppState,
    deps: Dependencies,
}

impl Application {
    /// Connects to Redis and the database and binds the port (0 picks a
    /// free one); any of them failing is an error naming it.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let access = Access::new(AppEnv::parse(&config.app_env)?, &config.api_token)?;
        let (target, redis) = servicekit::connect_redis(config.service.redis_url.expose_secret()).await?;
        let db = servicekit::db::connect(config.service.database_url.expose_secret(), store::SCHEMA).await?;
        let listener =
            servicekit::http::bind(&config.service.host, config.service.port, "CAMPAIGN_PORT").await?;
        let port = listener.local_addr()?.port();
        let tracker = Tracker::new(CampaignStore::new(db.clone()), redis.clone());
        Ok(Self {
            state: AppState {
                tracker,
                redis: redis.clone(),
                access,
                // Replaced by the token `run` is given.
                shutdown: CancellationToken::new(),
            },
            deps: Dependencies { redis, db },
            config,
            target,
            listener,
            port,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves and consumes until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            config,
            target,
            listener,
            port,
            mut state,
            deps,
        } = self;
        let consumer = servicekit::consumer_name(GROUP, port);
        let campaigns = config
            .service
            .streams
            .worker(&target, CAMPAIGNS, GROUP, &consumer);
        let on_campaign = state.tracker.clone();
        let campaigns = tokio::spawn(campaigns.run(
            move |delivery| {
                let tracker = on_campaign.clone();
                async move { tracker.on_campaign_event(delivery).await }
            },
            shutdown.clone(),
        ));
        let deliveries = config
            .service
            .streams
            .worker(&target, DELIVERIES, GROUP, &consumer);
        let deliveries =
            tokio::spawn(deliveries.run(DeliveryHandler(state.tracker.clone()), shutdown.clone()));
        let reannouncer = tokio::spawn(
            state
                .tracker
                .clone()
                .reannounce_stalled(Duration::from_millis(config.reannounce_ms), shutdown.clone()),
        );

        state.shutdown = shutdown.clone();
        let app = routes::router(state)
            .merge(health_routes(deps))
            .merge(servicekit::openapi::routes(routes::ApiDoc::openapi()));
        tracing::info!(port, "campaign-service ready");
        servicekit::http::serve(listener, app, shutdown.clone()).await?;
        let _ = tokio::join!(campaigns, deliveries, reannouncer);
        Ok(())
    }
}

/// Loads the configuration, builds and runs campaign-service until
/// `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    Application::build(Config::load().await?)
        .await?
        .run(shutdown)
        .await
}
