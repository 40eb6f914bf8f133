//! user-service: owns the users and the suppression list. It seeds the
//! users at start, serves them over HTTP, expands each new campaign's
//! audience into one notification request per user on
//! `comms:notifications` (marking those on the list), applies every
//! consent change of `comms:consent` to the list, and addresses the
//! messages sent to a user id (`comms:message-users`).

pub mod addresser;
pub mod bounces;
pub mod config;
pub mod consent;
pub mod erase;
pub mod expand;
pub mod import;
pub mod profile;
pub mod routes;
pub mod seed;
pub mod store;
pub mod suppression_routes;
pub mod suppressions;
pub mod user_writes;

use std::time::{Duration, Instant};

use contracts::Streams;
use servicekit::access::Access;
use servicekit::service::{Service, Spec};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::addresser::Addresser;
use crate::config::Config;
use crate::consent::Consent;
use crate::erase::Eraser;
use crate::expand::Expander;
use crate::store::UserStore;
use crate::suppressions::SuppressionStore;
use crate::user_writes::UserWrites;

/// The consumer group of user-service, the one that expands campaigns.
pub const GROUP: &str = contracts::AUDIENCE_GROUP;

/// What user-service is to [`Service`].
const SPEC: Spec = Spec::new(GROUP, "USER_PORT", store::SCHEMA);

/// The longest an expansion may run before the worker retries it.
const EXPANSION_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Builds user-service from `config`: connected and bound (port 0 picks a
/// free one), its users seeded, ready to run. Seeding comes first so that
/// no campaign is expanded to a partial audience. Instances starting
/// together seed one at a time, under the lease `user-service:seed`: the
/// first seeds, each of the others waits for it, finds the users there,
/// and only then goes on to serve.
pub async fn build(config: Config) -> anyhow::Result<Service> {
    let access = Access::new(config.app_env, &config.api_token)?;
    let service = Service::build(&SPEC, &config.service).await?;
    store::migrate(service.db())
        .await
        .map_err(|error| anyhow::anyhow!("cannot add the users' new columns: {error}"))?;
    let store = UserStore::new(service.db().clone());
    // The routes read on a pool of their own: a reader never holds up the
    // expansion's reads and writes.
    let reads = UserStore::new(service.reads().clone());
    let list_reads = SuppressionStore::new(service.reads().clone());
    let streams = Streams::new(service.partitions());

    let started = Instant::now();
    let db = service.db().clone();
    let seeded = service
        .lease("seed")
        .exclusive(|| seed::seed(&db, config.seed_users))
        .await??;
    tracing::info!(seeded, seconds = started.elapsed().as_secs_f64(), "users seeded");

    let list = SuppressionStore::new(service.db().clone());
    let writes = UserWrites::new(service.db().clone());
    let eraser = Eraser::new(store.clone(), service.redis().clone(), streams.clone());
    let consent = Consent::new(
        store.clone(),
        list.clone(),
        eventstore::Publisher::new(service.redis().clone()),
        streams.consent.clone(),
        streams.suppressions.clone(),
    );
    let expander = Expander::new(
        store.clone(),
        list,
        service.redis().clone(),
        streams.clone(),
        config.page_size,
        config.expansion_backlog,
        service.shared_lease(servicekit::pace::WINDOW),
        service.consumer().to_string(),
        Duration::from_millis(config.expansion_lease_ms),
    );
    let addresser = Addresser::new(
        store.clone(),
        eventstore::Publisher::new(service.redis().clone()),
        streams.clone(),
    );
    let expand = move |delivery| {
        let expander = expander.clone();
        async move { expander.handle(delivery).await }
    };
    Ok(service
        // An expansion runs at the pace of the services behind it: a large
        // campaign's takes as long as its sending, far past the usual bound
        // of one handler run. Its lease, not a timeout, guards against a
        // stuck one.
        .consume_with(&streams.campaigns, expand, |worker| {
            worker.handler_timeout = EXPANSION_TIMEOUT;
        })
        .consume(&streams.consent, {
            let consent = consent.clone();
            move |delivery| {
                let consent = consent.clone();
                async move { consent.handle(delivery).await }
            }
        })
        .consume(&streams.message_users, move |delivery| {
            let addresser = addresser.clone();
            async move { addresser.handle(delivery).await }
        })
        .trim(&[
            &streams.campaigns,
            &streams.consent,
            &streams.erasures,
            &streams.message_users,
        ])
        .allow_origin_of(&config.public_url)
        .writable_from_allowed_origins(import::ROUTE)
        .untimed(import::ROUTE)
        .read_at_idle_priority(routes::READ_AT_IDLE_PRIORITY)
        .read_at_idle_priority(&[suppression_routes::LIST_ROUTE])
        .serve(
            routes::router(reads, writes.clone(), eraser, access.clone())
                .merge(suppression_routes::router(consent, list_reads, access.clone()))
                .merge(import::router(writes, access)),
            document(),
        ))
}

/// user-service's OpenAPI document: the users' routes and the list's.
fn document() -> utoipa::openapi::OpenApi {
    let mut document = routes::ApiDoc::openapi();
    document.merge(suppression_routes::ApiDoc::openapi());
    document
}

/// Loads the configuration, builds and runs user-service until `shutdown`.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    servicekit::binary::load_build_run(build, shutdown).await
}
