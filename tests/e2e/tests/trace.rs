//! One campaign can be followed across the four services' logs: every
//! entry it causes carries a W3C traceparent whose trace id is the one of
//! the `traceparent` its creating request came with, or else the
//! campaign's id; every log line about an entry carries that trace.

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
    assert_traced_everywhere(&stack, &id.replace('-', ""));

    // A caller's trace goes on through comms.
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = ureq::post(&format!(
        "http://127.0.0.1:{}/api/v1/campaigns",
        stack.port("campaign-service")
    ))
    .set("traceparent", &format!("00-{trace_id}-b7ad6b7169203331-01"))
    .send_json(serde_json::json!({ "name": "in a trace", "subject": "Hi", "body": "Dear {{ name }}" }))
    .expect("201");
    let answered = response.header("traceparent").expect("a traceparent").to_string();
    assert!(answered.starts_with(&format!("00-{trace_id}-")), "{answered}");
    let campaign: serde_json::Value = response.into_json().unwrap();
    let id = campaign["id"].as_str().unwrap();
    stack.wait_completed(id, Duration::from_secs(60));
    assert_traced_everywhere(&stack, trace_id);
    let created = stack
        .log("campaign-service")
        .lines()
        .filter(|line| line.contains("campaign created") && line.contains(id))
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(
        // (The log may colour `trace` and `=` apart.)
        created.len() == 1 && created[0].contains("trace") && created[0].contains(&answered),
        "the creation line carries the trace: {created:?}"
    );
}

/// Asserts that each service logged a handled entry in trace `trace_id`,
/// and email-service one `email.requested` per user.
fn assert_traced_everywhere(stack: &Stack, trace_id: &str) {
    for service in [
        "user-service",
        "notification-service",
        "email-service",
        "campaign-service",
    ] {
        let log = stack.log(service);
        let traced = log
            .lines()
            .filter(|line| line.contains(trace_id) && line.contains("handled"))
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
        .filter(|line| line.contains(trace_id) && line.contains("email.requested"))
        .count();
    assert_eq!(traced_emails as u64, USERS, "one traced line per email request");
}
