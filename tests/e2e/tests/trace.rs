//! One campaign can be followed across the four services' logs: every
//! entry it causes carries a W3C traceparent whose trace id is the
//! campaign's id, and every log line about an entry carries that trace.

use std::time::Duration;

use e2e::Stack;

const USERS: u64 = 20;

#[test]
fn a_campaigns_trace_id_is_in_every_services_log() {
    let stack = Stack::start_with(
        USERS,
        // The worker logs each handled entry at debug level.
        vec![("RUST_LOG".into(), "info,eventstore=debug".into())],
    );
    let id = stack.create_campaign("traced", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_completed(&id, Duration::from_secs(60));
    let trace_id = id.replace('-', "");
    for service in [
        "user-service",
        "notification-service",
        "email-service",
        "campaign-service",
    ] {
        let log = stack.log(service);
        let traced = log
            .lines()
            .filter(|line| line.contains(&trace_id) && line.contains("handled"))
            .count();
        assert!(
            traced > 0,
            "{service} logged no handled entry with trace id {trace_id}:\n{}",
            log.lines().rev().take(10).collect::<Vec<_>>().join("\n")
        );
    }
    let emails = stack.log("email-service");
    let traced_emails = emails
        .lines()
        .filter(|line| line.contains(&trace_id) && line.contains("email.requested"))
        .count();
    assert_eq!(traced_emails as u64, USERS, "one traced line per email request");
}
