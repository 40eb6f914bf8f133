//! How email-service treats a mail server that refuses: a permanent (5xx)
//! refusal of a recipient is a final `failed` with the server's reply; a
//! transient (4xx) one is retried until the server accepts; a refusal of
//! our sender (a 5xx to `MAIL FROM`) is nobody's final outcome.

use std::time::Duration;

use e2e::{all_sent, Stack};
use serde_json::json;
use testkit::{Answer, SinkMode, SlowSmtp, SmtpSink};

const USERS: u64 = 200;

#[test]
fn a_permanent_refusal_is_a_final_failure_with_the_servers_reply() {
    let sink = SmtpSink::start(SinkMode::HardReject);
    let stack = Stack::start_with(USERS, vec![("SMTP_PORT".into(), sink.port().to_string())]);
    let id = stack.create_campaign("refusals", "Hi {{ name }}", "Dear {{ name }}");
    let campaign = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(
        campaign["progress"],
        json!({ "total": USERS, "sent": 0, "failed": USERS, "dead_lettered": 0, "suppressed": 0, "cancelled": 0, "pending": 0 })
    );
    // notification-service reads the same outcomes in its own group, at
    // its own pace.
    let counts = stack.notification_counts(&id, &json!({ "failed": USERS }), Duration::from_secs(30));
    assert_eq!(counts, json!({ "failed": USERS }));
    let notification_id = contracts::notification_id(&id, 1);
    let notification = stack.get(
        "notification-service",
        &format!("/api/v1/notifications/{notification_id}"),
    );
    assert_eq!(notification["status"], "failed");
    let detail = notification["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("permanent error (500): 5.3.0"),
        "the server's reply is kept: {detail}"
    );
}

#[test]
fn a_transient_refusal_is_retried_until_the_server_accepts() {
    let refusing = SmtpSink::start(SinkMode::SoftReject);
    let stack = Stack::start_with(USERS, vec![("SMTP_PORT".into(), refusing.port().to_string())]);
    let id = stack.create_campaign("refusals", "Hi {{ name }}", "Dear {{ name }}");
    // Every attempt is refused for a while...
    std::thread::sleep(Duration::from_secs(3));
    let during = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
    assert_eq!(during["progress"]["sent"], 0, "{during}");
    assert_eq!(
        during["progress"]["failed"], 0,
        "a 4xx is not a final failure: {during}"
    );
    // ...then the server recovers, on the same port.
    let _accepting = refusing.recover();
    let campaign = stack.wait_completed(&id, Duration::from_secs(90));
    assert_eq!(campaign["progress"], all_sent(USERS));
}

#[test]
fn a_refused_sender_fails_no_recipient() {
    // Fewer than email-service's slots: every request is tried at once.
    const USERS: u64 = 20;
    // 530: the server wants a login this sender does not give.
    let refusing = SlowSmtp::answering(Answer::RefuseSender(530));
    let stack = Stack::start_with(USERS, vec![("SMTP_PORT".into(), refusing.port().to_string())]);
    let id = stack.create_campaign("refused sender", "Hi {{ name }}", "Dear {{ name }}");
    // Twice as many refusals as emails: each tried, refused, and retried.
    let refusals = r#"comms_emails_total{outcome="connection"}"#;
    let start = std::time::Instant::now();
    while stack.metric("email-service", refusals).unwrap_or(0.0) < 2.0 * USERS as f64 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "every email refused twice\n{}",
            stack.log_tails()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let during = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
    assert_eq!(
        during["progress"],
        json!({ "total": USERS, "sent": 0, "failed": 0, "dead_lettered": 0, "suppressed": 0, "cancelled": 0, "pending": USERS }),
        "a refused sender is retried, not a recipient's failure"
    );
    assert!(refusing.message_ids().is_empty());
}
