//! The dashboard in a real browser (`tests/browser/*.mjs`, headless
//! chromium through playwright-core) against a stack on free ports: a
//! template error shown before anything is sent, previews, a campaign
//! created from the form followed to `completed` live, without a reload,
//! and its detail panel; dead letters appearing on a page opened before
//! them, listed with their reason, a page at a time, and replayed one and
//! all, on streams split into partitions; in prod, the token asked for and
//! used; users imported from a file and a campaign's export downloaded;
//! the send limits and their quota's use; the relays, one down.
//! Every page runs under its Content-Security-Policy, and a run in
//! which it refused anything fails (`tests/browser/browser.mjs`); each
//! service's OpenAPI reference renders with nothing fetched beyond
//! loopback.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use e2e::{all_sent, Stack, Wiring};
use testkit::{free_port, MailDev, Persistence, RedisServer, Reply, SinkMode, SmtpSink, WebhookReceiver};

const USERS: u64 = 300;

/// The command running the browser script `script` on `stack`'s
/// dashboard with `args`.
fn node(stack: &Stack, script: &str, args: &[&str]) -> Command {
    node_on(stack, "campaign-service", script, args)
}

/// The command running the browser script `script` on `service` of
/// `stack` with `args`.
fn node_on(stack: &Stack, service: &str, script: &str, args: &[&str]) -> Command {
    let mut command = Command::new("node");
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .arg(format!("tests/browser/{script}"))
        .arg(format!("http://127.0.0.1:{}", stack.port(service)))
        .args(args);
    command
}

/// Runs the browser script `script` with `args`; panics with what it and
/// the stack printed unless it succeeded; returns what it saw.
fn browse(stack: &Stack, script: &str, args: &[&str]) -> serde_json::Value {
    let output: Output = node(stack, script, args)
        .output()
        .expect("node runs (./test.sh installs it, with chromium and playwright-core)");
    seen(stack, script, output)
}

/// Runs the browser script `script` with `args` until it prints the line
/// `signal`, then runs `act` and sends the script a line on stdin; returns
/// what it saw in the end, as [`browse`], and what `act` returned.
fn browse_around<T>(
    stack: &Stack,
    script: &str,
    args: &[&str],
    signal: &str,
    act: impl FnOnce() -> T,
) -> (serde_json::Value, Option<T>) {
    let mut browser = node(stack, script, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (./test.sh installs it, with chromium and playwright-core)");
    let mut stdout = BufReader::new(browser.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the script's output");
    let acted = (first.trim() == signal).then(act);
    // (A script that does not wait for the line may have ended already.)
    let _ = writeln!(browser.stdin.as_mut().expect("piped stdin"));
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).expect("the script's output");
    let mut output = browser.wait_with_output().expect("the script ends");
    output.stdout = [first.as_bytes(), &rest].concat();
    (seen(stack, script, output), acted)
}

/// What `script` saw (its last line of output); panics with what it and
/// the stack printed unless it succeeded.
fn seen(stack: &Stack, script: &str, output: Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        stack.log_tails()
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).expect("a JSON line")
}

#[test]
fn a_campaign_created_in_the_browser_completes_on_the_page_live() {
    let stack = Stack::start(USERS);
    let seen = browse(&stack, "dashboard.mjs", &[&USERS.to_string()]);
    assert_eq!(seen["sent"], USERS, "{seen}");
    assert_eq!(seen["sameDocument"], true, "{seen}");
}

#[test]
fn a_campaign_s_suppressed_recipients_are_shown_on_its_row_and_detail_and_the_list_shows_them() {
    let stack = Stack::start(4);
    let address = stack.suppress_user(1);
    let id = stack.create_campaign("with a suppressed recipient", "Hi {{ name }}", "Dear {{ name }}");
    let seen = browse(&stack, "suppressed.mjs", &[&id, &address, "manual"]);
    assert_eq!(
        seen["cells"],
        serde_json::json!({ "total": 4, "sent": 3, "suppressed": 1 }),
        "{seen}"
    );
}

#[test]
fn a_campaign_scheduled_on_the_page_can_be_cancelled_there() {
    let stack = Stack::start(1);
    let seen = browse(&stack, "schedule.mjs", &[]);
    assert_eq!(seen["status"], "cancelled", "{seen}");
}

