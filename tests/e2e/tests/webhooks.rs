//! Signed webhooks through the four services: every outcome of a campaign
//! reaches the endpoints that asked for it, signed, each event at least
//! once with a stable id, across campaign-service's SIGKILL and an
//! endpoint down for 30 s; an endpoint
//! that is slow, answers 500 or closes the connection holds up no other,
//! its events end dead when their tries run out and reach it once
//! replayed; each kind of event (failed, bounced, suppressed, complained,
//! a campaign completed or cancelled) goes to whoever asked for it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use e2e::webhooks::{of_kind, signed_events as events};
use e2e::Stack;
use serde_json::{json, Value};
use testkit::{Reply, SinkMode, SmtpSink, WebhookReceiver};

/// Every kind of event.
const ALL_KINDS: [&str; 8] = [
    "email.sent",
    "email.failed",
    "email.dead_lettered",
    "email.suppressed",
    "email.bounced",
    "email.complained",
    "campaign.completed",
    "campaign.cancelled",
];

/// Registers `receiver` for `events`, `batch_size` per POST; its id and
/// secret.
fn register(stack: &Stack, receiver: &WebhookReceiver, events: &[&str], batch_size: i64) -> (String, String) {
    let (status, endpoint) = stack.post(
        "campaign-service",
        "/api/v1/webhooks",
        &json!({ "url": receiver.url(), "events": events, "batch_size": batch_size }),
    );
    assert_eq!(status, 201, "{endpoint}");
    (
        endpoint["id"].as_str().unwrap().to_string(),
        endpoint["secret"].as_str().unwrap().to_string(),
    )
}

#[test]
fn every_outcome_of_a_campaign_reaches_the_endpoints_signed_across_a_kill_and_an_endpoint_down_for_30_s() {
    const USERS: usize = 2_000;
    let mut stack = Stack::start_with(
        USERS as u64,
        vec![
            ("CAMPAIGN_WEBHOOK_RETRY_BASE_MS".into(), "200".into()),
            ("CAMPAIGN_WEBHOOK_RETRY_MAX_MS".into(), "2000".into()),
        ],
    );
    let mut one_by_one = WebhookReceiver::start(Reply::Ok);
    let batched = WebhookReceiver::start(Reply::Ok);
    let (one_id, one_secret) = register(&stack, &one_by_one, &["email.sent", "campaign.completed"], 1);
    let (batched_id, batched_secret) = register(&stack, &batched, &ALL_KINDS, 50);

    // 100 emails a second: 20 s of sending, the endpoint down in the middle.
    let (status, campaign) = stack.post(
        "campaign-service",
        "/api/v1/campaigns",
        &json!({ "name": "hooks", "subject": "Hi {{ name }}", "body": "Dear {{ name }}", "rate_per_s": 100 }),
    );
    assert_eq!(status, 201, "{campaign}");
    let campaign_id = campaign["id"].as_str().unwrap().to_string();
    stack.wait_for("the first events", Duration::from_secs(60), || {
        one_by_one.received().len() >= 200
    });
    // campaign-service dies mid-campaign, with events kept and not sent,
    // and comes back; then the first endpoint goes down for 30 s.
    stack.kill("campaign-service");
    stack.start_service("campaign-service");
    one_by_one.down();
    let while_up = one_by_one.received().len();
    std::thread::sleep(Duration::from_secs(30));
    assert_eq!(
        one_by_one.received().len(),
        while_up,
        "nothing arrives while it is down"
    );
    let endpoint = stack.get("campaign-service", &format!("/api/v1/webhooks/{one_id}"));
    assert!(endpoint["failures"].as_i64().unwrap() > 0, "{endpoint}");
    assert!(
        endpoint["last_error"].as_str().unwrap().contains("onnection"),
        "{endpoint}"
    );
    one_by_one.up();

    let campaign = stack.wait_completed(&campaign_id, Duration::from_secs(120));
    assert_eq!(campaign["progress"]["sent"], USERS, "{campaign}");
    for (receiver, secret, id) in [
        (&one_by_one, &one_secret, &one_id),
        (&batched, &batched_secret, &batched_id),
    ] {
        stack.wait_for("every event at the endpoint", Duration::from_secs(120), || {
            events(receiver, secret).len() == USERS + 1
        });
        let events = events(receiver, secret);
        let sent = of_kind(&events, "email.sent");
        assert_eq!(sent.len(), USERS);
        let notifications: BTreeSet<&str> = sent
            .iter()
            .map(|event| event["data"]["notification_id"].as_str().unwrap())
            .collect();
        assert_eq!(notifications.len(), USERS, "one event per notification");
        assert!(sent
            .iter()
            .all(|event| event["data"]["campaign_id"] == campaign_id.as_str()
                && event["data"]["recipient"]
                    .as_str()
                    .is_some_and(|to| to.contains('@'))));
        let completed = of_kind(&events, "campaign.completed");
        assert_eq!(completed.len(), 1);
        assert_eq!(
            completed[0]["data"]["progress"]["sent"], USERS,
            "{}",
            completed[0]
        );
        stack.wait_for("the endpoint's figures", Duration::from_secs(10), || {
            let endpoint = stack.get("campaign-service", &format!("/api/v1/webhooks/{id}"));
            endpoint["pending"] == 0 && endpoint["dead"] == 0 && endpoint["failures"] == 0
        });
    }
    assert!(
        batched.received().len() < USERS / 10,
        "batched: {} POSTs",
        batched.received().len()
    );
    let listed = stack.get("campaign-service", "/api/v1/webhooks");
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2, "{listed}");
    assert!(
        listed.to_string().find("whsec_").is_none(),
        "no secret is listed again"
    );
}

