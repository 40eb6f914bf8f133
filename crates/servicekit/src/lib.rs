//! The shared scaffolding of the comms services, so that each service's own
//! crate holds only its domain: what it stores, what it consumes, what it
//! publishes.

pub mod access;
pub mod app_env;
pub mod batch;
pub mod binary;
pub mod config;
pub mod db;
pub mod erasure;
pub mod examples;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod pace;
mod priority;
pub mod service;
pub mod shutdown;
pub mod streams;
pub mod suppressed;
pub mod telemetry;
pub mod vault;
mod withheld;

/// Milliseconds since the Unix epoch: how the services store times, the
/// same in SQLite and PostgreSQL.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
