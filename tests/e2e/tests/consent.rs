//! Consent end to end: every campaign email carries its recipient's
//! one-click unsubscribe link; an address on the suppression list is
//! counted `suppressed` and never emailed; a 5xx to `RCPT TO` puts the
//! address on the list as a hard bounce.

use std::time::Duration;

use e2e::Stack;
use serde_json::{json, Value};
use testkit::{SinkMode, SmtpSink};

const USERS: u64 = 40;

/// Waits until the suppression list holds `count` entries (`what` names
/// the change awaited in the failure).
fn wait_listed(stack: &Stack, what: &str, count: usize) {
    stack.wait_for(what, Duration::from_secs(30), || {
        suppressions(stack).len() == count
    });
}

/// The list's entries, first page.
fn suppressions(stack: &Stack) -> Vec<Value> {
    stack.get("user-service", "/api/v1/suppressions?limit=1000")["suppressions"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_suppressed_address_is_counted_and_never_emailed_and_every_email_offers_a_way_out() {
    let stack = Stack::start(USERS);
    let first = stack.create_campaign("first", "Hi {{ name }}", "Dear {{ name }}.");
    stack.wait_completed(&first, Duration::from_secs(60));
    let emails = stack.emails();
    assert_eq!(emails.len() as u64, USERS);
    let email = &emails[0];
    let address = email["to"][0]["address"].as_str().unwrap().to_string();
    let header = email["headers"]["list-unsubscribe"].as_str().unwrap();
    // On campaign-service, where the stack's PUBLIC_URL says it is.
    let base = format!(
        "<http://127.0.0.1:{}/unsubscribe/",
        stack.port("campaign-service")
    );
    assert!(header.starts_with(&base), "{header}");
    assert_eq!(
        email["headers"]["list-unsubscribe-post"],
        "List-Unsubscribe=One-Click"
    );
    let link = header.trim_matches(['<', '>']);
    assert!(
        email["text"].as_str().unwrap().contains(link),
        "a body without the link gets it in a footer: {}",
        email["text"]
    );

    // Suppressed through the API: answered once the change is on the
    // stream, applied when user-service reads it.
    let (status, body) = stack.post(
        "user-service",
        "/api/v1/suppressions",
        &json!({ "address": address, "detail": "asked by phone" }),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);
    wait_listed(&stack, "the suppression", 1);
    let entry = &suppressions(&stack)[0];
    assert_eq!(entry["address"], address.as_str());
    assert_eq!(entry["reason"], "manual");
    assert_eq!(entry["detail"], "asked by phone");
    let (status, body) = stack.post(
        "user-service",
        "/api/v1/suppressions",
        &json!({ "address": "not an address" }),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not an address"),
        "{body}"
    );

    let second = stack.create_campaign("second", "Hi {{ name }}", "Dear {{ name }}.");
    let campaign = stack.wait_completed(&second, Duration::from_secs(60));
    assert_eq!(
        campaign["progress"],
        json!({ "total": USERS, "sent": USERS - 1, "failed": 0, "dead_lettered": 0, "suppressed": 1, "cancelled": 0, "pending": 0 })
    );
    let counts = stack.notification_counts(
        &second,
        &json!({ "sent": USERS - 1, "suppressed": 1 }),
        Duration::from_secs(30),
    );
    assert_eq!(counts, json!({ "sent": USERS - 1, "suppressed": 1 }));
    let to_address = stack
        .emails()
        .iter()
        .filter(|email| email["to"][0]["address"] == address.as_str())
        .count();
    assert_eq!(to_address, 1, "only the first campaign's email reached {address}");

    // Taken off the list again: the next campaign emails them.
    let (status, body) = stack.call(
        "DELETE",
        "user-service",
        &format!("/api/v1/suppressions/{address}"),
        None,
        None,
    );
    assert_eq!(status, 202, "{body}");
    stack.wait_for("the resubscribe", Duration::from_secs(30), || {
        suppressions(&stack).is_empty()
    });
    let third = stack.create_campaign("third", "Hi {{ name }}", "Dear {{ name }}.");
    let campaign = stack.wait_completed(&third, Duration::from_secs(60));
    assert_eq!(campaign["progress"]["sent"], USERS, "{campaign}");
}

#[test]
fn a_recipient_refused_at_rcpt_is_suppressed_as_a_hard_bounce() {
    let sink = SmtpSink::start(SinkMode::HardReject);
    let stack = Stack::start_with(5, vec![("SMTP_PORT".into(), sink.port().to_string())]);
    let id = stack.create_campaign("bounces", "Hi {{ name }}", "Dear {{ name }}");
    let campaign = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(campaign["progress"]["failed"], 5, "{campaign}");
    wait_listed(&stack, "the hard bounces", 5);
    for entry in suppressions(&stack) {
        assert_eq!(entry["reason"], "hard_bounce", "{entry}");
        assert_eq!(entry["campaign_id"], id.as_str(), "{entry}");
        assert!(entry["detail"].as_str().unwrap().contains("5"), "{entry}");
    }
    // The next campaign sends to none of them.
    let next = stack.create_campaign("again", "Hi {{ name }}", "Dear {{ name }}");
    let campaign = stack.wait_completed(&next, Duration::from_secs(60));
    assert_eq!(
        campaign["progress"],
        json!({ "total": 5, "sent": 0, "failed": 0, "dead_lettered": 0, "suppressed": 5, "cancelled": 0, "pending": 0 })
    );
}

#[test]
fn bounce_and_complaint_reports_suppress_their_recipients() {
    let stack = Stack::start(5);
    let users = stack.get("user-service", "/api/v1/users");
    let address = |i: usize| users["users"][i]["email"].as_str().unwrap().to_string();
    let (hard, soft, complainer) = (address(0), address(1), address(2));
    // Sent first: the bounce comes later, about that email.
    let sent = stack.create_campaign("sent", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_completed(&sent, Duration::from_secs(60));
    let bounced = contracts::notification_id(&sent, 1);
    stack.notification_counts(&sent, &json!({ "sent": 5 }), Duration::from_secs(30));
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n\
--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
Final-Recipient: rfc822; {hard}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n\
Final-Recipient: rfc822; {soft}\r\nAction: delayed\r\nStatus: 4.2.2\r\n\r\n\
Final-Recipient: rfc822; stranger@nowhere.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{bounced}@comms>\r\nTo: {hard}\r\n\r\n--b1--\r\n"
    );
    let (status, report) = stack.post_report(&dsn);
    assert_eq!(status, 202, "{report}");
    assert_eq!(
        report,
        json!({
            "report_type": "delivery-status",
            "suppressed": [hard],
            "soft_bounces": [soft],
            "unmatched": ["stranger@nowhere.example"]
        })
    );
    let arf = e2e::reports::complaint(&complainer);
    let (status, report) = stack.post_report(&arf);
    assert_eq!(status, 202, "{report}");
    assert_eq!(report["suppressed"], json!([complainer]));

    wait_listed(&stack, "both suppressions", 2);
    let reasons: std::collections::BTreeMap<String, String> = suppressions(&stack)
        .iter()
        .map(|entry| {
            (
                entry["address"].as_str().unwrap().to_string(),
                entry["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons[&hard], "hard_bounce");
    assert_eq!(reasons[&complainer], "complaint");
    // The bounced email's record shows it; it stays sent.
    let path = format!("/api/v1/notifications/{bounced}");
    stack.wait_for("the bounce on the record", Duration::from_secs(30), || {
        stack.get("notification-service", &path)["detail"] != Value::Null
    });
    let record = stack.get("notification-service", &path);
    assert_eq!(record["status"], "sent", "{record}");
    let detail = record["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("hard_bounce after the send: ") && detail.contains("5.1.1"),
        "{detail}"
    );

    let (status, error) = stack.post_report("Subject: hello\r\n\r\nnot a report\r\n");
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("multipart/report"),
        "{error}"
    );

    let id = stack.create_campaign("after reports", "Hi {{ name }}", "Dear {{ name }}");
    let campaign = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(campaign["progress"]["suppressed"], 2, "{campaign}");
    assert_eq!(campaign["progress"]["sent"], 3, "{campaign}");
    let first = stack.get("campaign-service", &format!("/api/v1/campaigns/{sent}"));
    assert_eq!(
        first["progress"]["sent"], 5,
        "a later bounce changes no count: {first}"
    );
}

/// The path of `email`'s one-click link, and its token.
fn unsubscribe_path(email: &Value) -> (String, String) {
    let header = email["headers"]["list-unsubscribe"].as_str().unwrap();
    let link = header.trim_matches(['<', '>']);
    let token = link.rsplit('/').next().unwrap().to_string();
    (format!("/unsubscribe/{token}"), token)
}

/// A form POST to campaign-service, as a mail provider sends one-click.
fn post_form(stack: &Stack, path: &str, body: &str) -> u16 {
    let url = format!("http://127.0.0.1:{}{path}", stack.port("campaign-service"));
    match ureq::post(&url)
        .set("content-type", "application/x-www-form-urlencoded")
        .set("origin", "https://mail.example.net")
        .send_string(body)
    {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response.status(),
        Err(error) => panic!("POST {path}: {error}"),
    }
}

#[test]
fn one_click_unsubscribes_a_get_alone_changes_nothing_and_a_tampered_link_is_refused() {
    let stack = Stack::start(10);
    let first = stack.create_campaign("first", "Hi {{ name }}", "Dear {{ name }}.");
    stack.wait_completed(&first, Duration::from_secs(60));
    let email = stack.emails()[0].clone();
    let address = email["to"][0]["address"].as_str().unwrap().to_string();
    let (path, token) = unsubscribe_path(&email);

    // A mail scanner fetching the link changes nothing.
    let url = format!("http://127.0.0.1:{}{path}", stack.port("campaign-service"));
    let page = ureq::get(&url).call().unwrap();
    assert_eq!(page.status(), 200);
    let page = page.into_string().unwrap();
    assert!(
        page.contains(r#"name="List-Unsubscribe" value="One-Click""#),
        "a button that posts the one-click body: {page}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(suppressions(&stack).is_empty(), "a GET alone changes nothing");

    // A link with another user's id in it is refused, and changes nothing.
    let (user, rest) = token.split_once('.').unwrap();
    let other = format!("/unsubscribe/{}.{rest}", user.parse::<i64>().unwrap() % 10 + 1);
    assert_eq!(post_form(&stack, &other, "List-Unsubscribe=One-Click"), 400);

    // One click, from the mail provider's origin.
    assert_eq!(post_form(&stack, &path, "List-Unsubscribe=One-Click"), 200);
    assert_eq!(
        post_form(&stack, &path, "List-Unsubscribe=One-Click"),
        200,
        "idempotent"
    );
    wait_listed(&stack, "the unsubscribe", 1);
    let entry = &suppressions(&stack)[0];
    assert_eq!(entry["address"], address.as_str());
    assert_eq!(entry["reason"], "unsubscribed");
    assert_eq!(entry["campaign_id"], first.as_str());

    let second = stack.create_campaign("second", "Hi {{ name }}", "Dear {{ name }}.");
    let campaign = stack.wait_completed(&second, Duration::from_secs(60));
    assert_eq!(campaign["progress"]["suppressed"], 1, "{campaign}");
    assert_eq!(campaign["progress"]["sent"], 9, "{campaign}");
    let to_address = stack
        .emails()
        .iter()
        .filter(|email| email["to"][0]["address"] == address.as_str())
        .count();
    assert_eq!(to_address, 1, "the second campaign skipped {address}");
}

#[test]
fn a_recipient_unsubscribed_while_their_email_waits_is_not_sent_to() {
    const USERS: u64 = 5;
    // Every attempt is refused for a while: the emails wait in their
    // retries, rendered, when the unsubscribe comes.
    let refusing = SmtpSink::start(SinkMode::SoftReject);
    let stack = Stack::start_with(USERS, vec![("SMTP_PORT".into(), refusing.port().to_string())]);
    let id = stack.create_campaign("waiting", "Hi {{ name }}", "Dear {{ name }}");
    let transient = r#"comms_emails_total{outcome="transient"}"#;
    stack.wait_for("every email refused once", Duration::from_secs(30), || {
        stack.metric("email-service", transient).unwrap_or(0.0) >= USERS as f64
    });
    let address = stack.get("user-service", "/api/v1/users/1")["email"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = stack.post(
        "user-service",
        "/api/v1/suppressions",
        &json!({ "address": address, "reason": "unsubscribed" }),
    );
    assert_eq!(status, 202, "{body}");
    let applied = "comms_suppression_changes_total";
    stack.wait_for(
        "email-service applies the change",
        Duration::from_secs(30),
        || stack.metric("email-service", applied).unwrap_or(0.0) >= 1.0,
    );

    let _accepting = refusing.recover();
    let campaign = stack.wait_completed(&id, Duration::from_secs(90));
    assert_eq!(
        campaign["progress"],
        json!({ "total": USERS, "sent": USERS - 1, "failed": 0, "dead_lettered": 0, "suppressed": 1, "cancelled": 0, "pending": 0 })
    );
    let notification = contracts::notification_id(&id, 1);
    stack.wait_for("the notification's record", Duration::from_secs(30), || {
        stack.get(
            "notification-service",
            &format!("/api/v1/notifications/{notification}"),
        )["status"]
            == "suppressed"
    });
    let record = stack.get(
        "notification-service",
        &format!("/api/v1/notifications/{notification}"),
    );
    assert_eq!(
        record["detail"],
        "on the suppression list (unsubscribed) at the send"
    );
}
