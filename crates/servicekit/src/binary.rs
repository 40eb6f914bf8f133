//! What every service's `main` does: telemetry on, a shutdown token
//! cancelled by SIGTERM or SIGINT, the service run until then, and any
//! error printed in one line with its causes and turned into exit code 1.

use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

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
