//! A campaign's templates travel once and render within bounds: recipients'
//! requests carry no templates, and a template too costly for some
//! recipients fails their notifications with the reason while
//! notification-service keeps answering.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use contracts::{notification_id, NOTIFICATIONS};
use e2e::Stack;
use serde_json::{json, Value};

/// The first entry of `stream` as `(field, value)` pairs, read with
/// `redis-cli`.
fn first_entry(stack: &Stack, stream: &str) -> Vec<(String, String)> {
    let output = Command::new("redis-cli")
        .args(["-p", &stack.redis.node().port().to_string(), "--raw"])
        .args(["XRANGE", stream, "-", "+", "COUNT", "1"])
        .output()
        .expect("redis-cli runs");
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    lines
        .chunks(2)
        .map(|pair| (pair[0].to_string(), pair[1].to_string()))
        .collect()
}

fn create(stack: &Stack, subject: &str, body: &str) -> String {
    stack.create_campaign("templates", subject, body)
}

#[test]
fn notification_requests_carry_no_templates() {
    const USERS: u64 = 200;
    let mut stack = Stack::start(USERS);
    // Nothing consumes the requests while notification-service is down, so
    // they stay in the stream to be read.
    stack.kill("notification-service");
    let id = create(
        &stack,
        "Hello {{ name }}",
        "Dear {{ name }}, this goes to {{ email }}.",
    );
    let start = Instant::now();
    while stack.entries_added(NOTIFICATIONS) < USERS {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", stack.log_tails());
        std::thread::sleep(Duration::from_millis(50));
    }
    let fields = first_entry(&stack, NOTIFICATIONS);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
    };
    assert_eq!(field("type"), "notification.requested");
    assert_eq!(field("v"), "2");
    let payload: Value = serde_json::from_str(&field("payload")).unwrap();
    let keys: BTreeSet<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["campaign_id", "email", "name", "notification_id", "user_id"]),
        "{payload}"
    );

    // Started again, notification-service finds the templates in the
    // campaign's announcement and renders every email.
    stack.start_service("notification-service");
    let campaign = stack.wait_completed(&id, Duration::from_secs(120));
    assert_eq!(campaign["progress"]["sent"], USERS);
    let email = &stack.emails()[0];
    let to = &email["to"][0];
    assert_eq!(
        email["subject"].as_str().unwrap(),
        format!("Hello {}", to["name"].as_str().unwrap())
    );
}

#[test]
fn a_template_too_costly_for_some_recipients_fails_them_and_health_answers() {
    const USERS: u64 = 30;
    let stack = Stack::start(USERS);
    // Cheap for the sample recipient of the creation check, 10^6
    // iterations for everyone else.
    let chars = "x".repeat(1000);
    let body = format!("{{% if name != \"Ada Lovelace\" %}}{{% for i in '{chars}' %}}{{% for j in '{chars}' %}}{{% endfor %}}{{% endfor %}}{{% endif %}}Dear {{{{ name }}}}");
    let id = create(&stack, "Hello {{ name }}", &body);

    let health = format!("http://127.0.0.1:{}/health", stack.port("notification-service"));
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    let start = Instant::now();
    let campaign = loop {
        if let Err(error) = agent.get(&health).call() {
            panic!(
                "notification-service /health did not answer: {error}\n{}",
                stack.log_tails()
            );
        }
        let campaign = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
        if campaign["status"] == "completed" {
            break campaign;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "campaign not completed: {campaign}\n{}",
            stack.log_tails()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        campaign["progress"],
        json!({ "total": USERS, "sent": 0, "failed": USERS, "dead_lettered": 0, "suppressed": 0, "cancelled": 0, "pending": 0 })
    );
    let notification = stack.get(
        "notification-service",
        &format!("/api/v1/notifications/{}", notification_id(&id, 1)),
    );
    assert_eq!(notification["status"], "failed");
    let detail = notification["detail"].as_str().unwrap();
    assert!(detail.contains("body is too costly to render"), "{detail}");
    assert!(stack.emails().is_empty());
}
