//! email-service: sends each requested email over SMTP exactly once as far
//! as any SMTP client can (a durable send ledger and a stable `Message-ID`),
//! and publishes every outcome to `comms:deliveries`. It keeps a copy of
//! the suppression list (from `comms:suppressions`) to skip, as late as the
//! send, whoever is on it, and reports hard bounces to `comms:consent`.
//! With a DKIM key set it signs every email, and serves the DNS record of
//! the key at `GET /api/v1/dkim` ([`dkim`], [`routes`]).

pub mod config;
pub mod dkim;
pub mod domains;
pub mod held;
pub mod ledger;
pub mod limits;
pub mod list_headers;
pub mod mailer;
pub mod outcome;
pub mod recorder;
pub mod relay;
pub mod relay_list;
pub mod relays;
pub mod routes;
pub mod sender;
pub mod unrecorded;

use contracts::consent::SUPPRESSIONS;
use contracts::control::ControlBoard;
use contracts::relays::RelayBoard;
use contracts::Streams;
use eventstore::Publisher;
use servicekit::erasure::Eraser;
use servicekit::service::{Service, Spec};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::config::Config;
use crate::ledger::Ledger;
use crate::limits::SendSlots;
use crate::mailer::Mailer;
use crate::sender::Sender;
use servicekit::suppressed::SuppressedAddresses;

/// The consumer group of email-service.
pub const GROUP: &str = "email-service";

/// What email-service is to [`Service`].
const SPEC: Spec = Spec::new(GROUP, "EMAIL_PORT", ledger::SCHEMA);

/// Builds email-service from `config`: connected to Redis, its ledger and
/// the SMTP server, and bound (port 0 picks a free one), ready to run.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    // The settings first: a bad one is named before any server is asked.
    let limits = limits::from_config(&config)?;
    let domain_limits = domains::DomainLimits::parse(
        config.domain_rate,
        config.domain_connections,
        &config.domain_limits,
    )?;
    let mailer = Mailer::new(&config)?;
    let service = Service::build(&SPEC, &config.service).await?;
    mailer.relays().check().await?;
    let ledger = Ledger::new(
        service.db().clone(),
        service.consumer().to_string(),
        config.lease_ms,
    );
    let released = ledger.release_stale_leases().await?;
    if released > 0 {
        tracing::info!(released, "released the send leases of a previous run");
    }
    let dkim_record = mailer.dkim_record().cloned();
    let relays = mailer.relays().clone();
    let streams = Streams::new(service.partitions());
    let publisher = Publisher::new(service.redis().clone());
    let suppressed = SuppressedAddresses::new(service.db().clone(), service.redis().clone(), SUPPRESSIONS);
    let sender = Sender::new(
        mailer,
        ledger,
        publisher,
        &streams,
        suppressed.clone(),
        ControlBoard::new(service.redis().clone()),
        SendSlots::new(service.redis().clone(), limits, domain_limits, relays.clone()),
    );
    let relay_board = RelayBoard::new(service.redis().clone());
    let instance = service.consumer().to_string();
    let eraser = Eraser::new(service.db().clone(), &[ledger::ERASE]);
    Ok(service
        // Transactional messages on a lane of their own: never behind the
        // campaigns' emails waiting in `comms:emails`.
        .consume(&streams.messages, sender.clone())
        .consume(&streams.emails, sender)
        .consume(&streams.suppressions, move |delivery| {
            let suppressed = suppressed.clone();
            async move { suppressed.handle(delivery).await }
        })
        .consume(&streams.erasures, eraser)
        .trim(&[&streams.emails, &streams.messages, &streams.suppressions])
        .spawn(move |shutdown| relays.report_until(relay_board, instance, shutdown))
        .serve(routes::router(dkim_record), routes::ApiDoc::openapi()))
}

/// Loads the configuration, builds and runs email-service until `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    servicekit::binary::load_build_run(build, shutdown).await
}
