//! The email-service binary. One thread: the service needs well under a
//! core, and a single-threaded runtime wakes its tasks without the cross-thread
//! hand-offs that dominated its profile (`bench/campaign.sh`).

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    servicekit::binary::run("email-service", email_service::run).await
}
