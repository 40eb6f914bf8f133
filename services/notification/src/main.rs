use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    servicekit::telemetry::init();
    let shutdown = servicekit::shutdown::on_signal();
    match notification_service::run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("notification-service: {error:#}");
            ExitCode::FAILURE
        }
    }
}
