//! Scheduled campaigns, against a real Redis and SQLite: `scheduled` and
//! not announced until their `send_at`, then started (and announced once)
//! by the scheduling round; cancelled or moved while they wait, and
//! neither once they have started.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use testkit::http::call;
use testkit::ServiceHome;

/// An RFC 3339 time `from_now` ahead (or behind, when negative), in UTC.
fn rfc3339_in(from_now: Duration, behind: bool) -> String {
    let now = time::OffsetDateTime::now_utc();
    let at = if behind { now - from_now } else { now + from_now };
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// Creates a campaign starting at `send_at`; returns status and answer.
async fn create_at(app: &ServiceHome, send_at: &str) -> (u16, Value) {
    let body =
        json!({"name": "Later", "subject": "Hi {{ name }}", "body": "Dear {{ name }}", "send_at": send_at});
    call(
        "POST",
        app.url("/api/v1/campaigns"),
        None,
        Some(&body.to_string()),
    )
    .await
}

async fn campaign(app: &ServiceHome, id: &str) -> Value {
    let (status, campaign) = call("GET", app.url(&format!("/api/v1/campaigns/{id}")), None, None).await;
    assert_eq!(status, 200);
    campaign
}

fn announcements(app: &ServiceHome) -> String {
    app.redis.command(&["XLEN", "comms:campaigns"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_campaign_waits_unannounced_then_starts_once_at_its_time() {
    let app = common::spawn_app(|_| {}).await.unwrap();
    let (status, created) = create_at(&app, &rfc3339_in(Duration::from_secs(2), false)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "scheduled");
    let send_at = created["send_at"].as_i64().unwrap();
    assert_eq!(created["started_at"], Value::Null);
    assert_eq!(announcements(&app), ":0");

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let started = loop {
        let now = campaign(&app, &id).await;
        if now["status"] != "scheduled" {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "never started: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(started["status"], "expanding", "{started}");
    let started_at = started["started_at"].as_i64().unwrap();
    assert!(started_at >= send_at && started_at < send_at + 5_000, "{started}");
    // Announced once, by one round (no user-service here to expand it).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(announcements(&app), ":1");

    // Started: not moved any more (cancelling it is still possible: the
    // control tests).
    let body = json!({ "send_at": rfc3339_in(Duration::from_secs(60), false) }).to_string();
    let (status, refused) = call(
        "POST",
        app.url(&format!("/api/v1/campaigns/{id}/schedule")),
        None,
        Some(&body),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("expanding"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_campaign_can_be_moved_or_cancelled_while_it_waits() {
    let app = common::spawn_app(|_| {}).await.unwrap();
    let (_, far) = create_at(&app, "2999-01-01T00:00:00Z").await;
    let far_id = far["id"].as_str().unwrap().to_string();
    let (_, other) = create_at(&app, "2999-01-01T00:00:00+01:00").await;
    let other_id = other["id"].as_str().unwrap().to_string();

    // Moved to a second from now: it starts.
    let body = json!({ "send_at": rfc3339_in(Duration::from_secs(1), false) }).to_string();
    let url = app.url(&format!("/api/v1/campaigns/{far_id}/schedule"));
    let (status, moved) = call("POST", url.clone(), None, Some(&body)).await;
    assert_eq!(status, 200, "{moved}");
    assert!(moved["send_at"].as_i64().unwrap() < 32_000_000_000_000);
    let past = json!({ "send_at": rfc3339_in(Duration::from_secs(60), true) }).to_string();
    let (status, refused) = call("POST", url, None, Some(&past)).await;
    assert_eq!(status, 400, "{refused}");

    // Cancelled: never starts; a second cancel is a 409.
    let cancel = app.url(&format!("/api/v1/campaigns/{other_id}/cancel"));
    let (status, cancelled) = call("POST", cancel.clone(), None, None).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["completed_at"].is_i64());
    let (status, again) = call("POST", cancel, None, None).await;
    assert_eq!(status, 409, "{again}");
    let (status, _) = call(
        "POST",
        app.url("/api/v1/campaigns/0c8f4bde-3a1c-4a9e-8c5e-000000000000/cancel"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(campaign(&app, &far_id).await["status"], "expanding");
    assert_eq!(campaign(&app, &other_id).await["status"], "cancelled");
    assert_eq!(announcements(&app), ":1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_at_that_has_passed_or_does_not_parse_is_a_400_that_creates_nothing() {
    let app = common::spawn_app(|_| {}).await.unwrap();
    for send_at in [
        rfc3339_in(Duration::from_secs(1), true),
        "next week".into(),
        "2999-01-01T00:00:00".into(),
    ] {
        let (status, refused) = create_at(&app, &send_at).await;
        assert_eq!(status, 400, "{send_at}: {refused}");
        assert!(
            refused["error"].as_str().unwrap().starts_with("send_at must"),
            "{refused}"
        );
    }
    let (_, list) = call("GET", app.url("/api/v1/campaigns"), None, None).await;
    assert_eq!(list["campaigns"], json!([]));
}