#[test]
fn a_slow_failing_or_closing_endpoint_holds_up_no_other_and_gets_its_dead_events_replayed() {
    const USERS: usize = 10;
    let stack = Stack::start_with(
        USERS as u64,
        vec![
            ("CAMPAIGN_WEBHOOK_RETRY_BASE_MS".into(), "200".into()),
            ("CAMPAIGN_WEBHOOK_RETRY_MAX_MS".into(), "1000".into()),
            ("CAMPAIGN_WEBHOOK_RETRY_FOR_MS".into(), "4000".into()),
            ("CAMPAIGN_WEBHOOK_TIMEOUT_MS".into(), "1000".into()),
        ],
    );
    let good = WebhookReceiver::start(Reply::Ok);
    let broken = [
        WebhookReceiver::start(Reply::After(Duration::from_secs(3))),
        WebhookReceiver::start(Reply::Status(500)),
        WebhookReceiver::start(Reply::Hang),
    ];
    let (_, good_secret) = register(&stack, &good, &["email.sent"], 1);
    let registered: Vec<(String, String)> = broken
        .iter()
        .map(|receiver| register(&stack, receiver, &["email.sent"], 5))
        .collect();

    let campaign_id = stack.create_campaign("slow hooks", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_completed(&campaign_id, Duration::from_secs(60));
    stack.wait_for(
        "every event at the good endpoint",
        Duration::from_secs(30),
        || events(&good, &good_secret).len() == USERS,
    );
    for ((id, _), why) in registered
        .iter()
        .zip(["timed out", "HTTP 500: not now", "Unexpected EOF"])
    {
        stack.wait_for("every event dead", Duration::from_secs(60), || {
            stack.get("campaign-service", &format!("/api/v1/webhooks/{id}"))["dead"] == USERS
        });
        let dead = stack.get("campaign-service", &format!("/api/v1/webhooks/{id}/dead?limit=4"));
        assert_eq!(dead["dead"].as_array().unwrap().len(), 4, "{dead}");
        let first = &dead["dead"][0];
        assert!(first["attempts"].as_i64().unwrap() >= 1, "{first}");
        assert!(first["last_error"].as_str().unwrap().contains(why), "{first}");
        assert_eq!(first["event"]["type"], "email.sent", "{first}");
        let after = dead["next_after"].as_str().unwrap();
        let rest = stack.get(
            "campaign-service",
            &format!("/api/v1/webhooks/{id}/dead?after={after}"),
        );
        assert_eq!(rest["dead"].as_array().unwrap().len(), USERS - 4, "{rest}");
    }
    for (receiver, (id, secret)) in broken.iter().zip(&registered) {
        receiver.reply(Reply::Ok);
        let (status, replayed) = stack.post(
            "campaign-service",
            &format!("/api/v1/webhooks/{id}/replay"),
            &json!({}),
        );
        assert_eq!((status, replayed), (200, json!({ "replayed": USERS })));
        stack.wait_for("every replayed event", Duration::from_secs(30), || {
            of_kind(&events(receiver, secret), "email.sent").len() == USERS
        });
    }
}

#[test]
fn each_kind_of_event_goes_to_whoever_asked_for_it_and_bad_registrations_are_refused() {
    const USERS: usize = 5;
    let sink = SmtpSink::start(SinkMode::HardReject);
    let stack = Stack::start_with(USERS as u64, vec![("SMTP_PORT".into(), sink.port().to_string())]);
    let everything = WebhookReceiver::start(Reply::Ok);
    let ends_only = WebhookReceiver::start(Reply::Ok);
    let (_, everything_secret) = register(&stack, &everything, &ALL_KINDS, 10);
    let (ends_id, ends_secret) = register(
        &stack,
        &ends_only,
        &["campaign.completed", "campaign.cancelled"],
        1,
    );

    // Refused at RCPT: failed, and the addresses bounced.
    let first = stack.create_campaign("bounces", "Hi {{ name }}", "Dear {{ name }}");
    assert_eq!(
        stack.wait_completed(&first, Duration::from_secs(60))["progress"]["failed"],
        USERS
    );
    stack.wait_for("the bounces", Duration::from_secs(30), || {
        of_kind(&events(&everything, &everything_secret), "email.bounced").len() == USERS
    });
    // The next campaign is suppressed for all of them.
    let second = stack.create_campaign("suppressed", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_completed(&second, Duration::from_secs(60));
    // A complaint.
    let complainer = stack.get("user-service", "/api/v1/users")["users"][0]["email"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, report) = stack.post_report(&e2e::reports::complaint(&complainer));
    assert_eq!(status, 202, "{report}");
    // A scheduled campaign cancelled.
    let (status, scheduled) = stack.post(
        "campaign-service",
        "/api/v1/campaigns",
        &json!({ "name": "later", "subject": "Hi", "body": "Hi", "send_at": "2099-01-01T00:00:00Z" }),
    );
    assert_eq!(status, 201, "{scheduled}");
    let third = scheduled["id"].as_str().unwrap();
    let (status, cancelled) = stack.post(
        "campaign-service",
        &format!("/api/v1/campaigns/{third}/cancel"),
        &json!({}),
    );
    assert_eq!(status, 200, "{cancelled}");

    stack.wait_for("every kind of event", Duration::from_secs(30), || {
        let events = events(&everything, &everything_secret);
        [
            ("email.failed", USERS),
            ("email.bounced", USERS),
            ("email.suppressed", USERS),
        ]
        .iter()
        .all(|(kind, count)| of_kind(&events, kind).len() == *count)
            && of_kind(&events, "email.complained").len() == 1
            && of_kind(&events, "campaign.completed").len() == 2
            && of_kind(&events, "campaign.cancelled").len() == 1
    });
    let got = events(&everything, &everything_secret);
    let complaint = of_kind(&got, "email.complained")[0];
    assert_eq!(complaint["data"]["recipient"], complainer.as_str(), "{complaint}");
    let bounce = of_kind(&got, "email.bounced")[0];
    assert_eq!(bounce["data"]["campaign_id"], first.as_str(), "{bounce}");
    assert!(
        bounce["data"]["detail"].as_str().unwrap().contains('5'),
        "{bounce}"
    );
    let failed = of_kind(&got, "email.failed")[0];
    assert!(failed["data"]["detail"].as_str().is_some(), "{failed}");
    assert_eq!(
        of_kind(&got, "campaign.cancelled")[0]["data"]["campaign_id"],
        third
    );
    stack.wait_for("the campaigns' ends only", Duration::from_secs(30), || {
        events_of_kinds(&events(&ends_only, &ends_secret))
            == ["campaign.cancelled", "campaign.completed", "campaign.completed"]
    });

    // The docs' snippet verifies a POST, and refuses it tampered with.
    let post = everything.received().remove(0);
    assert!(docs_snippet_verifies(
        &everything_secret,
        &post.headers,
        &post.body
    ));
    let tampered = post.body.replacen("email.", "emai1.", 1);
    assert!(!docs_snippet_verifies(
        &everything_secret,
        &post.headers,
        &tampered
    ));

    // Bad registrations: a 4xx naming the problem, nothing registered.
    let refused = |body: Value, status: u16, needle: &str| {
        let (got, error) = stack.post("campaign-service", "/api/v1/webhooks", &body);
        assert_eq!(got, status, "{body}: {error}");
        assert!(
            error["error"].as_str().unwrap().contains(needle),
            "{body}: {error}"
        );
    };
    refused(
        json!({ "url": "ftp://example.com/", "events": ["email.sent"] }),
        400,
        "http or https",
    );
    refused(
        json!({ "url": "http://169.254.169.254/latest", "events": ["email.sent"] }),
        400,
        "link-local",
    );
    refused(
        json!({ "url": "http://[fe80::1]/", "events": ["email.sent"] }),
        400,
        "link-local",
    );
    refused(json!({ "url": everything.url(), "events": [] }), 400, "no kind");
    refused(
        json!({ "url": everything.url(), "events": ["sent"] }),
        422,
        "unknown variant",
    );
    refused(
        json!({ "url": everything.url(), "events": ["email.sent"], "batch_size": 0 }),
        400,
        "batch_size",
    );
    refused(
        json!({ "url": everything.url(), "events": ["email.sent"], "secret": "hunter2" }),
        400,
        "whsec_",
    );
    assert_eq!(
        stack.get("campaign-service", "/api/v1/webhooks")["webhooks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let url = format!(
        "http://127.0.0.1:{}/api/v1/webhooks/",
        stack.port("campaign-service")
    );
    assert_eq!(
        testkit::http::send("DELETE", &format!("{url}{ends_id}"), None, None).0,
        204
    );
    assert_eq!(
        testkit::http::send("DELETE", &format!("{url}{ends_id}"), None, None).0,
        404
    );
    assert_eq!(
        stack.get("campaign-service", "/api/v1/webhooks")["webhooks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The kinds of `events`, sorted.
fn events_of_kinds(events: &BTreeMap<String, Value>) -> Vec<String> {
    let mut kinds: Vec<String> = events
        .values()
        .map(|event| event["type"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

/// Whether the Python snippet of docs/webhooks.md says that `body`, with
/// `headers`, was signed with `secret`.
fn docs_snippet_verifies(secret: &str, headers: &BTreeMap<String, String>, body: &str) -> bool {
    let docs = include_str!("../../../docs/webhooks.md");
    let snippet = docs
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a Python snippet in docs/webhooks.md");
    let script = format!(
        "{snippet}\nimport json, sys\ngiven = json.load(sys.stdin)\n\
         print(verify(given['secret'], given['headers'], given['body'].encode()))\n"
    );
    let mut python = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = json!({ "secret": secret, "headers": headers, "body": body });
    std::io::Write::write_all(python.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    drop(python.stdin.take());
    let output = python.wait_with_output().unwrap();
    assert!(output.status.success(), "the snippet failed");
    match String::from_utf8_lossy(&output.stdout).trim() {
        "True" => true,
        "False" => false,
        other => panic!("the snippet printed {other}"),
    }
}
