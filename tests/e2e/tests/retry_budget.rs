//! Transient SMTP trouble is retried for a time, not for a number of
//! deliveries; when that time is spent, every notification still ends in
//! an outcome the campaign counts.

use std::time::Duration;

use e2e::{all_sent, Stack};
use serde_json::json;
use testkit::{SinkMode, SmtpSink};

const USERS: u64 = 100;

/// A stack whose SMTP server refuses every recipient for now (a 4xx),
/// whose entries are retried after 500 ms, with the setting `extra`; and
/// a campaign created on it.
fn refused_campaign(extra: (&str, &str)) -> (SmtpSink, Stack, String) {
    let refusing = SmtpSink::start(SinkMode::SoftReject);
    let stack = Stack::start_with(
        USERS,
        vec![
            ("SMTP_PORT".into(), refusing.port().to_string()),
            ("CLAIM_IDLE_MS".into(), "500".into()),
            (extra.0.into(), extra.1.into()),
        ],
    );
    let id = stack.create_campaign("budget", "Hi {{ name }}", "Dear {{ name }}");
    (refusing, stack, id)
}

#[test]
fn refusals_for_longer_than_the_delivery_limit_still_end_in_sends() {
    // Retries are not deliveries that never answered: a limit of two must
    // not end them.
    let (refusing, stack, id) = refused_campaign(("MAX_DELIVERIES", "2"));
    // Long enough for several backoffs (0.5 s, 1 s, 2 s, ...).
    std::thread::sleep(Duration::from_secs(6));
    let during = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
    assert_eq!(during["progress"]["failed"], 0, "{during}");
    // The campaign's progress is in campaign-service's gauges meanwhile.
    let users = USERS as f64;
    let gauge = |status: &str| {
        stack.metric(
            "campaign-service",
            &format!(r#"comms_campaign_notifications{{status="{status}"}}"#),
        )
    };
    assert_eq!(gauge("pending"), Some(users), "{during}");
    assert_eq!(gauge("sent"), Some(0.0));
    let _accepting = refusing.recover();
    let campaign = stack.wait_completed(&id, Duration::from_secs(90));
    assert_eq!(campaign["progress"], all_sent(USERS));
    // Every email settled after a retry is counted as retried once.
    let retried = stack
        .metric(
            "email-service",
            r#"comms_events_retried_total{stream="comms:emails",group="email-service"}"#,
        )
        .expect("email-service counts retried entries");
    assert!((1.0..=users).contains(&retried), "{retried}");
    // Completed, the campaign leaves the gauges (refreshed every second).
    let start = std::time::Instant::now();
    while gauge("pending") != Some(0.0) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            gauge("pending")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_spent_retry_budget_fails_each_notification_visibly() {
    let (_refusing, stack, id) = refused_campaign(("RETRY_BUDGET_SECS", "3"));
    let campaign = stack.wait_completed(&id, Duration::from_secs(90));
    assert_eq!(
        campaign["progress"],
        json!({ "total": USERS, "sent": 0, "failed": 0, "dead_lettered": USERS, "suppressed": 0, "cancelled": 0, "pending": 0 }),
        "every notification has an outcome, shown as dead-lettered: the campaign completes"
    );
    // Listed with why, a page at a time.
    let path = format!("/api/v1/campaigns/{id}/failures?limit=60");
    let first = stack.get("campaign-service", &path);
    let next = first["next_after"].as_str().expect("a second page").to_string();
    let second = stack.get("campaign-service", &format!("{path}&after={next}"));
    assert_eq!(second["next_after"], serde_json::Value::Null, "{second}");
    let listed: Vec<&serde_json::Value> = first["failures"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["failures"].as_array().unwrap())
        .collect();
    assert_eq!(listed.len() as u64, USERS);
    for failure in listed {
        assert_eq!(failure["status"], "dead_lettered", "{failure}");
        assert!(
            failure["recipient"].as_str().is_some_and(|r| r.contains('@')),
            "{failure}"
        );
        assert!(
            failure["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("dead-lettered: ")),
            "{failure}"
        );
    }
    let notification_id = contracts::notification_id(&id, 1);
    let start = std::time::Instant::now();
    let notification = loop {
        let notification = stack.get(
            "notification-service",
            &format!("/api/v1/notifications/{notification_id}"),
        );
        if notification["status"] == "dead_lettered" || start.elapsed() > Duration::from_secs(30) {
            break notification;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let detail = notification["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("dead-lettered: ")
            && detail.contains("(retry budget 3s)")
            && detail.ends_with("transient error (450): 4.3.0 Error: command failed"),
        "the reason says it was given up, with the server's last reply: {notification}"
    );
    let emails = stack.stream_figures("comms:emails");
    assert_eq!(emails["dead_letters"], USERS, "{emails}");
}
