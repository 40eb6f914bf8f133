//! What a campaign's recipients should have got, and what they did: the
//! users as user-service lists them, a campaign whose body names its
//! recipient, and MailDev's mailbox checked against both.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::Stack;

/// Every user as `(address, name)`, read through the users API.
pub fn users(stack: &Stack) -> BTreeSet<(String, String)> {
    let mut users = BTreeSet::new();
    let mut after = 0;
    loop {
        let page = stack.get("user-service", &format!("/api/v1/users?after={after}&limit=1000"));
        for user in page["users"].as_array().unwrap() {
            users.insert((
                user["email"].as_str().unwrap().to_string(),
                user["name"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => return users,
        }
    }
}

/// Emails grouped by recipient address: `(name, message ids, bodies)`.
fn by_recipient(emails: &[Value]) -> BTreeMap<String, (String, Vec<String>, Vec<String>)> {
    let mut grouped: BTreeMap<String, (String, Vec<String>, Vec<String>)> = BTreeMap::new();
    for email in emails {
        let to = &email["to"][0];
        let entry = grouped
            .entry(to["address"].as_str().unwrap().to_string())
            .or_default();
        entry.0 = to["name"].as_str().unwrap().to_string();
        entry.1.push(email["messageId"].as_str().unwrap().to_string());
        entry
            .2
            .push(email["text"].as_str().unwrap_or_default().to_string());
    }
    grouped
}

/// Asserts that MailDev holds `each` emails for each of `users`
/// recipients, and none for anyone else.
pub fn assert_each_got(stack: &Stack, users: u64, each: usize) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for email in stack.emails() {
        let address = email["to"][0]["address"].as_str().unwrap().to_string();
        *counts.entry(address).or_default() += 1;
    }
    assert_eq!(counts.len() as u64, users, "every user got email");
    assert!(
        counts.values().all(|n| *n == each),
        "{each} emails per user: {counts:?}"
    );
}

/// Creates a campaign whose body names its recipient, as
/// [`check_mailbox`] expects; returns its id.
pub fn create_campaign(stack: &Stack) -> String {
    stack.create_campaign(
        "e2e",
        "Hello {{ name }}",
        "Dear {{ name }}, this goes to {{ email }}.",
    )
}

/// Checks one email per user (or duplicates sharing their Message-ID), with
/// the user's name and address and an unsubscribe footer; returns the
/// number of duplicates.
pub fn check_mailbox(stack: &Stack, users: &BTreeSet<(String, String)>) -> usize {
    let emails = stack.emails();
    let grouped = by_recipient(&emails);
    let recipients: BTreeSet<(String, String)> = grouped
        .iter()
        .map(|(address, (name, _, _))| (address.clone(), name.clone()))
        .collect();
    assert_eq!(&recipients, users, "every user, and only users, got email");
    let link_base = format!("http://127.0.0.1:{}/unsubscribe/", stack.port("campaign-service"));
    for (address, (name, ids, bodies)) in &grouped {
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "{address}: duplicates carry one Message-ID: {ids:?}"
        );
        let (text, footer) = bodies[0]
            .split_once("\n\n--\n")
            .unwrap_or_else(|| panic!("{address}: no unsubscribe footer: {}", bodies[0]));
        assert_eq!(text, format!("Dear {name}, this goes to {address}."));
        assert!(
            footer.contains(&format!("unsubscribe: {link_base}")),
            "{address}: {footer}"
        );
    }
    emails.len() - grouped.len()
}
