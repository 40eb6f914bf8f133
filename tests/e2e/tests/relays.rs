//! Several SMTP relays on the whole stack (`EMAIL_RELAYS`): two relays
//! sharing a campaign by weight, one at its own rate; a relay killed
//! mid-campaign, and the campaign completing through the standby with no
//! email sent twice; a send left uncertain on one relay, not sent again on
//! the other before its lease lapses.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::timing::most_in_a_second;
use e2e::{all_sent, Stack, Wiring};
use testkit::{ChaosSmtp, MailDev, Persistence, RedisServer, SlowSmtp};

/// A stack whose email-service sends through `first` (weight 1) and the
/// stack's MailDev as a standby (weight 0), with `env` besides.
fn stack_with_relays(users: u64, first: &ChaosSmtp, env: &[(&str, &str)]) -> Stack {
    let mail = MailDev::start();
    let relays = format!(
        "smtp://127.0.0.1:{}?name=first&weight=1, smtp://127.0.0.1:{}?name=standby&weight=0",
        first.port(),
        mail.smtp_port()
    );
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    env.push(("EMAIL_RELAYS".into(), relays));
    Stack::start_on(
        users,
        RedisServer::start_with(Persistence::AofEverySec, None),
        mail,
        Wiring::Environment,
        env,
    )
}

/// The `Message-ID`s MailDev received, without their angle brackets.
fn standby_ids(stack: &Stack) -> Vec<String> {
    stack
        .emails()
        .iter()
        .map(|email| bare(email["messageId"].as_str().expect("a Message-ID")))
        .collect()
}

fn bare(id: &str) -> String {
    id.trim_matches(['<', '>']).to_string()
}

#[test]
fn two_relays_share_a_campaign_by_weight_and_each_keeps_its_own_rate() {
    const USERS: u64 = 200;
    // The harness's server notes when each message came (MailDev's own
    // times are when it parsed them, later and in bursts under load).
    let paced = SlowSmtp::start(Duration::ZERO);
    let fast = ChaosSmtp::start(Duration::ZERO);
    let relays = format!(
        "smtp://127.0.0.1:{}?name=paced&weight=1&rate=20, smtp://127.0.0.1:{}?name=fast&weight=1",
        paced.port(),
        fast.port()
    );
    let stack = Stack::start_with(USERS, vec![("EMAIL_RELAYS".into(), relays)]);
    let id = stack.create_campaign("shared", "shared {{ name }}", "Dear {{ name }}");
    let done = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(done["progress"], all_sent(USERS), "{done}");

    let times: Vec<Instant> = paced.received_at().into_iter().map(|(_, at)| at).collect();
    let on_fast = fast.message_ids().len();
    assert_eq!(times.len() + on_fast, USERS as usize, "each email once");
    // Equal weights, but a send the paced relay has no slot for within
    // the horizon comes back and takes its next turn: the paced one takes
    // less than half, never nothing.
    assert!(
        times.len() >= 40 && on_fast >= 100,
        "equal weights: {} and {on_fast}",
        times.len()
    );
    // 20 a second, whatever the other relay takes meanwhile.
    let seconds: Vec<f64> = times.iter().map(|at| (*at - times[0]).as_secs_f64()).collect();
    let busiest = most_in_a_second(&seconds, 0.0);
    let span = seconds[seconds.len() - 1];
    assert!(
        busiest <= 22,
        "{busiest} emails within one second through `paced`"
    );
    assert!(
        span >= (seconds.len() as f64 - 1.0) / 20.0 - 0.1,
        "{} emails over {span:.2} s",
        seconds.len()
    );
    println!(
        "paced: {} emails over {span:.2} s (at most {busiest} in a second); fast: {on_fast}",
        times.len()
    );
}

#[test]
fn a_relay_killed_mid_campaign_hands_the_rest_to_the_standby_and_nothing_is_sent_twice() {
    const USERS: u64 = 2_000;
    const POOL: usize = 16;
    // 16 connections paced 40 ms a message: about 400 a second, a run of
    // some seconds to kill the relay in.
    let mut first = ChaosSmtp::start(Duration::from_millis(40));
    let stack = stack_with_relays(USERS, &first, &[("EMAIL_LEASE_MS", "3000")]);
    let id = stack.create_campaign("failover", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_for("the first relay took 400 emails", Duration::from_secs(60), || {
        first.message_ids().len() >= 400
    });
    assert!(
        standby_ids(&stack).is_empty(),
        "the standby is idle while the first is up"
    );
    first.kill();

    let done = stack.wait_completed(&id, Duration::from_secs(120));
    assert_eq!(done["progress"], all_sent(USERS), "{done}");
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    let on_first = first.message_ids();
    let on_standby = standby_ids(&stack);
    for id in on_first
        .iter()
        .map(|id| bare(id))
        .chain(on_standby.iter().cloned())
    {
        *copies.entry(id).or_default() += 1;
    }
    assert_eq!(
        copies.len() as u64,
        USERS,
        "every email reached one relay or the other"
    );
    // A message the killed relay recorded and never answered is the one
    // duplicate no client can rule out (it is sent again once its lease
    // lapses): at most one per connection open at the kill.
    let twice: Vec<_> = copies.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.len() <= POOL, "sent twice: {twice:?}");
    assert!(twice.iter().all(|(_, count)| **count == 2), "{twice:?}");
    println!(
        "first relay {} emails, standby {}, sent twice {}",
        on_first.len(),
        on_standby.len(),
        twice.len()
    );

    let metric = |series: &str| stack.metric("email-service", series).unwrap_or(0.0);
    assert!(metric(r#"comms_relay_failovers_total{relay="first"}"#) >= 1.0);
    assert_eq!(metric(r#"comms_relay_up{relay="first"}"#), 0.0);
    assert_eq!(
        metric(r#"comms_relay_emails_total{relay="standby",outcome="sent"}"#) as usize,
        on_standby.len()
    );
}

#[test]
fn an_uncertain_send_on_one_relay_waits_for_its_lease_before_the_other_sends_it() {
    const LEASE_MS: u64 = 5_000;
    let first = ChaosSmtp::start(Duration::ZERO);
    // The first relay takes the message and answers it 3 s later: past
    // the 1 s timeout, the send is uncertain.
    first.set("slow 3000");
    let stack = stack_with_relays(
        1,
        &first,
        &[
            ("EMAIL_LEASE_MS", &LEASE_MS.to_string()),
            ("SMTP_TIMEOUT_MS", "1000"),
        ],
    );
    stack.create_campaign("uncertain", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_for(
        "the first relay took the message",
        Duration::from_secs(30),
        || !first.message_ids().is_empty(),
    );
    let taken = Instant::now();
    first.set("down");
    stack.wait_for("the standby received it", Duration::from_secs(60), || {
        !standby_ids(&stack).is_empty()
    });
    let waited = taken.elapsed();
    assert_eq!(
        standby_ids(&stack),
        vec![bare(&first.message_ids()[0])],
        "the same email, once on each"
    );
    // The lease runs from its last renewal, a moment before the message
    // was seen on the first relay (seen within a poll): a second of
    // margin, and still far from the 1 s a failover at once would take.
    assert!(
        waited >= Duration::from_millis(LEASE_MS - 1_000),
        "sent again after {waited:?}, within its {LEASE_MS} ms lease"
    );
}
