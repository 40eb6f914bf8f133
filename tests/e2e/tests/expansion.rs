//! A campaign's audience is expanded once, whatever the announcements:
//! exactly one `notification.requested` per user, and one email per user,
//! with announcements queued behind a stopped user-service, and with
//! user-service SIGKILLed in the middle of an expansion; and an expansion
//! paced by the backlog of the services behind it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use contracts::{CampaignCreated, CAMPAIGNS, NOTIFICATIONS};
use e2e::mailbox::assert_each_got;
use e2e::{all_sent, Stack};

fn create_campaign(stack: &Stack) -> (String, CampaignCreated) {
    let (subject, body) = ("Hello {{ name }}", "Dear {{ name }}, this goes to {{ email }}.");
    let id = stack.create_campaign("once", subject, body);
    let event = CampaignCreated {
        campaign_id: id.clone(),
        name: "once".into(),
        subject: subject.into(),
        body: body.into(),
        audience: None,
        resend_of: None,
        html: None,
        rate_per_s: None,
    };
    (id, event)
}

/// Adds a copy of the announcement of `event` to `comms:campaigns`, as a
/// second campaign-service instance or a replayed dead letter would.
fn announce_again(stack: &Stack, event: &CampaignCreated) {
    let payload = serde_json::to_string(event).unwrap();
    stack.redis.node().command(&[
        "XADD",
        CAMPAIGNS,
        "*",
        "type",
        "campaign.created",
        "v",
        "1",
        "id",
        &event.campaign_id,
        "time",
        "1",
        "payload",
        &payload,
    ]);
}

#[test]
fn announcements_queued_behind_a_stopped_user_service_expand_the_audience_once() {
    const USERS: u64 = 500;
    let mut stack = Stack::start_with(
        USERS,
        vec![
            ("CAMPAIGN_REANNOUNCE_MS".into(), "300".into()),
            ("USER_PAGE_SIZE".into(), "50".into()),
        ],
    );
    stack.kill("user-service");
    let (id, event) = create_campaign(&stack);
    // Several re-announcement intervals pass while user-service is down.
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..3 {
        announce_again(&stack, &event);
    }
    let announcements = stack.entries_added(CAMPAIGNS);
    assert_eq!(
        announcements, 4,
        "the announcement and its three copies, and no re-announcement while it waits"
    );
    stack.start_service("user-service");

    let campaign = stack.wait_completed(&id, Duration::from_secs(120));
    assert_eq!(campaign["progress"], all_sent(USERS));
    assert_eq!(
        stack.entries_added(NOTIFICATIONS),
        USERS,
        "one notification.requested per user after {announcements} announcements\n{}",
        stack.log_tails()
    );
    assert_each_got(&stack, USERS, 1);
}

#[test]
fn a_user_service_killed_mid_expansion_resumes_and_repeats_at_most_one_page() {
    const USERS: u64 = 5_000;
    const PAGE: u64 = 10;
    let mut stack = Stack::start_with(USERS, vec![("USER_PAGE_SIZE".into(), PAGE.to_string())]);
    let (id, _) = create_campaign(&stack);

    let start = Instant::now();
    while stack.entries_added(NOTIFICATIONS) < USERS / 5 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "expansion did not start\n{}",
            stack.log_tails()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    stack.kill("user-service");
    let at_kill = stack.entries_added(NOTIFICATIONS);
    assert!(
        at_kill < USERS,
        "the kill landed mid-expansion ({at_kill} of {USERS})"
    );
    stack.start_service("user-service");

    let campaign = stack.wait_completed(&id, Duration::from_secs(180));
    assert_eq!(campaign["progress"], all_sent(USERS));
    let added = stack.entries_added(NOTIFICATIONS);
    println!("killed at {at_kill} of {USERS} notifications; {added} published in all");
    assert!(
        (USERS..=USERS + PAGE).contains(&added),
        "at most one page published again: {added}"
    );
    assert_each_got(&stack, USERS, 1);
}

#[test]
fn a_large_audience_is_expanded_at_the_pace_of_the_services_behind_it() {
    const AUDIENCE: u64 = 3_000;
    const MAX_BACKLOG: u64 = 300;
    let sink = testkit::SmtpSink::start(testkit::SinkMode::Accept);
    let stack = Stack::start_with(
        AUDIENCE,
        vec![
            ("SMTP_PORT".into(), sink.port().to_string()),
            ("EXPANSION_BACKLOG".into(), MAX_BACKLOG.to_string()),
            ("USER_PAGE_SIZE".into(), "100".into()),
        ],
    );
    // What the three streams behind the expansion hold, sampled while the
    // campaign runs: unpaced, the whole audience is in Redis at once.
    let count =
        "return redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[2]) + redis.call('XLEN', KEYS[3])";
    let done = AtomicBool::new(false);
    let (campaign, most) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut most = 0u64;
            while !done.load(Ordering::SeqCst) {
                let reply = stack.redis.node().command(&[
                    "EVAL",
                    count,
                    "3",
                    "comms:notifications",
                    "comms:emails",
                    "comms:deliveries",
                ]);
                let held: u64 = reply.trim().trim_start_matches(':').parse().unwrap_or(0);
                most = most.max(held);
                std::thread::sleep(Duration::from_millis(5));
            }
            most
        });
        let id = stack.create_campaign("paced", "Hi {{ name }}", "Dear {{ name }}");
        // The audience's size is known from the start of the paced
        // expansion, so progress and ETA are too.
        let start = Instant::now();
        let first_known = loop {
            let campaign = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
            if campaign["progress"]["total"] == AUDIENCE || start.elapsed() > Duration::from_secs(60) {
                break campaign;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(first_known["progress"]["total"], AUDIENCE, "{first_known}");
        assert!(
            first_known["progress"]["sent"].as_u64().unwrap() < AUDIENCE / 2,
            "the total was known early, not only once expanded: {first_known}"
        );
        let campaign = stack.wait_completed(&id, Duration::from_secs(180));
        done.store(true, Ordering::SeqCst);
        (campaign, sampler.join().unwrap())
    });
    assert_eq!(campaign["progress"], all_sent(AUDIENCE));
    assert!(most > 0, "the sampler saw the campaign's entries");
    // The backlog is checked before each page; between two checks entries
    // move on to the next stream before their trim: a few times the limit
    // at most, far below the audience.
    assert!(
        most <= 3 * MAX_BACKLOG,
        "the streams held up to {most} entries (limit {MAX_BACKLOG}, audience {AUDIENCE})"
    );
}
