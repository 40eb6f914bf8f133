//! A campaign to a segment, on the real stack: its total is the count
//! user-service gives for the same filter, exactly the users the filter
//! selects are emailed (checked against their attributes, read back), a
//! user changed to match before a scheduled campaign starts is in it, and
//! a filter that does not parse is a 400 naming where.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::Stack;
use serde_json::{json, Value};

const USERS: u64 = 1_500;

/// The segment: its seeded attributes make it a few hundred users.
const FILTER: &str = "plan in ('pro', 'team') and country != 'US'";

/// Whether `user` (as the API shows it) is in [`FILTER`].
fn selected(user: &Value) -> bool {
    ["pro", "team"].contains(&user["plan"].as_str().unwrap_or_default()) && user["country"] != "US"
}

/// user-service's count for `filter`.
fn count(stack: &Stack, filter: &str) -> i64 {
    let url = format!(
        "http://127.0.0.1:{}/api/v1/users/count",
        stack.port("user-service")
    );
    let answer: Value = ureq::get(&url)
        .query("filter", filter)
        .call()
        .expect("the count")
        .into_json()
        .unwrap();
    answer["count"].as_i64().expect("a count")
}

/// Every user, read back a page at a time.
fn users(stack: &Stack) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = stack.get("user-service", &format!("/api/v1/users?after={after}&limit=1000"));
        all.extend(page["users"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => return all,
        }
    }
}

fn recipients(stack: &Stack) -> BTreeSet<String> {
    stack
        .emails()
        .iter()
        .map(|email| email["to"][0]["address"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_segment_s_campaign_emails_exactly_the_users_its_filter_selects() {
    let stack = Stack::start(USERS);
    let counted = count(&stack, FILTER);
    let expected: BTreeSet<String> = users(&stack)
        .iter()
        .filter(|user| selected(user))
        .map(|user| user["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        counted,
        expected.len() as i64,
        "the count agrees with the attributes"
    );
    assert!(
        counted > 50 && counted < USERS as i64 / 2,
        "a segment, not everyone: {counted}"
    );

    let body = json!({ "name": "segment", "subject": "Hi {{ name }}", "body": "Dear {{ name }}", "audience": FILTER });
    let (status, created) = stack.post("campaign-service", "/api/v1/campaigns", &body);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["audience"], FILTER);
    let id = created["id"].as_str().unwrap();
    let done = stack.wait_completed(id, Duration::from_secs(120));
    assert_eq!(done["progress"], e2e::all_sent(counted as u64), "{done}");
    assert_eq!(recipients(&stack), expected, "exactly the segment was emailed");
    assert_eq!(stack.emails().len() as i64, counted, "once each");
}

#[test]
fn a_scheduled_segment_selects_the_users_that_match_when_it_starts() {
    let stack = Stack::start(200);
    // Nobody is a member yet.
    let filter = "'early-access' in tags";
    assert_eq!(count(&stack, filter), 0);
    let send_at = time::OffsetDateTime::now_utc() + Duration::from_secs(3);
    let body = json!({
        "name": "later", "subject": "Hi", "body": "Dear {{ name }}", "audience": filter,
        "send_at": send_at.format(&time::format_description::well_known::Rfc3339).unwrap(),
    });
    let (status, created) = stack.post("campaign-service", "/api/v1/campaigns", &body);
    assert_eq!(status, 201, "{created}");
    for id in [7, 42] {
        let (status, changed) = stack.call(
            "PATCH",
            "user-service",
            &format!("/api/v1/users/{id}"),
            None,
            Some(&json!({ "tags": ["early-access"] })),
        );
        assert_eq!(status, 200, "{changed}");
    }
    assert_eq!(count(&stack, filter), 2);
    let done = stack.wait_completed(created["id"].as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(done["progress"], e2e::all_sent(2), "{done}");
    let seven = stack.get("user-service", "/api/v1/users/7")["email"].clone();
    assert!(recipients(&stack).contains(seven.as_str().unwrap()));
}

#[test]
fn a_filter_that_does_not_parse_is_a_400_naming_where_and_creates_nothing() {
    let stack = Stack::start(10);
    for (filter, says) in [
        ("plan = 'pro' and", "at 16"),
        ("contry = 'DE'", "unknown attribute 'contry'"),
        ("signed_up_at > 'yesterday'", "signed_up_at"),
    ] {
        let body = json!({ "name": "bad", "subject": "Hi", "body": "Dear", "audience": filter });
        let (status, refused) = stack.post("campaign-service", "/api/v1/campaigns", &body);
        assert_eq!(status, 400, "{filter}: {refused}");
        let error = refused["error"].as_str().unwrap();
        assert!(
            error.starts_with("audience: ") && error.contains(says),
            "{filter}: {error}"
        );
    }
    let listed = stack.get("campaign-service", "/api/v1/campaigns");
    assert_eq!(listed["campaigns"].as_array().unwrap().len(), 0, "{listed}");
}
