//! Structured logs through `tracing`: human-readable by default, one JSON
//! object per line with `LOG_FORMAT=json`; the level comes from `RUST_LOG`
//! (default `info`). And the metrics recorder ([`crate::metrics`]), so that
//! nothing recorded before the HTTP server starts is lost.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber and the metrics recorder; call once at
/// the top of `main`.
pub fn init() {
    crate::metrics::handle();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.compact().init();
    }
}
