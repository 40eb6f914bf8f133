use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    servicekit::telemetry::init();
    let shutdown = servicekit::shutdown::on_signal();
    match user_service::run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("user-service: {error:#}");
            ExitCode::FAILURE
        }
    }
}