#[test]
fn a_sending_campaign_is_paused_resumed_and_cancelled_from_its_detail_panel() {
    let mut stack = Stack::start(USERS);
    // With email-service stopped the campaign stays `sending` for the
    // page to act on.
    stack.kill("email-service");
    let id = stack.create_campaign("controlled", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_for("the campaign sending", Duration::from_secs(30), || {
        stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"))["status"] == "sending"
    });
    let seen = browse(&stack, "control.mjs", &[&id]);
    assert_eq!(seen["steps"].as_array().unwrap().len(), 4, "{seen}");

    stack.start_service("email-service");
    stack.wait_for("the cancellation settled", Duration::from_secs(60), || {
        !stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"))["completed_at"].is_null()
    });
    let done = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
    assert_eq!(
        done["progress"],
        serde_json::json!({ "total": USERS, "sent": 0, "failed": 0, "dead_lettered": 0, "suppressed": 0, "cancelled": USERS, "pending": 0 }),
        "{done}"
    );
    assert!(stack.emails().is_empty(), "nothing was sent");
}

#[test]
fn the_audience_typed_shows_its_count_and_the_campaign_goes_to_that_segment() {
    let stack = Stack::start(USERS);
    let filter = "plan = 'pro' or 'vip' in tags";
    let url = format!(
        "http://127.0.0.1:{}/api/v1/users/count",
        stack.port("user-service")
    );
    let count = ureq::get(&url)
        .query("filter", filter)
        .call()
        .unwrap()
        .into_json::<serde_json::Value>()
        .unwrap()["count"]
        .as_i64()
        .unwrap();
    assert!(count > 0 && count < USERS as i64, "{count}");
    let seen = browse(&stack, "audience.mjs", &[filter, &count.to_string()]);
    let id = seen["id"].as_str().unwrap();
    let done = stack.wait_completed(id, Duration::from_secs(60));
    assert_eq!(done["progress"], all_sent(count as u64), "{done}");
}

#[test]
fn users_are_imported_and_a_campaign_exported_from_the_page() {
    let stack = Stack::start(USERS);
    let id = stack.create_campaign("exported", "Hi {{ name }}", "Dear {{ name }}");
    let done = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(done["progress"], all_sent(USERS), "{done}");
    let seen = browse(&stack, "users.mjs", &[&id, &USERS.to_string()]);
    assert_eq!(seen["exported"]["rows"], USERS, "{seen}");
    let imported = stack.get(
        "user-service",
        "/api/v1/users/count?filter=%27imported%27%20in%20tags",
    );
    assert_eq!(imported["count"], 2, "{imported}");
}

#[test]
fn the_send_limits_show_on_the_page_with_the_quota_used_and_the_wait() {
    let stack = Stack::start_with(60, vec![("EMAIL_SEND_PER_HOUR".into(), "40".into())]);
    stack.create_campaign("over its quota", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_for("the quota's 40 emails", Duration::from_secs(30), || {
        stack.emails().len() >= 40
    });
    let seen = browse(
        &stack,
        "shows.mjs",
        &["#limits", "no rate", "this hour 40 of 40", "a quota is used up"],
    );
    assert!(
        seen["shown"].as_str().unwrap().starts_with("Send limits: "),
        "{seen}"
    );
}

#[test]
fn the_relays_show_on_the_page_one_down_and_the_other_taking_its_mail() {
    let mail = MailDev::start();
    let relays = format!(
        "smtp://127.0.0.1:{}?name=gone&weight=1, smtp://127.0.0.1:{}?name=maildev&weight=1&rate=50",
        free_port(),
        mail.smtp_port()
    );
    let stack = Stack::start_on(
        20,
        RedisServer::start_with(Persistence::AofEverySec, None),
        mail,
        Wiring::Environment,
        vec![("EMAIL_RELAYS".into(), relays)],
    );
    let id = stack.create_campaign("through one relay", "Hi {{ name }}", "Dear {{ name }}");
    let done = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(done["progress"], all_sent(20), "{done}");
    let seen = browse(
        &stack,
        "shows.mjs",
        &[
            "#relays",
            "gone",
            "down: relay unusable: cannot connect",
            "maildev",
            "50/s",
            "up\t20",
        ],
    );
    println!("{}", seen["shown"]);
}

#[test]
fn an_html_draft_is_previewed_in_a_sandboxed_frame_and_test_sent() {
    let stack = Stack::start(1);
    let seen = browse(&stack, "html.mjs", &[]);
    assert_eq!(seen["heading"], "Dear <b>Ada</b>", "{seen}");
    stack.wait_for("the test emails", Duration::from_secs(30), || {
        stack
            .emails()
            .iter()
            .filter(|email| email["subject"] == "[TEST] Hello <b>Ada</b>")
            .count()
            == 2
    });
}

#[test]
fn the_dashboard_works_under_its_policy_which_refuses_inline_code() {
    let stack = Stack::start(1);
    let seen = browse(&stack, "csp.mjs", &[]);
    assert_eq!(seen["injected"]["ran"], false, "{seen}");
}

#[test]
fn every_service_s_api_reference_renders_from_the_service_alone() {
    let stack = Stack::start(1);
    for (service, operation) in [
        ("campaign-service", "/api/v1/campaign/create"),
        ("user-service", "/api/v1/users"),
        ("notification-service", "/api/v1/notifications/{id}"),
        ("email-service", "/health"),
    ] {
        let output = node_on(&stack, service, "api_docs.mjs", &[operation])
            .output()
            .expect("node runs (./test.sh installs it, with chromium and playwright-core)");
        let seen = seen(&stack, "api_docs.mjs", output);
        assert_eq!(seen["shown"], serde_json::json!([operation]), "{service}: {seen}");
    }
}

#[test]
fn dead_letters_are_shown_a_page_at_a_time() {
    const POISON: u64 = 105;
    let stack = Stack::start(1);
    let (seen, _) = browse_around(
        &stack,
        "paging.mjs",
        &["comms:emails", &POISON.to_string()],
        "open",
        || {
            // Entries email-service cannot read: each is dead-lettered.
            for n in 0..POISON {
                stack
                    .redis
                    .node()
                    .command(&["XADD", "comms:emails", "*", "garbage", &n.to_string()]);
            }
        },
    );
    assert_eq!(seen["shown"], POISON, "{seen}");
}

#[test]
fn in_prod_the_page_asks_for_the_token_and_creates_with_it() {
    const TOKEN: &str = "browser-token";
    let stack = Stack::start_with(
        3,
        vec![
            ("APP_ENV".into(), "prod".into()),
            ("API_TOKEN".into(), TOKEN.into()),
            (
                "UNSUBSCRIBE_KEY".into(),
                "a-prod-unsubscribe-key-of-32-chars-or-more".into(),
            ),
        ],
    );
    let seen = browse(&stack, "token.mjs", &[TOKEN]);
    assert!(
        seen["created"]
            .as_str()
            .is_some_and(|created| created.starts_with("created ")),
        "{seen}"
    );
}

#[test]
fn dead_letters_are_listed_and_replayed_from_the_page() {
    const DEAD: u64 = 5;
    const PARTITIONS: u32 = 2;
    // An SMTP server refusing every transaction past a two-second retry
    // budget: every email request is dead-lettered. The streams are split,
    // so the page shows partitions, and replays from each letter's own.
    let refusing = SmtpSink::start(SinkMode::SoftReject);
    let stack = Stack::start_with(
        DEAD,
        vec![
            ("SMTP_PORT".into(), refusing.port().to_string()),
            ("RETRY_BUDGET_SECS".into(), "2".into()),
            ("CLAIM_IDLE_MS".into(), "300".into()),
            ("STREAM_PARTITIONS".into(), PARTITIONS.to_string()),
        ],
    );
    // The page is open before anything is dead-lettered; the script
    // creates the campaign, says when the dead letters are shown, and
    // waits for a line before it replays them.
    // The server accepts again (once the dead letters are shown): a
    // replay sends them.
    let (seen, _accepting) = browse_around(
        &stack,
        "dead_letters.mjs",
        &["comms:emails", &DEAD.to_string(), &PARTITIONS.to_string()],
        "dead-lettered",
        || refusing.recover(),
    );
    let id = seen["id"].as_str().expect("the campaign's id").to_string();
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
    let expected = all_sent(DEAD);
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
    let records =
        stack.notification_counts(&id, &serde_json::json!({ "sent": DEAD }), Duration::from_secs(60));
    assert_eq!(records, serde_json::json!({ "sent": DEAD }));
}

#[test]
fn a_webhook_registered_on_the_page_receives_a_campaign_s_events_signed() {
    const RECIPIENTS: u64 = 20;
    let stack = Stack::start(RECIPIENTS);
    let receiver = WebhookReceiver::start(Reply::Ok);
    // Every kind is ticked: each email sent, then the campaign completed.
    let expected = RECIPIENTS + 1;
    let seen = browse(&stack, "webhooks.mjs", &[&receiver.url(), &expected.to_string()]);
    let secret = seen["secret"].as_str().expect("the secret shown");
    let events = e2e::webhooks::signed_events(&receiver, secret);
    assert_eq!(events.len() as u64, expected, "{seen}");
    assert_eq!(
        e2e::webhooks::of_kind(&events, "email.sent").len() as u64,
        RECIPIENTS
    );
    let listed = stack.get("campaign-service", "/api/v1/webhooks");
    assert_eq!(listed["webhooks"], serde_json::json!([]), "removed on the page");
}
