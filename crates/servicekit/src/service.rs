//! The one way a comms service is put together and run.
//!
//! Every service connects to Redis and its database, binds its port, runs a
//! stream worker per stream it consumes, trims the streams it owns, serves
//! its routes beside the shared health and OpenAPI routes, runs the work
//! that one instance does for all ([`Service::once_per_cluster`]), and
//! stops all of it on one signal. [`Service`] does that part, so that a service's own
//! crate only says what it consumes and what it serves:
//!
//! ```no_run
//! # async fn demo(settings: &servicekit::config::ServiceSettings) -> anyhow::Result<()> {
//! use servicekit::service::{Service, Spec};
//!
//! #[derive(utoipa::OpenApi)]
//! #[openapi()]
//! struct ApiDoc;
//!
//! const SPEC: Spec = Spec::new("demo-service", "DEMO_PORT", "");
//! let service = Service::build(&SPEC, settings)
//!     .await?
//!     .consume("demo:events", |delivery: eventstore::Delivery| async move {
//!         println!("{}", delivery.entry_id);
//!         Ok::<(), eventstore::HandleError>(())
//!     })
//!     .trim(&["demo:events"])
//!     .serve(axum::Router::new(), <ApiDoc as utoipa::OpenApi>::openapi());
//! println!("listening on {}", service.port());
//! service.run(servicekit::shutdown::on_signal()).await
//! # }
//! ```
//!
//! Nothing runs before [`Service::run`]: a test can build a service on port
//! 0, read the port it got, then run it until its own token.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use eventstore::lease::Lease;
use eventstore::{Handler, Partitioned, Redis, RedisTarget, Worker, WorkerConfig};
use secrecy::ExposeSecret;
use sqlx::AnyPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi as Document;

use crate::config::ServiceSettings;
use crate::http::capacity::{self, Capacity};
use crate::http::{health_routes, Dependencies, Limits, Site};
use crate::streams::StreamSettings;

/// What tells one service from another to [`Service::build`].
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The service's name (`campaign-service`), which is also its consumer
    /// group on every stream it reads: one group per service, shared by its
    /// instances.
    pub name: &'static str,
    /// The variable that moves its port (`CAMPAIGN_PORT`), named when the
    /// port is taken.
    pub port_variable: &'static str,
    /// Its database schema (idempotent `CREATE … IF NOT EXISTS`
    /// statements separated by `;`: its `schema.sql`).
    pub schema: &'static str,
}

impl Spec {
    /// The spec of service `name`, its port moved by `port_variable`, its
    /// database made by `schema`.
    pub const fn new(name: &'static str, port_variable: &'static str, schema: &'static str) -> Self {
        Self {
            name,
            port_variable,
            schema,
        }
    }
}

/// A task started by [`Service::run`] and awaited at shutdown.
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A service connected and bound, with what it will run; nothing runs
/// until [`Service::run`].
pub struct Service {
    /// Its name and group.
    spec: Spec,
    /// Where the event store is, for the workers' own connections.
    target: RedisTarget,
    /// The shared event-store connection.
    redis: Redis,
    /// The event-store connection of the routes read at the idle priority.
    routes_redis: Redis,
    /// Its own database, schema applied: the pool its writes go through.
    db: AnyPool,
    /// The pool its HTTP routes read through (see [`Service::reads`]).
    reads: AnyPool,
    /// Bound at build, so the port is known (and taken) before it runs.
    listener: TcpListener,
    /// The port bound (the one asked for, or a free one for 0).
    port: u16,
    /// The host names and origins its HTTP callers may use.
    site: Site,
    /// What one request may cost it.
    limits: Limits,
    /// Its consumer name in its group.
    consumer: String,
    /// How its workers are tuned.
    streams: StreamSettings,
    /// How many partitions the per-recipient streams are split into.
    partitions: u32,
    /// How many requests and event streams its routes serve at once.
    capacity: Capacity,
    /// The route patterns whose reads run at the idle priority.
    idle_routes: Vec<String>,
    /// What every task stops on; cancelled when `run`'s token is.
    stop: CancellationToken,
    /// Workers, the trimmer and the service's own tasks, started by `run`.
    tasks: Vec<Task>,
    /// The service's own routes.
    routes: Router,
    /// The service's OpenAPI document, served with the shared parts.
    document: Document,
}

