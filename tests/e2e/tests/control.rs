//! Pausing, resuming and cancelling a campaign while it sends, on the real
//! stack (Redis, MailDev, the four services): a pause stops the sends
//! within a second or two and `sent` stops moving; a resume sends each
//! user not yet sent once; a cancel ends every recipient not sent as
//! `cancelled`, exactly, also when email-service and notification-service
//! are killed while paused and while cancelling.

use std::time::{Duration, Instant};

use e2e::{mailbox, Stack};
use serde_json::Value;

const USERS: u64 = 20_000;

/// The expansion's window: small beside the audience, so that a pause
/// comes while most of it is not yet expanded.
const BACKLOG: &str = "3000";

fn start() -> Stack {
    Stack::start_with(USERS, vec![("EXPANSION_BACKLOG".into(), BACKLOG.into())])
}

fn campaign(stack: &Stack, id: &str) -> Value {
    stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"))
}

/// POSTs the control `action` of campaign `id`: status and body.
fn control(stack: &Stack, id: &str, action: &str) -> (u16, Value) {
    stack.post(
        "campaign-service",
        &format!("/api/v1/campaigns/{id}/{action}"),
        &Value::Null,
    )
}

/// Waits until campaign `id` has sent at least `n`.
fn wait_sent(stack: &Stack, id: &str, n: i64) {
    stack.wait_for(&format!("{n} sent"), Duration::from_secs(120), || {
        campaign(stack, id)["progress"]["sent"].as_i64().unwrap() >= n
    });
}

/// Waits until `sent` of campaign `id` has not moved for two seconds (the
/// sends in flight at a pause finishing, their outcomes counted); returns it.
fn wait_still(stack: &Stack, id: &str) -> i64 {
    let start = Instant::now();
    let mut last = campaign(stack, id)["progress"]["sent"].as_i64().unwrap();
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_secs(2) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sent still moving 30 s after the pause: {}\n{}",
            campaign(stack, id),
            stack.log_tails()
        );
        std::thread::sleep(Duration::from_millis(250));
        let sent = campaign(stack, id)["progress"]["sent"].as_i64().unwrap();
        if sent != last {
            (last, since) = (sent, Instant::now());
        }
    }
    last
}

/// How many emails MailDev holds.
fn mailed(stack: &Stack) -> i64 {
    stack.emails().len() as i64
}

#[test]
fn a_paused_campaign_sends_nothing_until_resumed_then_each_user_once() {
    let stack = start();
    let id = mailbox::create_campaign(&stack);
    wait_sent(&stack, &id, 1_000);

    let (status, paused) = control(&stack, &id, "pause");
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["status"], "paused");
    let at_pause = paused["progress"]["sent"].as_i64().unwrap();
    let sent = wait_still(&stack, &id);
    // Only what was in flight (and counted late) went out after the
    // pause, not the window of emails requested behind it.
    assert!(
        sent - at_pause < 1_000,
        "{at_pause} sent at the pause, {sent} once still: the pause stopped nothing"
    );
    std::thread::sleep(Duration::from_secs(5));
    let later = campaign(&stack, &id);
    assert_eq!(
        later["progress"]["sent"], sent,
        "sent unchanged 5 s later: {later}"
    );
    assert_eq!(later["status"], "paused");
    assert_eq!(mailed(&stack), sent, "MailDev holds exactly what is counted sent");
    assert!(sent < USERS as i64 / 2, "paused well before the end: {later}");
    // What was in flight waits in the records, not in Redis.
    let held = stack.get(
        "notification-service",
        &format!("/api/v1/campaigns/{id}/notifications"),
    );
    assert!(held["pending"].is_null(), "nothing pending while paused: {held}");
    let emails = stack.stream_figures("comms:emails");
    let group = &emails["groups"][0];
    assert_eq!(
        (&group["pending"], &group["lag"]),
        (&0.into(), &0.into()),
        "no email waits in Redis: {emails}"
    );

    let (status, refused) = control(&stack, &id, "pause");
    assert_eq!(status, 409, "a paused campaign cannot be paused: {refused}");
    assert!(refused["error"].as_str().unwrap().contains("paused"), "{refused}");

    let (status, resumed) = control(&stack, &id, "resume");
    assert_eq!(status, 200, "{resumed}");
    assert!(
        ["sending", "expanding"].contains(&resumed["status"].as_str().unwrap()),
        "{resumed}"
    );
    let (status, refused) = control(&stack, &id, "resume");
    assert_eq!(status, 409, "a sending campaign cannot be resumed: {refused}");

    let done = stack.wait_completed(&id, Duration::from_secs(300));
    assert_eq!(done["progress"], e2e::all_sent(USERS), "{done}");
    mailbox::assert_each_got(&stack, USERS, 1);
    for action in ["pause", "resume", "cancel"] {
        let (status, refused) = control(&stack, &id, action);
        assert_eq!(status, 409, "{action} of a completed campaign: {refused}");
    }
    let (status, missing) = control(&stack, "no-such-campaign", "pause");
    assert_eq!(status, 404, "{missing}");
}

#[test]
fn a_cancelled_campaign_ends_every_recipient_not_sent_as_cancelled_across_kills() {
    let mut stack = start();
    let id = mailbox::create_campaign(&stack);
    wait_sent(&stack, &id, 1_000);

    let (status, paused) = control(&stack, &id, "pause");
    assert_eq!(status, 200, "{paused}");
    wait_still(&stack, &id);
    // Killed while paused, and back.
    stack.kill("email-service");
    stack.kill("notification-service");
    stack.start_service("notification-service");
    stack.start_service("email-service");

    let (status, cancelled) = control(&stack, &id, "cancel");
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    // Killed while cancelling, and back.
    stack.kill("email-service");
    stack.kill("notification-service");
    stack.start_service("notification-service");
    stack.start_service("email-service");

    stack.wait_for("the cancellation settled", Duration::from_secs(120), || {
        !campaign(&stack, &id)["completed_at"].is_null()
    });
    let done = campaign(&stack, &id);
    let progress = &done["progress"];
    let count = |field: &str| progress[field].as_i64().unwrap();
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(count("total"), USERS as i64, "{done}");
    assert_eq!(count("pending"), 0, "{done}");
    assert_eq!(
        count("sent") + count("failed") + count("dead_lettered") + count("suppressed") + count("cancelled"),
        count("total"),
        "every recipient has one final outcome: {done}"
    );
    assert!(count("cancelled") > USERS as i64 / 2, "{done}");
    assert_eq!(
        mailed(&stack),
        count("sent"),
        "MailDev holds exactly what is counted sent"
    );

    // The records agree: those requested are sent or cancelled, none left
    // held or pending; the rest were never requested.
    let records = stack.get(
        "notification-service",
        &format!("/api/v1/campaigns/{id}/notifications"),
    );
    assert_eq!(records["sent"], progress["sent"], "{records}");
    assert!(
        records["held"].is_null() && records["pending"].is_null(),
        "{records}"
    );
    let requested: i64 = records
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert!(requested < USERS as i64, "the expansion stopped: {records}");

    for action in ["cancel", "pause", "resume"] {
        let (status, refused) = control(&stack, &id, action);
        assert_eq!(status, 409, "{action} of a cancelled campaign: {refused}");
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        mailed(&stack),
        count("sent"),
        "nothing sent after the cancellation"
    );
}
