//! Two email-service instances on one PostgreSQL database, a short send
//! lease, and an SMTP server that answers each message only after several
//! lease durations. Every request is delivered twice while its first send
//! runs (a copy of each `comms:emails` entry, as a redelivery would bring),
//! so the instances hold the same ids at once, and each copy is claimed
//! again and again while that send outlives its lease many times over:
//! only the renewed, fenced lease keeps a second send from starting, and
//! still every user gets exactly one email.

use std::time::Duration;

use contracts::EMAILS;
use e2e::Stack;
use testkit::{Postgres, SlowSmtp};

const USERS: u64 = 60;

#[test]
fn a_slow_server_and_two_senders_send_each_email_once() {
    let postgres = Postgres::start();
    let smtp = SlowSmtp::start(Duration::from_secs(4));
    let env = vec![
        ("EMAIL_DATABASE_URL".to_string(), postgres.database("email")),
        ("EMAIL_LEASE_MS".to_string(), "1000".to_string()),
        ("SMTP_PORT".to_string(), smtp.port().to_string()),
    ];
    let mut stack = Stack::start_with(USERS, env);
    stack.start_extra_instance("email-service");

    let id = stack.create_campaign("slow", "Hi {{ name }}", "For {{ email }}");
    stack.wait_for("every email requested", Duration::from_secs(30), || {
        stack.entries_added(EMAILS) == USERS
    });
    // Well within the first send's 4 s: every id is held by the sender of
    // its first entry when its copy arrives.
    stack.assert_copies_are_not_sent(&id, USERS, &smtp);
}
