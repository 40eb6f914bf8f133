//! How email-service treats a mail server that takes a message and then
//! does not answer: the send is uncertain (the server may have kept it), so
//! it is not sent again while its lease lasts; and a send stuck waiting for
//! that answer does not keep the service from stopping on SIGTERM.

use std::time::{Duration, Instant};

use e2e::Stack;
use testkit::{Answer, SlowSmtp};

#[test]
fn an_uncertain_send_is_not_repeated_while_its_lease_lasts() {
    const USERS: usize = 5;
    // Answers each message 3 s late, past the 500 ms SMTP timeout.
    let smtp = SlowSmtp::start(Duration::from_secs(3));
    let stack = Stack::start_with(
        USERS as u64,
        vec![
            ("SMTP_PORT".into(), smtp.port().to_string()),
            ("SMTP_TIMEOUT_MS".into(), "500".into()),
            ("EMAIL_LEASE_MS".into(), "20000".into()),
        ],
    );
    let id = stack.create_campaign("uncertain", "Hi {{ name }}", "Dear {{ name }}");
    let uncertain = r#"comms_emails_total{outcome="uncertain"}"#;
    stack.wait_for("every send uncertain", Duration::from_secs(30), || {
        stack.metric("email-service", uncertain).unwrap_or(0.0) >= USERS as f64
    });
    // Each request is retried after 1.5 s (`CLAIM_IDLE_MS`), then 3 s
    // later, and finds its lease still held.
    std::thread::sleep(Duration::from_secs(10));
    let copies = smtp.copies();
    assert_eq!(copies.len(), USERS, "{copies:?}");
    assert!(
        copies.values().all(|count| *count == 1),
        "sent again within its lease: {copies:?}"
    );
    let campaign = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
    assert_eq!(campaign["progress"]["pending"], USERS, "{campaign}");
}

#[test]
fn sigterm_stops_a_sender_stuck_on_a_silent_server() {
    let smtp = SlowSmtp::answering(Answer::Silent);
    // Nothing but shutdown ends the wait for the server's reply.
    let mut stack = Stack::start_with(
        3,
        vec![
            ("SMTP_PORT".into(), smtp.port().to_string()),
            ("SMTP_TIMEOUT_MS".into(), "600000".into()),
            ("HANDLER_TIMEOUT_MS".into(), "600000".into()),
        ],
    );
    stack.create_campaign("stuck", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_for("a send in progress", Duration::from_secs(30), || {
        !smtp.message_ids().is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let mut child = stack.terminate("email-service");
    // The shutdown grace (5 s) and a second for the last acks, and some
    // slack for a loaded machine.
    let limit = Duration::from_secs(9);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if asked.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "email-service still running {limit:?} after SIGTERM\n{}",
                stack.log("email-service")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "email-service exited with {exit}");
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(4),
        "the stuck send had its grace first: {took:?}"
    );
    println!("email-service stopped {took:?} after SIGTERM");
}
