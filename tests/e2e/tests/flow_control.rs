//! Flow control under concurrency: twenty campaigns created at once share
//! one window. What the streams behind the expansions hold (entries and
//! Redis' memory peak) stays under the bound derived in
//! docs/architecture.md (*Flow control*), and every campaign still emails
//! each of its users exactly once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use contracts::NOTIFICATIONS;
use e2e::mailbox::assert_each_got;
use e2e::{all_sent, Stack, Wiring};
use serde_json::json;
use testkit::{MailDev, Persistence, RedisServer};

/// Campaigns created at once.
const CAMPAIGNS: u64 = 20;
/// Users, so recipients of each campaign.
const AUDIENCE: u64 = 500;
/// `EXPANSION_BACKLOG`: the window all expansions share.
const WINDOW: u64 = 300;
/// `USER_PAGE_SIZE`.
const PAGE: u64 = 100;
/// `READ_BATCH` of every service: the most entries one read or one
/// publish pipeline carries, which Redis buffers for the client.
const READ_BATCH: u64 = 64;
/// The streams behind an expansion.
const STREAMS: [&str; 3] = ["comms:notifications", "comms:emails", "comms:deliveries"];
/// Bytes of the body template (and so, within a few bytes, of each
/// rendered body): emails dominate what the streams hold.
const BODY_BYTES: usize = 8_000;

/// One number of `INFO memory`.
fn memory_figure(stack: &Stack, name: &str) -> u64 {
    let info = stack.redis_cli(&["INFO", "memory"]);
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in INFO memory:\n{info}"))
}

#[test]
fn twenty_campaigns_at_once_stay_within_the_window() {
    let redis = RedisServer::start_limited(Persistence::None, None, "256mb");
    let mut stack = Stack::start_on(
        AUDIENCE,
        redis,
        MailDev::start(),
        Wiring::Environment,
        vec![
            ("EXPANSION_BACKLOG".into(), WINDOW.to_string()),
            ("USER_PAGE_SIZE".into(), PAGE.to_string()),
            ("READ_BATCH".into(), READ_BATCH.to_string()),
        ],
    );
    // The user-service is held back while the campaigns are created, so
    // that their twenty expansions start together, as after a restart.
    stack.kill("user-service");
    let body = format!("Dear {{{{ name }}}}, {}", "x".repeat(BODY_BYTES));
    let ids: Vec<String> = (0..CAMPAIGNS)
        .map(|n| stack.create_campaign(&format!("at once {n}"), "Hello {{ name }}", &body))
        .collect();
    stack.redis_cli(&["CONFIG", "RESETSTAT"]);
    let baseline = memory_figure(&stack, "used_memory");

    let count = "local n = 0 for _, key in ipairs(KEYS) do n = n + redis.call('XLEN', key) end return n";
    stack.start_service("user-service");
    let done = AtomicBool::new(false);
    let most = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut most = 0u64;
            while !done.load(Ordering::SeqCst) {
                let mut command = vec!["EVAL", count, "3"];
                command.extend(STREAMS);
                let reply = stack.redis.node().command(&command);
                let held: u64 = reply.trim().trim_start_matches(':').parse().unwrap_or(0);
                most = most.max(held);
                std::thread::sleep(Duration::from_millis(5));
            }
            most
        });
        for id in &ids {
            let campaign = stack.wait_completed(id, Duration::from_secs(300));
            assert_eq!(campaign["progress"], all_sent(AUDIENCE), "{campaign}");
        }
        done.store(true, Ordering::SeqCst);
        sampler.join().unwrap()
    });
    let peak = memory_figure(&stack, "used_memory_peak");
    assert_eq!(
        stack.entries_added(NOTIFICATIONS),
        CAMPAIGNS * AUDIENCE,
        "one notification.requested per user and campaign"
    );

    // The bound of docs/architecture.md: at most WINDOW recipients are
    // in the pipeline, each with at most one entry per stream: an email
    // (its rendered body and subject, address, name and the envelope: 1 KB
    // beside the body) and two small entries (a notification request and
    // a delivery outcome, 1 KB each), each taking its fields plus the
    // stream's and the allocator's overhead (×1.5, generous); Redis
    // buffers up to a read batch of emails for a reader and a publish
    // pipeline from a writer, twice each (email- and notification-service
    // each read and write); the rest (the campaigns' own entries, the
    // groups, leases, clients) is the fixed part, measured as the baseline
    // before the expansions start, plus 2 MB of slack.
    let email = (BODY_BYTES as u64 + 1_024) * 3 / 2;
    let small = 1_024 * 3 / 2;
    let window_part = WINDOW * (email + 2 * small);
    let buffers = 4 * READ_BATCH * email;
    let bound = baseline + window_part + buffers + 2 * 1024 * 1024;
    println!(
        "entries held at most {most} (window {WINDOW}, {} at once unpaced); Redis peak {peak} bytes, bound {bound} (baseline {baseline})",
        CAMPAIGNS * AUDIENCE
    );
    assert!(
        most <= WINDOW * STREAMS.len() as u64,
        "the streams held up to {most} entries: past {} ({} streams × the window of {WINDOW})",
        WINDOW * STREAMS.len() as u64,
        STREAMS.len()
    );
    assert!(
        peak <= bound,
        "Redis' memory peaked at {peak} bytes, past the bound of {bound}"
    );
}

