//! email-service: sends each requested email over SMTP exactly once as far
//! as any SMTP client can (a durable send ledger and a stable `Message-ID`),
//! and publishes every outcome to `comms:deliveries`.

pub mod config;
mod group_commit;
pub mod ledger;
pub mod mailer;
pub mod sender;

use contracts::EMAILS;
use eventstore::Publisher;
use secrecy::ExposeSecret;
use servicekit::http::{health_routes, Dependencies};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::ledger::Ledger;
use crate::mailer::Mailer;
use crate::sender::Sender;

/// The OpenAPI document of email-service: it serves only the shared routes
/// (`/health`, `/ready`, `/metrics`), which [`servicekit::openapi`] adds.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct ApiDoc;

/// The consumer group of email-service.
pub const GROUP: &str = "email-service";

/// Runs email-service until `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Config::load().await?;
    let (target, redis) = servicekit::connect_redis(config.service.redis_url.expose_secret()).await?;
    let db = servicekit::db::connect(config.service.database_url.expose_secret(), ledger::SCHEMA).await?;
    let mailer = Mailer::new(&config)?;
    mailer.check().await.map_err(|error| {
        anyhow::anyhow!(
            "cannot reach the SMTP server at {}:{}: {error}",
            config.smtp_host,
            config.smtp_port
        )
    })?;
    let listener = servicekit::http::bind(&config.service.host, config.service.port, "EMAIL_PORT").await?;
    let consumer = servicekit::consumer_name(GROUP, config.service.port);
    let ledger = Ledger::new(db.clone(), consumer.clone(), config.lease_ms);
    let released = ledger.release_stale_leases().await?;
    if released > 0 {
        tracing::info!(released, "released the send leases of a previous run");
    }

    let sender = Sender::new(mailer, ledger, Publisher::new(redis.clone()));
    let worker = config.service.streams.worker(&target, EMAILS, GROUP, &consumer);
    let worker = tokio::spawn(worker.run(sender, shutdown.clone()));
    let trimmer = servicekit::spawn_trimmer(redis.clone(), &[EMAILS], shutdown.clone());

    let app = health_routes(Dependencies { redis, db })
        .merge(servicekit::openapi::routes(<ApiDoc as utoipa::OpenApi>::openapi()));
    tracing::info!(port = config.service.port, "email-service ready");
    servicekit::http::serve(listener, app, shutdown.clone()).await?;
    let _ = tokio::join!(worker, trimmer);
    Ok(())
}
