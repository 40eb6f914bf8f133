//! The shared scaffolding of the comms services, so that each service's own
//! crate holds only its domain: what it stores, what it consumes, what it
//! publishes.

pub mod access;
pub mod batch;
pub mod config;
pub mod db;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod service;
pub mod shutdown;
pub mod streams;
pub mod telemetry;
pub mod vault;

/// This instance's consumer name in its service's group:
/// `<service>@<host>:<http port>`. It is unique among live instances (two
/// instances cannot share a port on one host) and stable across restarts, so
/// a restarted instance first re-reads the entries it held when it died.
pub fn consumer_name(service: &str, port: u16) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().to_string())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{service}@{host}:{port}")
}

/// Milliseconds since the Unix epoch: how the services store times, the
/// same in SQLite and PostgreSQL.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Connects to Redis at start, or fails with one line naming the target
/// (the password redacted).
pub async fn connect_redis(
    url: &str,
) -> anyhow::Result<(eventstore::RedisTarget, eventstore::ConnectionManager)> {
    let target = eventstore::RedisTarget::parse(url)?;
    let conn = target.shared().await?;
    Ok((target, conn))
}

/// Trims `streams` every ten seconds until `shutdown`, never past an entry
/// that some group still needs.
pub fn spawn_trimmer(
    conn: eventstore::ConnectionManager,
    streams: &[&str],
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let streams = streams.iter().map(|s| s.to_string()).collect();
    tokio::spawn(eventstore::trim::run_trimmer(
        conn,
        streams,
        std::time::Duration::from_secs(10),
        shutdown,
    ))
}
