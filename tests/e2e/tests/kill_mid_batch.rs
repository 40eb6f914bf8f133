//! email-service SIGKILLed in the middle of a batch, against an SMTP server
//! that answers each message only after 4 s: the sends that had ended
//! before the kill were recorded as they ended, so the restarted service
//! sends again only those that were in flight at the kill (at most one
//! per pooled SMTP connection), not every email the server had taken.

use std::time::Duration;

use contracts::EMAILS;
use e2e::Stack;
use testkit::SlowSmtp;

/// One batch: the whole campaign is read by one read of the restarted
/// service.
const USERS: u64 = 64;
/// SMTP connections, so sends in flight at once.
const POOL: usize = 16;

#[test]
fn a_kill_mid_batch_resends_only_the_sends_in_flight() {
    let smtp = SlowSmtp::start(Duration::from_secs(4));
    let env = vec![
        ("SMTP_PORT".to_string(), smtp.port().to_string()),
        ("SMTP_POOL".to_string(), POOL.to_string()),
        ("READ_BATCH".to_string(), USERS.to_string()),
    ];
    let mut stack = Stack::start_with(USERS, env);
    // Every request in the stream before email-service reads: one read
    // takes them all, one batch.
    stack.kill("email-service");
    let id = stack.create_campaign("kill", "Hi {{ name }}", "For {{ email }}");
    stack.wait_for("every email requested", Duration::from_secs(30), || {
        stack.entries_added(EMAILS) == USERS
    });
    stack.start_service("email-service");

    // The third round of sends has reached the server: two rounds (32
    // sends) have had their `250` and ended, one round is in flight.
    stack.wait_for("two rounds of sends done", Duration::from_secs(30), || {
        smtp.message_ids().len() > 2 * POOL
    });
    std::thread::sleep(Duration::from_millis(500));
    let before_kill = smtp.message_ids().len();
    stack.kill("email-service");
    assert!(
        before_kill <= 3 * POOL && before_kill < USERS as usize,
        "the kill landed mid-batch: {before_kill} of {USERS} received"
    );

    stack.start_service("email-service");
    let done = stack.wait_completed(&id, Duration::from_secs(120));
    assert_eq!(done["progress"]["sent"], USERS, "{done}");

    let copies = smtp.copies();
    assert_eq!(copies.len() as u64, USERS, "one Message-ID per user");
    let duplicates: usize = copies.values().map(|count| count - 1).sum();
    println!("received before the kill: {before_kill}; duplicate Message-IDs: {duplicates}");
    assert!(
        duplicates <= POOL,
        "{duplicates} duplicates: more than the {POOL} sends in flight at the kill"
    );
}