#[test]
fn creations_past_the_quota_or_redis_ceiling_are_refused_and_a_full_redis_loses_nothing() {
    const USERS: u64 = 200;
    let mut stack = Stack::start_with(
        USERS,
        vec![
            ("CAMPAIGN_MAX_IN_PROGRESS".into(), "2".into()),
            ("USER_PAGE_SIZE".into(), "20".into()),
            ("EXPANSION_BACKLOG".into(), "40".into()),
        ],
    );
    // Nobody reads the notifications yet: the expansions stop at the
    // window, mid-campaign.
    stack.kill("notification-service");
    let ids = [
        stack.create_campaign("first", "Hi {{ name }}", "Dear {{ name }}"),
        stack.create_campaign("second", "Hi {{ name }}", "Dear {{ name }}"),
    ];
    let request = json!({ "name": "third", "subject": "Hi", "body": "Dear {{ name }}" });
    let (status, body) = stack.post("campaign-service", "/api/v1/campaigns", &request);
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("CAMPAIGN_MAX_IN_PROGRESS"),
        "the quota is named: {body}"
    );
    stack.wait_for("the expansions at the window", Duration::from_secs(60), || {
        stack.entries_added(NOTIFICATIONS) == 40
    });
    stack.start_service("notification-service");

    // Redis at its ceiling mid-campaign: a creation is refused before
    // anything is stored, and the services' writes are refused and
    // retried.
    stack.redis_cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let (status, body) = stack.post("campaign-service", "/api/v1/campaigns", &request);
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("maxmemory"), "{body}");
    let refused = || {
        ["user-service", "notification-service", "email-service"]
            .iter()
            .any(|service| stack.log(service).contains("maxmemory"))
    };
    stack.wait_for("a write refused for memory", Duration::from_secs(60), refused);
    let at_ceiling = stack.entries_added(NOTIFICATIONS);
    assert!(
        at_ceiling < 2 * USERS,
        "the ceiling landed mid-expansion ({at_ceiling} of {})",
        2 * USERS
    );
    std::thread::sleep(Duration::from_secs(3));
    stack.redis_cli(&["CONFIG", "SET", "maxmemory", testkit::MAXMEMORY]);

    for id in &ids {
        let campaign = stack.wait_completed(id, Duration::from_secs(180));
        assert_eq!(campaign["progress"], all_sent(USERS), "{campaign}");
    }
    // One email per user and campaign.
    assert_each_got(&stack, USERS, 2);
    let (status, body) = stack.post("campaign-service", "/api/v1/campaigns", &request);
    assert_eq!(status, 201, "room again once the campaigns completed: {body}");
}
