//! Resending a finished campaign to its recipients not reached, on the real
//! stack: part of a campaign is sent to MailDev, the rest refused with 4xx
//! by another server (email-service moved to it while the campaign was
//! paused) until their retry budget is spent and they are dead-lettered;
//! the resend, with email-service back on MailDev, goes to exactly the
//! recipients not reached, so that every user ends with one email, and its
//! total is the first campaign's `dead_lettered`. (A recipient refused for
//! good is a hard bounce: suppressed, and so not emailed by a resend.)

use std::time::Duration;

use e2e::{mailbox, Stack};
use serde_json::Value;
use testkit::{SinkMode, SmtpSink};

const USERS: u64 = 2_000;

fn campaign(stack: &Stack, id: &str) -> Value {
    stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"))
}

fn post(stack: &Stack, path: &str) -> (u16, Value) {
    stack.post("campaign-service", path, &Value::Null)
}

#[test]
fn a_resend_goes_to_exactly_the_recipients_not_reached() {
    let mut stack = Stack::start_with(USERS, vec![("EXPANSION_BACKLOG".into(), "300".into())]);
    let first = mailbox::create_campaign(&stack);
    stack.wait_for("some sent", Duration::from_secs(60), || {
        campaign(&stack, &first)["progress"]["sent"].as_i64().unwrap() >= 300
    });
    let (status, refused) = post(&stack, &format!("/api/v1/campaigns/{first}/resend"));
    assert_eq!(status, 409, "a campaign still sending is not resent: {refused}");

    // The rest of the campaign goes to a server that refuses every
    // recipient for now, past a short retry budget.
    let (status, paused) = post(&stack, &format!("/api/v1/campaigns/{first}/pause"));
    assert_eq!(status, 200, "{paused}");
    std::thread::sleep(Duration::from_secs(3));
    stack.kill("email-service");
    let refusing = SmtpSink::start(SinkMode::SoftReject);
    let refusing_port = refusing.port().to_string();
    let moved = stack.start_extra_instance_with(
        "email-service",
        &[("SMTP_PORT", &refusing_port), ("RETRY_BUDGET_SECS", "2")],
    );
    let (status, resumed) = post(&stack, &format!("/api/v1/campaigns/{first}/resume"));
    assert_eq!(status, 200, "{resumed}");
    let done = stack.wait_completed(&first, Duration::from_secs(120));
    let sent = done["progress"]["sent"].as_u64().unwrap();
    let not_reached = done["progress"]["dead_lettered"].as_u64().unwrap();
    assert_eq!(sent + not_reached, USERS, "{done}");
    assert!(not_reached > 0 && sent > 0, "{done}");

    // Back on MailDev, the resend.
    stack.kill_extra_instance(moved);
    stack.start_service("email-service");
    let (status, resend) = post(&stack, &format!("/api/v1/campaigns/{first}/resend"));
    assert_eq!(status, 201, "{resend}");
    assert_eq!(resend["resend_of"], first.as_str());
    let second = resend["id"].as_str().unwrap().to_string();
    let resent = stack.wait_completed(&second, Duration::from_secs(120));
    assert_eq!(resent["progress"], e2e::all_sent(not_reached), "{resent}");
    mailbox::assert_each_got(&stack, USERS, 1);

    // Nothing left to resend; no such campaign.
    let (status, refused) = post(&stack, &format!("/api/v1/campaigns/{second}/resend"));
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("nothing to resend"),
        "{refused}"
    );
    let (status, missing) = post(&stack, "/api/v1/campaigns/no-such-campaign/resend");
    assert_eq!(status, 404, "{missing}");
}
