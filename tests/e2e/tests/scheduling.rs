//! A scheduled campaign across a restart: campaign-service is killed while
//! the campaign waits and comes back after its `send_at` has passed; the
//! campaign starts then, says how late, and emails every user once.

use std::time::Duration;

use e2e::Stack;
use serde_json::json;

const USERS: u64 = 40;

#[test]
fn a_campaign_whose_time_passed_while_campaign_service_was_down_starts_late_and_sends_once() {
    let mut stack = Stack::start(USERS);
    let send_at = time::OffsetDateTime::now_utc() + Duration::from_secs(3);
    let body = json!({
        "name": "scheduled",
        "subject": "Hi {{ name }}",
        "body": "Dear {{ name }}",
        "send_at": send_at.format(&time::format_description::well_known::Rfc3339).unwrap(),
    });
    let (status, created) = stack.post("campaign-service", "/api/v1/campaigns", &body);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "scheduled");
    let id = created["id"].as_str().unwrap().to_string();

    stack.kill("campaign-service");
    std::thread::sleep(Duration::from_secs(5));
    assert!(stack.emails().is_empty(), "nothing sent while it waited");
    stack.start_service("campaign-service");

    let done = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(done["progress"]["sent"], USERS, "{done}");
    let late = done["started_at"].as_i64().unwrap() - done["send_at"].as_i64().unwrap();
    assert!(
        late >= 1_000,
        "started {late} ms after its time, while it was down: {done}"
    );
    assert!(
        stack
            .log("campaign-service")
            .contains("scheduled campaign started"),
        "the start is logged with how late"
    );
    let emails = stack.emails();
    assert_eq!(emails.len() as u64, USERS, "one email per user");
}
