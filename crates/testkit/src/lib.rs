//! Real servers for tests (Redis, SMTP, PostgreSQL, OpenBao), each on a
//! free loopback port in a directory of its own, stopped when dropped.
//! Nothing here fakes a server: tests talk to the same servers a deployment
//! runs.

mod maildev;
mod openbao;
mod postgres;
pub mod ready;
mod redis_server;
mod slow_smtp;
mod smtp_sink;

pub use maildev::MailDev;
pub use openbao::OpenBao;
pub use postgres::Postgres;
pub use redis_server::{Persistence, RedisServer};
pub use slow_smtp::{serve_session, Answer, SlowSmtp};
pub use smtp_sink::{SinkMode, SmtpSink};

use std::net::TcpListener;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("no free loopback port")
}
