//! Transactional messages through the four services and MailDev: each
//! message reaches its address once, across the SIGKILL of every service
//! (email-service's while the messages wait in the stream) and retries of
//! its request under its `Idempotency-Key`, and ends `sent`; a message to
//! a suppressed address is refused with 422 (a retry of one asked for
//! before is not), and one queued before its address was suppressed is
//! not sent, even by an email-service that starts after the suppression.
//! A message to a user id reaches that user's address once, even asked
//! for while user-service is down; one to no such user ends `failed`.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::Stack;
use serde_json::{json, Value};

/// POSTs `body` to campaign-service's `/api/v1/messages` under `key`; the
/// status and the JSON answer.
fn send(stack: &Stack, key: &str, body: &Value) -> (u16, Value) {
    let url = format!(
        "http://127.0.0.1:{}/api/v1/messages",
        stack.port("campaign-service")
    );
    let response = match ureq::post(&url)
        .set("idempotency-key", key)
        .send_json(body.clone())
    {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("POST {url}: {error}"),
    };
    (response.status(), response.into_json().unwrap_or(Value::Null))
}

/// The message `id`, as campaign-service shows it.
fn message(stack: &Stack, id: &str) -> Value {
    stack.get("campaign-service", &format!("/api/v1/messages/{id}"))
}

/// A login code for `to`.
fn code(to: &str, n: usize) -> Value {
    json!({
        "to": to,
        "subject": "Your code, {{ name }}",
        "body": "Code {{ code }} for {{ email }}",
        "html": "<p>Code <b>{{ code }}</b></p>",
        "variables": { "code": format!("{n:06}") },
    })
}

#[test]
fn each_message_reaches_its_address_once_across_a_kill_and_retries() {
    let mut stack = Stack::start(3);
    // email-service is killed: the messages wait in the stream for it.
    stack.kill("email-service");
    let mut ids = Vec::new();
    for n in 0..10 {
        let (status, queued) = send(
            &stack,
            &format!("login-{n}"),
            &code(&format!("person{n}@example.com"), n),
        );
        assert_eq!(status, 202, "{queued}");
        ids.push(queued["id"].as_str().unwrap().to_string());
    }
    // campaign-service dies with the messages stored and published, and
    // so do the services off the messages' path; back, each request is
    // retried, as a client whose answer was lost would.
    for service in ["campaign-service", "notification-service", "user-service"] {
        stack.kill(service);
        stack.start_service(service);
    }
    for (n, id) in ids.iter().enumerate() {
        let (status, again) = send(
            &stack,
            &format!("login-{n}"),
            &code(&format!("person{n}@example.com"), n),
        );
        assert_eq!(
            (status, again["id"].as_str()),
            (200, Some(id.as_str())),
            "{again}"
        );
        assert_eq!(again["status"], "queued");
    }
    stack.start_service("email-service");

    stack.wait_for("every message sent", Duration::from_secs(60), || {
        ids.iter().all(|id| message(&stack, id)["status"] == "sent")
    });
    let emails: Vec<Value> = stack
        .emails()
        .into_iter()
        .filter(|email| {
            email["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Your code, person"))
        })
        .collect();
    assert_eq!(emails.len(), 10, "one email per message: {emails:?}");
    let message_ids: BTreeSet<String> = emails
        .iter()
        .map(|email| {
            email["messageId"]
                .as_str()
                .unwrap()
                .trim_matches(['<', '>'])
                .to_string()
        })
        .collect();
    let expected: BTreeSet<String> = ids.iter().map(|id| format!("{id}@comms")).collect();
    assert_eq!(
        message_ids, expected,
        "each message's id is its email's Message-ID"
    );
    let first = emails
        .iter()
        .find(|email| email["subject"] == "Your code, person3")
        .unwrap();
    assert_eq!(first["to"][0]["address"], "person3@example.com");
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with("Code 000003 for person3@example.com"),
        "{first}"
    );
    assert!(
        first["html"]
            .as_str()
            .unwrap()
            .starts_with("<p>Code <b>000003</b></p>"),
        "{first}"
    );
    assert_eq!(first["headers"]["list-unsubscribe"], Value::Null, "{first}");
    assert_eq!(first["headers"]["x-comms-test"], Value::Null, "{first}");
}

