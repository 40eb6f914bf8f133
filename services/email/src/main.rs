//! The email-service binary. One thread: the service needs well under a
//! core, and a single-threaded runtime wakes its tasks without the cross-thread
//! hand-offs that dominated its profile (`bench/campaign.sh`).

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    servicekit::telemetry::init();
    let shutdown = servicekit::shutdown::on_signal();
    match email_service::run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("email-service: {error:#}");
            ExitCode::FAILURE
        }
    }
}
