//! The dashboard in a real browser (`tests/browser/*.mjs`, headless
//! chromium through playwright-core) against a stack on free ports: a
//! template error shown before anything is sent, a campaign created from
//! the form followed to `completed` live, without a reload; dead letters
//! listed with their reason and replayed.

use std::process::{Command, Output};
use std::time::Duration;

use e2e::Stack;
use testkit::{SinkMode, SmtpSink};

const USERS: u64 = 300;

/// Runs the browser script `script` with `args`; panics with what it and
/// the stack printed unless it succeeded; returns what it saw.
fn browse(stack: &Stack, script: &str, args: &[&str]) -> serde_json::Value {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let output: Output = Command::new("node")
        .current_dir(root)
        .arg(format!("tests/browser/{script}"))
        .arg(format!("http://127.0.0.1:{}", stack.port("campaign-service")))
        .args(args)
        .output()
        .expect("node runs (./test.sh installs it, with chromium and playwright-core)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        stack.log_tails()
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

#[test]
fn a_campaign_created_in_the_browser_completes_on_the_page_live() {
    let stack = Stack::start(USERS);
    let seen = browse(&stack, "dashboard.mjs", &[&USERS.to_string()]);
    assert_eq!(seen["sent"], USERS, "{seen}");
    assert_eq!(seen["sameDocument"], true, "{seen}");
}

#[test]
fn dead_letters_are_listed_and_replayed_from_the_page() {
    const DEAD: u64 = 5;
    // An SMTP server refusing every transaction past a two-second retry
    // budget: every email request is dead-lettered.
    let refusing = SmtpSink::start(SinkMode::SoftReject);
    let stack = Stack::start_with(
        DEAD,
        vec![
            ("SMTP_PORT".into(), refusing.port().to_string()),
            ("RETRY_BUDGET_SECS".into(), "2".into()),
            ("CLAIM_IDLE_MS".into(), "300".into()),
        ],
    );
    let id = stack.create_campaign("refused", "Hi {{ name }}", "Dear {{ name }}");
    let campaign = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(campaign["progress"]["dead_lettered"], DEAD, "{campaign}");
    // The server accepts again: a replay sends them.
    let port = refusing.stop();
    let _accepting = SmtpSink::start_on(port, SinkMode::Accept);
    let seen = browse(&stack, "dead_letters.mjs", &["comms:emails", &DEAD.to_string()]);
    assert_eq!(seen["left"], 0, "{seen}");
    let sent = r#"comms_emails_total{outcome="sent"}"#;
    let start = std::time::Instant::now();
    while stack.metric("email-service", sent) != Some(DEAD as f64)
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        stack.metric("email-service", sent),
        Some(DEAD as f64),
        "the replayed emails were sent"
    );
    // And the counts follow: sent replaces dead-lettered.
    let expected =
        serde_json::json!({ "total": DEAD, "sent": DEAD, "failed": 0, "dead_lettered": 0, "pending": 0 });
    let start = std::time::Instant::now();
    let campaign = loop {
        let campaign = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
        if campaign["progress"] == expected || start.elapsed() > Duration::from_secs(30) {
            break campaign;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(campaign["progress"], expected, "{campaign}");
    let failures = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}/failures"));
    assert_eq!(failures["failures"], serde_json::json!([]), "{failures}");
    let records = stack.get(
        "notification-service",
        &format!("/api/v1/campaigns/{id}/notifications"),
    );
    assert_eq!(records, serde_json::json!({ "sent": DEAD }));
}
