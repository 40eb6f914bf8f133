//! Erasing a user: `DELETE /api/v1/users/{id}` leaves no trace of their
//! address in any store of comms (every service's database, every key of
//! Redis, dead letters included, the transactional messages sent to the
//! address too), keeps every campaign's counts exact,
//! and, where they were suppressed, keeps them suppressed by the hash
//! alone.

use std::time::Duration;

use e2e::Stack;
use serde_json::json;
use testkit::{SinkMode, SmtpSink};

const USERS: u64 = 6;

#[test]
fn an_erased_user_leaves_no_trace_and_the_counts_stay_exact() {
    // Refused for good at RCPT: every address is in a failure's reply, the
    // ledger, the notification records, a hard bounce, the suppression list.
    let sink = SmtpSink::start(SinkMode::HardReject);
    let stack = Stack::start_with(USERS, vec![("SMTP_PORT".into(), sink.port().to_string())]);
    let user = stack.get("user-service", "/api/v1/users/2");
    let address = user["email"].as_str().unwrap().to_string();
    let id = stack.create_campaign("before", "Hi {{ name }}", "Dear {{ name }}");
    let campaign = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(campaign["progress"]["failed"], USERS, "{campaign}");
    stack.wait_for("the hard bounces", Duration::from_secs(30), || {
        stack.get("user-service", "/api/v1/suppressions")["suppressions"]
            .as_array()
            .unwrap()
            .len() as u64
            == USERS
    });
    let notification = contracts::notification_id(&id, 2);
    stack.notification_counts(&id, &json!({ "failed": USERS }), Duration::from_secs(30));
    assert!(
        !stack.places_holding(&address).is_empty(),
        "the address is there to erase"
    );

    let (status, erasure) = stack.call("DELETE", "user-service", "/api/v1/users/2", None, None);
    assert_eq!(status, 200, "{erasure}");
    assert_eq!(erasure["user_id"], 2);
    assert_eq!(erasure["notifications"], 1);
    assert_eq!(erasure["entries_in_flight"], 0, "{erasure}");
    let (status, _) = stack.call("DELETE", "user-service", "/api/v1/users/2", None, None);
    assert_eq!(status, 404, "erased already");
    let (status, _) = stack.call("GET", "user-service", "/api/v1/users/2", None, None);
    assert_eq!(status, 404);

    // The other services erase as they read `user.erased`.
    stack.wait_for("every store erased", Duration::from_secs(30), || {
        stack.places_holding(&address).is_empty()
    });
    let record = stack.get(
        "notification-service",
        &format!("/api/v1/notifications/{notification}"),
    );
    assert_eq!(record["status"], "failed", "the record stays, blank: {record}");
    assert_eq!(record["email"], "");
    let campaign = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
    assert_eq!(
        campaign["progress"],
        json!({ "total": USERS, "sent": 0, "failed": USERS, "dead_lettered": 0, "suppressed": 0, "cancelled": 0, "pending": 0 })
    );
    let counts = stack.notification_counts(&id, &json!({ "failed": USERS }), Duration::from_secs(5));
    assert_eq!(counts, json!({ "failed": USERS }));
    let suppressions = stack.get("user-service", "/api/v1/suppressions")["suppressions"].clone();
    let kept: Vec<_> = suppressions
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["address"].is_null())
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "the erased user's entry keeps its hash: {suppressions}"
    );
    assert_eq!(
        kept[0]["address_hash"],
        contracts::consent::address_hash(&address).as_str()
    );
    assert!(kept[0]["user_id"].is_null());
}

#[test]
fn the_messages_to_an_erased_user_s_address_leave_no_trace_and_keep_their_outcome() {
    // Refused at RCPT: the address is in the message, its outcome's
    // reply, the send ledger and the suppression list.
    let sink = SmtpSink::start(SinkMode::HardReject);
    let stack = Stack::start_with(3, vec![("SMTP_PORT".into(), sink.port().to_string())]);
    let address = stack.get("user-service", "/api/v1/users/2")["email"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, message) = stack.post(
        "campaign-service",
        "/api/v1/messages",
        &json!({ "to": address, "subject": "Your receipt", "body": "Thanks, {{ email }}" }),
    );
    assert_eq!(status, 202, "{message}");
    let path = format!("/api/v1/messages/{}", message["id"].as_str().unwrap());
    stack.wait_for("the message failed", Duration::from_secs(30), || {
        stack.get("campaign-service", &path)["status"] == "failed"
    });
    assert!(
        !stack.places_holding(&address).is_empty(),
        "the address is there to erase"
    );

    let (status, erasure) = stack.call("DELETE", "user-service", "/api/v1/users/2", None, None);
    assert_eq!(status, 200, "{erasure}");
    stack.wait_for("every store erased", Duration::from_secs(30), || {
        stack.places_holding(&address).is_empty()
    });
    let message = stack.get("campaign-service", &path);
    assert_eq!(
        (&message["status"], &message["to"], &message["subject"]),
        (&json!("failed"), &json!(""), &json!("")),
        "the message stays, blank: {message}"
    );
    assert!(message["detail"].is_null(), "{message}");
    assert_eq!(message["attempts"][0]["outcome"], "failed", "{message}");
    assert!(message["attempts"][0]["detail"].is_null(), "{message}");
}
