//! Several instances of every service on one Redis and one PostgreSQL
//! (a database per service), one instance of each SIGKILLed mid-campaign
//! and not restarted: the survivors finish the campaign with exact counts,
//! every user gets one email (or, for a send the kill cut between the SMTP
//! server's answer and the ledger, a duplicate with the same Message-ID),
//! and the work done once per cluster moved to a survivor.

use std::time::{Duration, Instant};

use e2e::mailbox::{check_mailbox, create_campaign, users};
use e2e::{all_sent, Stack};
use testkit::Postgres;

const USERS: u64 = 4_000;

/// The services that run as three instances; one of each is killed.
const WORKERS: [&str; 3] = ["user-service", "notification-service", "email-service"];

/// The lease of each service's trimmer and its other work done once per
/// cluster, by the service.
const LEASES: [(&str, &str); 4] = [
    ("user-service", "comms:lease:user-service:trim"),
    ("notification-service", "comms:lease:notification-service:trim"),
    ("email-service", "comms:lease:email-service:trim"),
    ("campaign-service", "comms:lease:campaign-service:reannounce"),
];

/// The environment: a database per service on `postgres`, and times short
/// enough that a dead instance's work is taken over within seconds.
fn environment(postgres: &Postgres) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = ["campaign", "user", "notification", "email"]
        .into_iter()
        .map(|service| {
            (
                format!("{}_DATABASE_URL", service.to_uppercase()),
                postgres.database(service),
            )
        })
        .collect();
    for (key, value) in [
        ("CLAIM_IDLE_MS", "1000"),
        ("TASK_LEASE_MS", "2000"),
        ("EMAIL_LEASE_MS", "2000"),
        ("USER_EXPANSION_LEASE_MS", "2000"),
        // Small pages and a small window: the expansion is still under way
        // when its instance is killed.
        ("USER_PAGE_SIZE", "100"),
        ("EXPANSION_BACKLOG", "300"),
    ] {
        env.push((key.into(), value.into()));
    }
    env
}

/// The port in a holder's name, `<service>@<host>:<port>-<pid>-<random>`.
fn holder_port(holder: &str) -> u16 {
    let after_host = holder.rsplit(':').next().unwrap_or_default();
    let port = after_host.split('-').next().unwrap_or_default();
    port.parse()
        .unwrap_or_else(|_| panic!("a holder named by its port: {holder:?}"))
}

/// Who holds the lease `key` now, waiting a little while nobody does (a
/// lease between holders).
fn current_holder(stack: &Stack, key: &str) -> String {
    let start = Instant::now();
    loop {
        let holder = stack.redis_cli(&["GET", key]);
        if !holder.is_empty() {
            return holder;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nobody holds {key}\n{}",
            stack.log_tails()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn instances_share_the_work_and_the_survivors_finish_it() {
    let postgres = Postgres::start();
    let mut stack = Stack::start_with(USERS, environment(&postgres));
    for service in WORKERS {
        stack.start_extra_instance(service);
        stack.start_extra_instance(service);
    }
    let extra_campaign = stack.start_extra_instance("campaign-service");
    let users = users(&stack);
    assert_eq!(users.len() as u64, USERS, "every user seeded, once");

    let id = create_campaign(&stack);
    stack.wait_for("some emails sent", Duration::from_secs(120), || {
        stack.emails().len() >= 500
    });
    // Of each worker service, the instance holding its trimmer's lease is
    // killed (a lease may change hands under load: whoever holds it now);
    // of campaign-service, the extra instance.
    let mut killed: Vec<u16> = Vec::new();
    for (service, key) in &LEASES[..WORKERS.len()] {
        let port = holder_port(&current_holder(&stack, key));
        if port == stack.port(service) {
            stack.kill(service);
        } else {
            stack.kill_extra_instance(port);
        }
        killed.push(port);
    }
    stack.kill_extra_instance(extra_campaign);
    killed.push(extra_campaign);
    let sent_at_kill = stack.emails().len() as u64;
    assert!(
        sent_at_kill < USERS,
        "the kill landed after the campaign's end: {sent_at_kill}"
    );

    let campaign = stack.wait_completed(&id, Duration::from_secs(180));
    assert_eq!(campaign["progress"], all_sent(USERS));
    // Only the sends in flight in the killed email-service can have been
    // answered by the SMTP server and not recorded: at most its
    // concurrency, each with its original's Message-ID.
    let duplicates = check_mailbox(&stack, &users);
    let in_flight = email_service::config::Config::default()
        .service
        .streams
        .concurrency;
    assert!(
        duplicates <= in_flight,
        "{duplicates} duplicates, more than {in_flight} sends in flight"
    );
    println!("sent before the kill: {sent_at_kill} of {USERS}; duplicates: {duplicates}");

    // Each service's work done once per cluster is held by a survivor.
    for ((service, key), killed_port) in LEASES.iter().zip(&killed) {
        stack.wait_for(
            &format!("{service}'s lease held by a survivor"),
            Duration::from_secs(10),
            || {
                let holder = stack.redis_cli(&["GET", key]);
                !holder.is_empty() && holder_port(&holder) != *killed_port
            },
        );
    }
}
