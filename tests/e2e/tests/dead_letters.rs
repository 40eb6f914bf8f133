//! Poison in a service's stream is dead-lettered, shown by the API, and
//! never blocks the campaign behind it.

use std::time::{Duration, Instant};

use e2e::Stack;
use serde_json::{json, Value};

fn dead_letters(stack: &Stack) -> Vec<Value> {
    stack.get("campaign-service", "/api/v1/dead-letters?stream=comms:emails")["dead_letters"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn poison_is_dead_lettered_listed_and_replayable_and_blocks_nothing() {
    let stack = Stack::start(100);
    stack
        .redis
        .node()
        .command(&["XADD", "comms:emails", "*", "garbage", "yes"]);
    stack.redis.node().command(&[
        "XADD",
        "comms:emails",
        "*",
        "type",
        "email.requested",
        "v",
        "99",
        "id",
        "x",
        "time",
        "1",
        "payload",
        "{}",
    ]);

    let id = stack.create_campaign("after poison", "Hi {{ name }}", "Dear {{ name }}");
    let campaign = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(campaign["progress"]["sent"], 100);

    let start = Instant::now();
    let letters = loop {
        let letters = dead_letters(&stack);
        if letters.len() == 2 || start.elapsed() > Duration::from_secs(20) {
            break letters;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(letters.len(), 2, "{letters:?}");
    let reasons: Vec<&str> = letters
        .iter()
        .map(|letter| letter["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].contains("missing field `type`"), "{reasons:?}");
    assert!(reasons[1].contains("unsupported version 99"), "{reasons:?}");
    assert!(letters.iter().all(|letter| letter["group"] == "email-service"));

    let emails = stack.stream_figures("comms:emails");
    assert_eq!(emails["dead_letters"], 2);
    assert_eq!(emails["groups"][0]["dead_lettered"], 2);
    assert_eq!(emails["groups"][0]["pending"], 0);
    assert_eq!(
        stack.metric(
            "email-service",
            r#"comms_events_dead_lettered_total{stream="comms:emails",group="email-service"}"#
        ),
        Some(2.0)
    );

    // A replay puts it back in its stream; still poison, it comes back.
    let id = letters[0]["id"].as_str().unwrap();
    let (status, replayed) = stack.post(
        "campaign-service",
        &format!("/api/v1/dead-letters/replay?stream=comms:emails&id={id}"),
        &json!({}),
    );
    assert_eq!(status, 200, "{replayed}");
    let (status, _) = stack.post(
        "campaign-service",
        &format!("/api/v1/dead-letters/replay?stream=comms:emails&id={id}"),
        &json!({}),
    );
    assert_eq!(status, 404, "a dead letter is replayed once");
    let start = Instant::now();
    while dead_letters(&stack)
        .iter()
        .all(|letter| letter["id"] == id || letter["reason"] != letters[0]["reason"])
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the replayed poison did not come back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_request_given_up_by_notification_service_ends_dead_lettered() {
    let stack = Stack::start_with(
        10,
        vec![
            ("RETRY_BUDGET_SECS".into(), "2".into()),
            ("CLAIM_IDLE_MS".into(), "300".into()),
        ],
    );
    // A request for a campaign whose templates never arrive: retried
    // ("not known yet") until its budget is spent, then given up.
    let notification_id = contracts::notification_id("ghost", 1);
    let payload = json!({
        "notification_id": notification_id,
        "campaign_id": "ghost",
        "user_id": 1,
        "email": "ghost@example.com",
        "name": "Ghost",
    })
    .to_string();
    stack.redis.node().command(&[
        "XADD",
        "comms:notifications",
        "*",
        "type",
        "notification.requested",
        "v",
        "2",
        "id",
        &notification_id,
        "time",
        "1",
        "payload",
        &payload,
    ]);
    let start = Instant::now();
    let notification = loop {
        // 404 until notification-service has recorded the request.
        let (_, notification) = stack.call(
            "GET",
            "notification-service",
            &format!("/api/v1/notifications/{notification_id}"),
            None,
            None,
        );
        if notification["status"] == "dead_lettered" || start.elapsed() > Duration::from_secs(30) {
            break notification;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(notification["status"], "dead_lettered", "{notification}");
    let detail = notification["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("dead-lettered: ")
            && detail.contains("the templates of campaign ghost are not known yet"),
        "{notification}"
    );
    let letters = stack.get(
        "campaign-service",
        "/api/v1/dead-letters?stream=comms:notifications",
    );
    assert_eq!(
        letters["dead_letters"].as_array().map(Vec::len),
        Some(1),
        "{letters}"
    );
    assert_eq!(letters["next_after"], Value::Null, "{letters}");
    let labels = r#"{stream="comms:notifications",group="notification-service"}"#;
    assert_eq!(
        stack.metric(
            "notification-service",
            &format!("comms_events_dead_lettered_total{labels}")
        ),
        Some(1.0)
    );
    assert_eq!(
        stack.metric(
            "notification-service",
            &format!("comms_events_retried_total{labels}")
        ),
        Some(1.0),
        "given up after retries"
    );
}
