//! Campaigns with an HTML body, and test sends, through the four services
//! and MailDev: each recipient gets `multipart/alternative` mail (the text
//! and the HTML, their name HTML-escaped in the HTML only); a test send
//! reaches the addresses given, marked, and moves no campaign's counts.

use std::time::Duration;

use e2e::Stack;
use serde_json::{json, Value};

const USERS: u64 = 5;
/// A name that would be markup if it were not escaped.
const NAME: &str = r#"Ada <b>&" Byron"#;

fn by_subject<'a>(emails: &'a [Value], subject: &str) -> Vec<&'a Value> {
    emails
        .iter()
        .filter(|email| email["subject"].as_str().is_some_and(|s| s.starts_with(subject)))
        .collect()
}

#[test]
fn a_campaign_with_html_arrives_as_text_and_html_to_every_user() {
    let stack = Stack::start(USERS);
    let (status, user) = stack.call(
        "PATCH",
        "user-service",
        "/api/v1/users/1",
        None,
        Some(&json!({ "name": NAME })),
    );
    assert_eq!(status, 200, "{user}");
    let request = json!({
        "name": "html",
        "subject": "News for {{ name }}",
        "html": "<h1>Dear {{ name }}</h1><p>Read <a href=\"https://example.com/news\">the news</a>.</p>",
    });
    let (status, campaign) = stack.post("campaign-service", "/api/v1/campaigns", &request);
    assert_eq!(status, 201, "{campaign}");
    assert_eq!(campaign["body"], "", "the text part is derived");
    assert_eq!(campaign["html"], request["html"]);
    let id = campaign["id"].as_str().unwrap();
    let done = stack.wait_completed(id, Duration::from_secs(120));
    assert_eq!(done["progress"]["sent"], USERS);

    let emails = stack.emails();
    assert_eq!(emails.len(), USERS as usize);
    for email in &emails {
        let name = email["to"][0]["name"].as_str().unwrap();
        let text = email["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text: {email}"));
        let html = email["html"]
            .as_str()
            .unwrap_or_else(|| panic!("no HTML: {email}"));
        assert!(
            text.starts_with(&format!(
                "Dear {name}\n\nRead the news (https://example.com/news)."
            )),
            "{text}"
        );
        assert!(text.contains("unsubscribe: http"), "the text footer: {text}");
        assert!(html.contains("<a href=\"http"), "the HTML footer: {html}");
        assert!(html.contains(">unsubscribe</a>"), "{html}");
        if name == NAME {
            assert!(
                html.contains("<h1>Dear Ada &lt;b&gt;&amp;&quot; Byron</h1>"),
                "{html}"
            );
            assert!(text.contains(NAME), "{text}");
        }
    }
    assert!(
        emails.iter().any(|email| email["to"][0]["name"] == NAME),
        "user 1 renamed got theirs"
    );
}

#[test]
fn test_sends_reach_the_addresses_given_marked_and_counted_nowhere() {
    let stack = Stack::start(USERS);
    // A campaign sent first: its counts must not move with test sends.
    let id = stack.create_campaign("real", "Real {{ name }}", "Dear {{ name }}");
    let before = stack.wait_completed(&id, Duration::from_secs(120));

    let draft = json!({
        "to": ["qa.one@example.com", "qa.two@example.com"],
        "subject": "Draft for {{ name }}",
        "body": "Hello {{ name }} at {{ email }}",
        "html": "<p>Hello {{ name }}</p>",
    });
    let (status, sent) = stack.post("campaign-service", "/api/v1/campaigns/test-send", &draft);
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["notification_ids"].as_array().unwrap().len(), 2);
    let (status, sent) = stack.post(
        "campaign-service",
        &format!("/api/v1/campaigns/{id}/test-send"),
        &json!({ "to": ["qa.three@example.com"], "name": "Quality" }),
    );
    assert_eq!(status, 202, "{sent}");

    stack.wait_for("the test emails", Duration::from_secs(60), || {
        by_subject(&stack.emails(), "[TEST] ").len() == 3
    });
    let emails = stack.emails();
    let drafts = by_subject(&emails, "[TEST] Draft for ");
    assert_eq!(drafts.len(), 2, "{emails:?}");
    for email in drafts {
        let address = email["to"][0]["address"].as_str().unwrap();
        let local = address.split('@').next().unwrap();
        assert_eq!(email["subject"], format!("[TEST] Draft for {local}"));
        assert_eq!(email["headers"]["x-comms-test"], "1", "{email}");
        assert!(
            email["text"]
                .as_str()
                .unwrap()
                .starts_with(&format!("Hello {local} at {address}")),
            "{email}"
        );
        assert!(
            email["html"]
                .as_str()
                .unwrap()
                .starts_with(&format!("<p>Hello {local}</p>")),
            "{email}"
        );
        assert_eq!(email["headers"]["list-unsubscribe"], Value::Null, "{email}");
    }
    let campaign_test = by_subject(&emails, "[TEST] Real Quality");
    assert_eq!(campaign_test.len(), 1, "{emails:?}");
    assert_eq!(campaign_test[0]["to"][0]["address"], "qa.three@example.com");
    assert_eq!(campaign_test[0]["headers"]["x-comms-test"], "1");

    // The outcomes have gone through campaign-service by now (a second
    // later at most): no campaign's counts moved.
    std::thread::sleep(Duration::from_secs(2));
    let after = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
    assert_eq!(after["progress"], before["progress"]);
    let list = stack.get("campaign-service", "/api/v1/campaigns");
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 1, "{list}");
    let (status, _) = stack.call("GET", "campaign-service", "/api/v1/campaigns/test", None, None);
    assert_eq!(status, 404);

    for (to, expected) in [
        (json!([]), "at least one address"),
        (
            json!((0..11).map(|i| format!("qa{i}@example.com")).collect::<Vec<_>>()),
            "at most 10 addresses",
        ),
        (json!(["QA <qa@example.com>"]), "not a bare address"),
        (json!(["qa.example.com"]), "qa.example.com"),
    ] {
        let mut request = draft.clone();
        request["to"] = to.clone();
        let (status, error) = stack.post("campaign-service", "/api/v1/campaigns/test-send", &request);
        assert_eq!(status, 400, "{to}: {error}");
        let message = error["error"].as_str().unwrap();
        assert!(message.contains(expected), "{to}: {message}");
    }
    let (status, error) = stack.post(
        "campaign-service",
        "/api/v1/campaigns/test-send",
        &json!({ "to": ["qa@example.com"], "subject": "s", "body": "{{ nope }}" }),
    );
    assert_eq!(status, 400, "{error}");
    let (status, _) = stack.post(
        "campaign-service",
        "/api/v1/campaigns/no-such-campaign/test-send",
        &json!({ "to": ["qa@example.com"] }),
    );
    assert_eq!(status, 404);
}
