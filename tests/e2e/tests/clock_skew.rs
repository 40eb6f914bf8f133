//! Two email-service instances on one PostgreSQL database, one with its
//! clock 40 s ahead (Debian's `faketime`, on the process's wall clock
//! only), longer than a send lease (30 s). The instance on time takes
//! every request (its `CONCURRENCY` is the campaign's size) and sends them
//! to a server that answers each after 4 s; meanwhile every request is
//! delivered again, and only the instance ahead has room to take the
//! copies. Leases timed by each instance's own clock would let it take
//! over every lease of the other at once, and send again; timed by the
//! database's clock, the leases are live for both, and every user gets one
//! email.

use std::path::Path;
use std::time::Duration;

use contracts::EMAILS;
use e2e::Stack;
use testkit::{Postgres, SlowSmtp};

const USERS: u64 = 32;

/// Debian's libfaketime (package `faketime`).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn a_clock_40_s_ahead_takes_over_no_lease() {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: install Debian's faketime (./test.sh does)"
    );
    let postgres = Postgres::start();
    let smtp = SlowSmtp::start(Duration::from_secs(4));
    let env = vec![
        ("EMAIL_DATABASE_URL".to_string(), postgres.database("email")),
        ("EMAIL_LEASE_MS".to_string(), "30000".to_string()),
        ("SMTP_PORT".to_string(), smtp.port().to_string()),
        ("CONCURRENCY".to_string(), USERS.to_string()),
        ("READ_BATCH".to_string(), USERS.to_string()),
    ];
    let mut stack = Stack::start_with(USERS, env);
    let id = stack.create_campaign("skew", "Hi {{ name }}", "For {{ email }}");
    stack.wait_for("every request taken", Duration::from_secs(30), || {
        stack.entries_added(EMAILS) == USERS
            && stack.group_field(EMAILS, email_service::GROUP, "pending") == Some(USERS.to_string())
    });
    stack.start_extra_instance_with(
        "email-service",
        &[
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME", "+40"),
            // Timers and timeouts keep the true monotonic clock.
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ("CONCURRENCY", "256"),
        ],
    );

    // Well within the first sends' 4 s: every id is leased when its copy
    // arrives.
    stack.assert_copies_are_not_sent(&id, USERS, &smtp);
}
