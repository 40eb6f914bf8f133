//! What every service's `main` does: telemetry on, a shutdown token
//! cancelled by SIGTERM or SIGINT, the service run until then, and any
//! error printed in one line with its causes and turned into exit code 1;
//! and what runs until then, the same in every service: its configuration
//! loaded, the service built from it and run.

use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::{load_service, ServiceConfig};
use crate::service::Service;

/// Runs `run` as the process `name` (e.g. `campaign-service`), which
/// prefixes the one line of an error.
pub async fn run<F, Fut>(name: &str, run: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    crate::telemetry::init();
    let shutdown = crate::shutdown::on_signal();
    match run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every service's `run`: its configuration `C` loaded
/// ([`load_service`]), the service built from it by `build`, and run until
/// `shutdown`.
pub async fn load_build_run<C, F, Fut>(build: F, shutdown: CancellationToken) -> anyhow::Result<()>
where
    C: ServiceConfig,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<Service>>,
{
    build(load_service::<C>().await?).await?.run(shutdown).await
}