impl Service {
    /// Connects to Redis and the database (applying `spec.schema`) and
    /// binds the port of `settings` (0 picks a free one); any of them
    /// failing is an error of one line naming it. So is a partition count
    /// other than the one the event store's streams are split into.
    pub async fn build(spec: &Spec, settings: &ServiceSettings) -> anyhow::Result<Self> {
        let target = RedisTarget::parse(settings.redis_url.expose_secret())?;
        let mut redis = target.shared().await?;
        eventstore::partition::agree(&mut redis, settings.stream_partitions).await?;
        let routes_redis = target.shared().await?;
        let db = crate::db::connect(settings.database_url.expose_secret(), spec.schema).await?;
        let read_connections = u32::try_from(settings.capacity.max_reads).unwrap_or(u32::MAX);
        let reads = crate::db::connect_reads(&db, read_connections).await?;
        let listener = crate::http::bind(&settings.host, settings.port, spec.port_variable).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            spec: *spec,
            target,
            redis,
            routes_redis,
            db,
            reads,
            listener,
            port,
            site: Site::new(spec.name, &settings.host, &settings.site),
            limits: Limits::default(),
            consumer: consumer_name(spec.name, port),
            streams: settings.streams.clone(),
            partitions: settings.stream_partitions.max(1),
            capacity: settings.capacity,
            idle_routes: Vec::new(),
            stop: CancellationToken::new(),
            tasks: Vec::new(),
            routes: Router::new(),
            document: Document::default(),
        })
    }

    /// The shared event-store connection, for publishers and queries.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// The service's database, for its stream handlers and its writes
    /// (on SQLite, its one writer connection).
    pub fn db(&self) -> &AnyPool {
        &self.db
    }

    /// An event-store connection of the routes' own, for the routes read at
    /// the idle priority ([`Service::read_at_idle_priority`]): a
    /// connection re-opened by one of them is driven by the idle thread,
    /// so it must not be the pipeline's ([`Service::redis`]).
    pub fn routes_redis(&self) -> &Redis {
        &self.routes_redis
    }

    /// The service's database for its HTTP routes' reads: on SQLite,
    /// read-only connections of their own (one per read the routes run at
    /// once, [`Capacity::max_reads`]), so that a stream handler never
    /// queues behind a reader for the writer's connection; on PostgreSQL,
    /// a pool of its own (see [`crate::db::connect_reads`]).
    pub fn reads(&self) -> &AnyPool {
        &self.reads
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// This instance's consumer name, `<service>@<host>:<port>-<pid>-<random>`:
    /// readable (which host and port), and unique to this process, so two
    /// hosts of one name (containers, cloned machines) never share a name,
    /// and with it each other's pending entries and leases. A restarted
    /// instance is a new consumer: it takes over the entries its
    /// predecessor held by idle claim (after `claim_idle`), as any
    /// consumer takes a dead one's, and its leases once they run out.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// How many partitions the per-recipient streams are split into
    /// (`STREAM_PARTITIONS`), agreed with the event store at build.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The token everything of this service stops on, for the parts that
    /// are built before it runs (say, live HTTP channels); it is cancelled
    /// when the token given to [`Service::run`] is.
    pub fn shutdown(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs `handler` on each entry of `stream`, in the service's group,
    /// with the service's worker settings.
    pub fn consume<H: Handler>(self, stream: impl Into<Partitioned>, handler: H) -> Self {
        self.consume_with(stream, handler, |_| {})
    }

    /// Like [`Service::consume`], with the worker's configuration adjusted
    /// by `adjust` first (say, a handler that may run far longer than
    /// usual).
    ///
    /// A split stream gets a worker per partition, all running `handler`,
    /// which share the service's `concurrency` between them: the service
    /// holds as many entries at once as it would of a whole stream.
    pub fn consume_with<H: Handler>(
        self,
        stream: impl Into<Partitioned>,
        handler: H,
        adjust: impl Fn(&mut WorkerConfig),
    ) -> Self {
        let group = self.spec.name;
        self.consume_as(group, stream.into(), handler, adjust)
    }

    /// Like [`Service::consume`], in the consumer group `group` instead of
    /// the service's: for work on the same entries that must neither wait
    /// for the service's own handling nor hold it up (webhooks of the
    /// outcomes the service counts).
    pub fn consume_in_group<H: Handler>(
        self,
        group: &str,
        stream: impl Into<Partitioned>,
        handler: H,
    ) -> Self {
        self.consume_as(group, stream.into(), handler, |_| {})
    }

    fn consume_as<H: Handler>(
        mut self,
        group: &str,
        stream: Partitioned,
        handler: H,
        adjust: impl Fn(&mut WorkerConfig),
    ) -> Self {
        let handler = Arc::new(handler);
        let partitions = stream.partitions().len();
        for partition in stream.partitions() {
            let mut config = self.streams.worker_config(partition, group, &self.consumer);
            adjust(&mut config);
            config.concurrency = config.concurrency.div_ceil(partitions);
            config.batch_size = config.batch_size.min(config.concurrency);
            let worker = Worker::new(self.target.clone(), config);
            let run = worker.run(handler.clone(), self.stop.clone());
            self.tasks.push(Box::pin(run));
        }
        self
    }

    /// Trims `streams` (every partition of each) every ten seconds, never
    /// past an entry that some group still needs. A stream is best trimmed
    /// by the one service that produces or last reads it, and by one of
    /// its instances at a time (under the lease `<service>:trim`).
    pub fn trim<S: Into<Partitioned> + Clone>(mut self, streams: &[S]) -> Self {
        let streams = streams
            .iter()
            .flat_map(|stream| stream.clone().into().partitions().to_vec())
            .collect();
        let trim = eventstore::trim::run_trimmer(
            self.redis.clone(),
            streams,
            Duration::from_secs(10),
            self.lease("trim"),
            self.stop.clone(),
        );
        self.tasks.push(Box::pin(trim));
        self
    }

    /// Runs a task of the service's own beside its workers: `task` is
    /// given the shutdown token and must end soon after it is cancelled.
    pub fn spawn<F>(mut self, task: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(Box::pin(task(self.stop.clone())));
        self
    }

    /// The lease `<service>:<task>` held as this instance: for work that
    /// one instance does for all of them (see [`eventstore::lease`]).
    pub fn lease(&self, task: &str) -> Lease {
        Lease::new(
            self.redis.clone(),
            &format!("{}:{task}", self.spec.name),
            &self.consumer,
            Duration::from_millis(self.streams.task_lease_ms),
        )
    }

    /// The lease `name` held as this instance, shared with every service
    /// that takes it by that name (not `<service>:` prefixed): for work one
    /// instance of any of them does at a time ([`crate::pace::WINDOW`]).
    pub fn shared_lease(&self, name: &str) -> Lease {
        Lease::new(
            self.redis.clone(),
            name,
            &self.consumer,
            Duration::from_millis(self.streams.task_lease_ms),
        )
    }

    /// Runs `round` every `every`, in one instance of the service at a
    /// time: the one holding the lease `<service>:<task>`. Another takes
    /// over within the lease's time to live when it dies. A round may be
    /// cut short when the lease is lost, and must be safe to cut.
    pub fn once_per_cluster<F, Fut>(mut self, task: &str, every: Duration, round: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rounds = self.lease(task).run_rounds(every, round, self.stop.clone());
        self.tasks.push(Box::pin(rounds));
        self
    }

    /// Takes requests from any page on `route` (a pattern of the routes
    /// served, `/unsubscribe/{token}`): see [`Site::open_to_every_page`].
    pub fn open_to_every_page(mut self, route: &str) -> Self {
        self.site = self.site.open_to_every_page(route);
        self
    }

    /// Takes writes on `route` (a pattern of the routes served) from the
    /// pages of the allowed origins: see [`Site::writable_from_allowed_origins`].
    pub fn writable_from_allowed_origins(mut self, route: &str) -> Self {
        self.site = self.site.writable_from_allowed_origins(route);
        self
    }

    /// Lets requests to `route` (a pattern of the routes served) take as
    /// long as their body takes to come: see [`Limits::untimed_routes`].
    pub fn untimed(mut self, route: &str) -> Self {
        self.limits.untimed_routes.push(route.to_string());
        self
    }

    /// Runs the reads (`GET`, `HEAD`) of `routes` (patterns of the routes
    /// served) on a thread of the idle priority, beside the runtime of the
    /// stream handlers: a route that readers may call as fast as they are
    /// answered then takes only the time the pipeline leaves. These
    /// routes' handlers must reach Redis through [`Service::routes_redis`]
    /// and the database through [`Service::reads`] only: a connection
    /// opened on that thread is driven by it.
    pub fn read_at_idle_priority(mut self, routes: &[&str]) -> Self {
        self.idle_routes.extend(routes.iter().map(ToString::to_string));
        self
    }

    /// Lets pages of the origin of `url` call this service, and read its
    /// answers: see [`Site::allow_origin_of`].
    pub fn allow_origin_of(mut self, url: &str) -> Self {
        self.site = self.site.allow_origin_of(url);
        self
    }

    /// Serves `routes`, documented by `document`, beside `/health`,
    /// `/ready`, `/metrics` and the documentation routes; all but the
    /// health routes within the settings' [`Capacity`].
    pub fn serve(mut self, routes: Router, document: Document) -> Self {
        self.routes = routes;
        self.document = document;
        self
    }

    /// Starts the workers and tasks, serves HTTP until `shutdown`, then
    /// waits for every task to finish what it holds.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            spec,
            redis,
            db,
            listener,
            port,
            site,
            limits,
            stop,
            tasks,
            routes,
            document,
            capacity,
            idle_routes,
            ..
        } = self;
        // However `run` ends, everything it started stops.
        let _stop_on_return = stop.clone().drop_guard();
        let forward = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => forward.cancel(),
                () = forward.cancelled() => {}
            }
        });
        let mut running = JoinSet::new();
        for task in tasks {
            running.spawn(task);
        }

        // The health routes stay outside the bound: a busy service still
        // says that it lives.
        let app = capacity::bound(
            routes.merge(crate::openapi::routes(document)),
            capacity,
            &idle_routes,
        )?
        .merge(health_routes(Dependencies { redis, db }));
        tracing::info!(port, "{} ready", spec.name);
        crate::http::serve_with(listener, app, stop.clone(), limits, site).await;
        stop.cancel();
        while let Some(ended) = running.join_next().await {
            if let Err(error) = ended {
                tracing::error!(%error, service = spec.name, "a task of the service failed");
            }
        }
        Ok(())
    }
}

/// `<service>@<host>:<port>-<pid>-<random>`: see [`Service::consumer`].
fn consumer_name(service: &str, port: u16) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().to_string())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "localhost".into());
    eventstore::unique_consumer_name(&format!("{service}@{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::consumer_name;

    #[test]
    fn two_instances_on_one_host_and_port_get_names_of_their_own() {
        let (first, second) = (
            consumer_name("demo-service", 8080),
            consumer_name("demo-service", 8080),
        );
        assert_ne!(first, second);
        for name in [&first, &second] {
            assert!(name.starts_with("demo-service@"), "{name}");
            assert!(name.contains(&format!(":8080-{}-", std::process::id())), "{name}");
        }
    }
}