#[test]
fn a_message_to_a_suppressed_address_is_refused_and_a_retry_of_one_sent_before_is_not() {
    let stack = Stack::start(3);
    let address = stack.get("user-service", "/api/v1/users/2")["email"]
        .as_str()
        .unwrap()
        .to_string();
    // Sent before the address is suppressed.
    let (status, queued) = send(&stack, "receipt-1", &code(&address, 1));
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_string();
    stack.wait_for("the message sent", Duration::from_secs(30), || {
        message(&stack, &id)["status"] == "sent"
    });
    // At once: campaign-service reads the list's changes before it
    // answers, whatever its group has read.
    stack.suppress_user(2);

    // A new message to it is refused at the door, naming why.
    let (status, refused) = send(&stack, "receipt-2", &code(&address, 2));
    assert_eq!(status, 422, "{refused}");
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains(&address) && why.contains("suppression list (manual)"),
        "{why}"
    );
    // A retry of the one sent before gets it back.
    let (status, again) = send(&stack, "receipt-1", &code(&address, 1));
    assert_eq!(
        (status, again["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    assert_eq!(again["status"], "sent");

    // Another message, sent, shows the pipeline was flowing; the address
    // got the one email sent before it was suppressed, and no other.
    let (status, other) = send(&stack, "receipt-3", &code("someone@example.com", 3));
    assert_eq!(status, 202, "{other}");
    let other = other["id"].as_str().unwrap().to_string();
    stack.wait_for("the other message sent", Duration::from_secs(30), || {
        message(&stack, &other)["status"] == "sent"
    });
    let to_address = stack
        .emails()
        .iter()
        .filter(|email| email["to"][0]["address"] == address.as_str())
        .count();
    assert_eq!(to_address, 1, "only the email sent before the suppression");
}

#[test]
fn a_message_queued_before_its_address_was_suppressed_is_not_sent_by_a_restarted_email_service() {
    let mut stack = Stack::start(3);
    let address = stack.get("user-service", "/api/v1/users/3")["email"]
        .as_str()
        .unwrap()
        .to_string();
    stack.kill("email-service");
    let (status, queued) = send(&stack, "reset-1", &code(&address, 1));
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_string();
    // Acknowledged while no email-service runs; the one that starts next
    // finds the message and the suppression waiting in their streams.
    stack.suppress_user(3);
    stack.start_service("email-service");

    stack.wait_for("the message settled", Duration::from_secs(30), || {
        message(&stack, &id)["status"] != "queued"
    });
    assert_eq!(message(&stack, &id)["status"], "suppressed");
    let to_address = stack
        .emails()
        .iter()
        .filter(|email| email["to"][0]["address"] == address.as_str())
        .count();
    assert_eq!(to_address, 0, "nothing sent to a suppressed address");
}

#[test]
fn a_message_to_a_user_id_reaches_their_address_once_and_one_to_no_such_user_fails() {
    let mut stack = Stack::start(5);
    let user = stack.get("user-service", "/api/v1/users/4");
    let address = user["email"].as_str().unwrap().to_string();
    let name = user["name"].as_str().unwrap().to_string();
    let body = json!({
        "to": 4,
        "subject": "Your code, {{ name }}",
        "body": "Code {{ code }} for {{ email }}",
        "variables": { "code": "000042" },
    });
    // Asked for while no user-service runs: it waits in comms:message-users.
    stack.kill("user-service");
    let (status, queued) = send(&stack, "user-4", &body);
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_string();
    assert_eq!(message(&stack, &id)["to"], "user 4");
    stack.start_service("user-service");
    stack.wait_for("the message sent", Duration::from_secs(30), || {
        message(&stack, &id)["status"] == "sent"
    });
    assert_eq!(message(&stack, &id)["to"], address.as_str());
    let (status, again) = send(&stack, "user-4", &body);
    assert_eq!((status, &again["id"]), (200, &json!(id)), "a retry: {again}");
    let emails: Vec<Value> = stack
        .emails()
        .into_iter()
        .filter(|email| email["to"][0]["address"] == address.as_str())
        .collect();
    assert_eq!(emails.len(), 1, "one email to user 4's address");
    assert_eq!(emails[0]["subject"], format!("Your code, {name}"));
    let text = emails[0]["text"].as_str().unwrap();
    assert!(text.contains(&format!("Code 000042 for {address}")), "{text}");

    let (status, queued) = send(
        &stack,
        "user-none",
        &json!({"to": 999_999, "subject": "Hi", "body": "x"}),
    );
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_string();
    stack.wait_for("the message settled", Duration::from_secs(30), || {
        message(&stack, &id)["status"] != "queued"
    });
    let failed = message(&stack, &id);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["detail"], "no user with id 999999", "{failed}");
    assert_eq!(failed["to"], "user 999999");
}
