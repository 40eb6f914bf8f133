//! A campaign end to end: every seeded user gets exactly one email, and the
//! campaign reports exact counts; then the same with each worker service
//! SIGKILLed once mid-campaign.

use std::time::{Duration, Instant};

use e2e::mailbox::{check_mailbox, create_campaign, users};
use e2e::{all_sent, Stack};
use serde_json::json;

const USERS: u64 = 3_000;

#[test]
fn a_campaign_emails_every_user_exactly_once_with_exact_counts() {
    let stack = Stack::start(USERS);
    let users = users(&stack);
    assert_eq!(users.len() as u64, USERS);

    let (status, error) = stack.post(
        "campaign-service",
        "/api/v1/campaigns",
        &json!({ "name": "n", "subject": "s" }),
    );
    assert_eq!(status, 400, "no body, and no HTML to derive it from: {error}");
    assert_eq!(error["error"], "body is required unless html is given", "{error}");
    let (status, error) = stack.post(
        "campaign-service",
        "/api/v1/campaigns",
        &json!({ "name": "n", "subject": 1, "body": "b" }),
    );
    assert_eq!(status, 422, "a body of the wrong shape: {error}");

    let id = create_campaign(&stack);
    let campaign = stack.wait_completed(&id, Duration::from_secs(180));
    assert_eq!(campaign["progress"], all_sent(USERS));
    assert_eq!(check_mailbox(&stack, &users), 0, "no duplicate without a crash");

    // The notification records agree.
    let counts = stack.notification_counts(&id, &json!({ "sent": USERS }), Duration::from_secs(60));
    assert_eq!(counts, json!({ "sent": USERS }));

    // And so do the metrics of each service.
    let users_f = USERS as f64;
    for (service, series, expected) in [
        ("email-service", r#"comms_emails_total{outcome="sent"}"#, users_f),
        (
            "email-service",
            r#"comms_events_handled_total{stream="comms:emails",group="email-service"}"#,
            users_f,
        ),
        ("email-service", "comms_smtp_send_seconds_count", users_f),
        (
            "notification-service",
            r#"comms_events_handled_total{stream="comms:notifications",group="notification-service"}"#,
            users_f,
        ),
        (
            "campaign-service",
            r#"comms_campaign_outcomes_total{status="sent"}"#,
            users_f,
        ),
        (
            "campaign-service",
            r#"comms_http_request_seconds_count{method="POST",route="/api/v1/campaigns",status="201"}"#,
            1.0,
        ),
    ] {
        assert_eq!(
            stack.metric(service, series),
            Some(expected),
            "{service}: {series}"
        );
    }
}

#[test]
fn every_service_runs_on_postgresql_through_the_same_code() {
    let postgres = testkit::Postgres::start();
    let env = ["campaign", "user", "notification", "email"]
        .into_iter()
        .map(|service| {
            (
                format!("{}_DATABASE_URL", service.to_uppercase()),
                postgres.database(service),
            )
        })
        .collect();
    let stack = Stack::start_with(1_000, env);
    let users = users(&stack);
    assert_eq!(users.len(), 1_000);
    let id = create_campaign(&stack);
    let campaign = stack.wait_completed(&id, Duration::from_secs(120));
    assert_eq!(campaign["progress"], all_sent(1_000));
    assert_eq!(check_mailbox(&stack, &users), 0);
    let counts = stack.notification_counts(&id, &json!({ "sent": 1_000 }), Duration::from_secs(60));
    assert_eq!(counts, json!({ "sent": 1_000 }));
}

#[test]
fn killing_each_worker_service_mid_campaign_loses_nobody() {
    let mut stack = Stack::start(USERS);
    let users = users(&stack);
    let id = create_campaign(&stack);

    let wait_for_emails = |stack: &Stack, at_least: usize| {
        let start = Instant::now();
        while stack.emails().len() < at_least {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "stalled before {at_least} emails\n{}",
                stack.log_tails()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    for (service, after_emails) in [
        ("user-service", 1),
        ("notification-service", 1_000),
        ("email-service", 2_000),
    ] {
        wait_for_emails(&stack, after_emails);
        stack.kill(service);
        std::thread::sleep(Duration::from_millis(300));
        stack.start_service(service);
    }

    let campaign = stack.wait_completed(&id, Duration::from_secs(180));
    assert_eq!(campaign["progress"], all_sent(USERS));
    let duplicates = check_mailbox(&stack, &users);
    println!("duplicates after three SIGKILLs: {duplicates} (each with the same Message-ID as its original)");
}
