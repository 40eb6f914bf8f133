//! A campaign's export from notification-service: every recipient once,
//! with the status their notification ended in, as CSV.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{mailbox, Stack};
use serde_json::json;

const USERS: u64 = 30;

#[test]
fn a_finished_campaign_exports_every_recipient_once_with_their_outcome() {
    let stack = Stack::start(USERS);
    let suppressed = stack.suppress_user(3);
    let id = stack.create_campaign("exported", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_completed(&id, Duration::from_secs(60));
    stack.notification_counts(
        &id,
        &json!({"sent": USERS - 1, "suppressed": 1}),
        Duration::from_secs(30),
    );

    let url = format!(
        "http://127.0.0.1:{}/api/v1/campaigns/{id}/export",
        stack.port("notification-service")
    );
    let response = ureq::get(&url).call().expect("the export");
    assert_eq!(response.content_type(), "text/csv");
    let csv = response.into_string().unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("notification_id,user_id,email,status,detail"));
    let rows: BTreeMap<String, String> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 5, "{line}");
            assert_eq!(
                fields[0],
                contracts::notification_id(&id, fields[1].parse().unwrap())
            );
            (fields[2].to_string(), fields[3].to_string())
        })
        .collect();
    let users: Vec<String> = mailbox::users(&stack)
        .into_iter()
        .map(|(address, _)| address)
        .collect();
    assert_eq!(rows.len() as u64, USERS, "one row per recipient");
    assert_eq!(rows.keys().cloned().collect::<Vec<_>>(), users);
    for (address, status) in &rows {
        let expected = if *address == suppressed {
            "suppressed"
        } else {
            "sent"
        };
        assert_eq!(status, expected, "{address}");
    }

    // An unknown campaign: the header alone.
    let unknown = format!(
        "http://127.0.0.1:{}/api/v1/campaigns/no-such-campaign/export",
        stack.port("notification-service")
    );
    let header_only = ureq::get(&unknown).call().unwrap().into_string().unwrap();
    assert_eq!(header_only, "notification_id,user_id,email,status,detail\n");
}
