//! Real servers for tests (Redis, a Redis Cluster, SMTP, PostgreSQL, OpenBao, a webhook endpoint), each on a
//! free loopback port in a directory of its own, stopped when dropped.
//! Nothing here fakes a server: tests talk to the same servers a deployment
//! runs. Beside them, what tests of a service share: its own Redis and
//! directory when it runs in-process ([`ServiceHome`]), HTTP requests
//! whose every status is an answer ([`http`]), and the plan of a query
//! ([`query_plan`]).

mod accept;
mod chaos_smtp;
pub mod http;
mod maildev;
mod openbao;
mod plan;
mod postgres;
pub mod ready;
mod redis_cluster;
mod redis_server;
mod service_home;
mod slow_smtp;
mod smtp_sink;
mod throttling_smtp;
mod webhook_receiver;

pub use chaos_smtp::ChaosSmtp;
pub use maildev::MailDev;
pub use openbao::OpenBao;
pub use plan::query_plan;
pub use postgres::Postgres;
pub use redis_cluster::RedisCluster;
pub use redis_server::{Persistence, RedisServer, MAXMEMORY};
pub use service_home::ServiceHome;
pub use slow_smtp::{serve_session, Answer, SlowSmtp};
pub use smtp_sink::{SinkMode, SmtpSink};
pub use throttling_smtp::ThrottlingSmtp;
pub use webhook_receiver::{Received, Reply, WebhookReceiver};

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

/// A TCP port on 127.0.0.1 that was free a moment ago, and that this
/// process has not been given before: tests run in parallel in one
/// process, and a port handed to one stack (not yet bound by its server)
/// must not be handed to another, whose server would then answer the
/// first stack's readiness checks.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Mutex::default);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("no free loopback port");
        if given.lock().expect("ports given").insert(port) {
            return port;
        }
    }
}
