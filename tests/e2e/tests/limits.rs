//! The send limits on the whole stack, as MailDev receives the emails:
//! two email-service instances sharing one rate, a campaign's own rate
//! beside a campaign without one, a domain's rate beside a domain without
//! one, a domain that throttles slowed alone and sent every email in the
//! end, and an hourly quota that holds the rest of a campaign back without
//! failing any of it.

use std::time::{Duration, Instant};

use e2e::timing::{most_in_a_second, received};
use e2e::{all_sent, Stack};
use serde_json::{json, Value};
use testkit::ThrottlingSmtp;

/// Creates a campaign with `extra` fields beside its name and templates;
/// its id.
fn create(stack: &Stack, name: &str, extra: Value) -> String {
    let mut request =
        json!({ "name": name, "subject": format!("{name} {{{{ name }}}}"), "body": "Dear {{ name }}" });
    request
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, campaign) = stack.post("campaign-service", "/api/v1/campaigns", &request);
    assert_eq!(status, 201, "{campaign}");
    campaign["id"].as_str().unwrap().to_string()
}

/// Imports `per_domain` users at each of `domains` (`user<n>@<domain>`),
/// tagged `imported`.
fn import_at(stack: &Stack, domains: &[&str], per_domain: usize) {
    let mut csv = String::from("email,name,tags\n");
    for n in 0..per_domain {
        for domain in domains {
            csv.push_str(&format!("user{n}@{domain},User {n},imported\n"));
        }
    }
    let url = format!(
        "http://127.0.0.1:{}/api/v1/users/import",
        stack.port("user-service")
    );
    let imported: Value = ureq::post(&url)
        .set("content-type", "text/csv")
        .send_string(&csv)
        .expect("the import")
        .into_json()
        .expect("JSON");
    assert_eq!(imported["created"], per_domain * domains.len(), "{imported}");
}

#[test]
fn two_instances_with_a_rate_of_100_send_3000_emails_in_30_seconds() {
    const USERS: u64 = 3_000;
    let mut stack = Stack::start_with(USERS, vec![("EMAIL_SEND_RATE".into(), "100".into())]);
    stack.start_extra_instance("email-service");
    let id = create(&stack, "paced", json!({}));
    let done = stack.wait_completed(&id, Duration::from_secs(120));
    assert_eq!(done["progress"], all_sent(USERS), "{done}");

    let times = received(&stack.emails(), "paced");
    assert_eq!(times.len() as u64, USERS);
    // A second's worth at once (the default burst), then 2,900 at 100 a
    // second: 29 s, not the 15 s of two rates of their own.
    let span = times[times.len() - 1] - times[0];
    assert!((27.0..=33.0).contains(&span), "3,000 emails over {span:.1} s");
    let busiest = most_in_a_second(&times, 1.5);
    assert!(
        busiest <= 110,
        "{busiest} emails within one second past the burst"
    );
    // Both instances sent their share.
    let here = stack
        .metric("email-service", "comms_emails_total{outcome=\"sent\"}")
        .unwrap_or(0.0);
    assert!(
        (300.0..=2_700.0).contains(&here),
        "the first instance sent {here} of 3,000: both share the work"
    );
    println!("3,000 emails over {span:.1} s, at most {busiest} in a second past the burst");
}

#[test]
fn a_campaign_s_own_rate_spaces_its_emails_and_another_goes_at_full_speed() {
    const USERS: u64 = 200;
    let stack = Stack::start(USERS);
    let slow = create(&stack, "slow", json!({ "rate_per_s": 20 }));
    let fast = create(&stack, "fast", json!({}));
    for id in [&slow, &fast] {
        let done = stack.wait_completed(id, Duration::from_secs(60));
        assert_eq!(done["progress"], all_sent(USERS), "{done}");
    }
    let campaign = stack.get("campaign-service", &format!("/api/v1/campaigns/{slow}"));
    assert_eq!(campaign["rate_per_s"], 20.0, "{campaign}");

    let emails = stack.emails();
    let (slow_times, fast_times) = (received(&emails, "slow"), received(&emails, "fast"));
    assert_eq!((slow_times.len(), fast_times.len()), (200, 200));
    // 200 at 20 a second: one every 50 ms, 9.95 s from first to last.
    let slow_span = slow_times[199] - slow_times[0];
    assert!(
        (9.0..=13.0).contains(&slow_span),
        "the slow campaign took {slow_span:.1} s"
    );
    assert!(most_in_a_second(&slow_times, 0.0) <= 22);
    // The other campaign is not held behind it.
    let fast_end = fast_times[199] - slow_times[0];
    assert!(
        fast_end < slow_span / 2.0,
        "the fast campaign ended {fast_end:.1} s in, the slow one {slow_span:.1} s"
    );
}

#[test]
fn an_hourly_quota_holds_the_rest_back_and_fails_none() {
    const USERS: u64 = 80;
    let stack = Stack::start_with(USERS, vec![("EMAIL_SEND_PER_HOUR".into(), "50".into())]);
    let id = create(&stack, "quota", json!({}));
    stack.wait_for("the quota's 50 emails", Duration::from_secs(30), || {
        stack.emails().len() >= 50
    });
    // Well past the worker's backoffs: nothing more goes out, nothing
    // fails, nothing is dead-lettered; the rest wait.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(stack.emails().len(), 50);
    let campaign = stack.get("campaign-service", &format!("/api/v1/campaigns/{id}"));
    assert_eq!(campaign["status"], "sending", "{campaign}");
    assert_eq!(
        campaign["progress"],
        json!({ "total": USERS, "sent": 50, "failed": 0, "dead_lettered": 0, "suppressed": 0, "cancelled": 0, "pending": 30 }),
        "{campaign}"
    );
    assert_eq!(
        stack.metric("email-service", "comms_send_quota{window=\"hour\"}"),
        Some(50.0)
    );
    let deferred = stack
        .metric("email-service", "comms_send_deferred_total")
        .unwrap_or(0.0);
    assert!(deferred >= 30.0, "{deferred} sends deferred");
    let failed = stack.stream_figures("comms:emails");
    assert_eq!(failed["dead_letters"], 0, "{failed}");
}

#[test]
fn a_domain_s_rate_holds_its_mail_back_and_the_other_domains_go_on() {
    let stack = Stack::start_with(
        0,
        vec![("EMAIL_DOMAIN_LIMITS".into(), "slow.example=10/s".into())],
    );
    import_at(&stack, &["slow.example", "fast.example"], 50);
    let id = create(&stack, "domains", json!({ "audience": "'imported' in tags" }));
    let done = stack.wait_completed(&id, Duration::from_secs(60));
    assert_eq!(done["progress"], all_sent(100), "{done}");

    let emails = stack.emails();
    let to = |domain: &str| -> Vec<Value> {
        emails
            .iter()
            .filter(|email| {
                email["to"][0]["address"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with(domain)
            })
            .cloned()
            .collect()
    };
    let (slow, fast) = (
        received(&to("@slow.example"), ""),
        received(&to("@fast.example"), ""),
    );
    assert_eq!((slow.len(), fast.len()), (50, 50));
    // 50 at 10 a second: never more than 11 in any second, and 4.9 s
    // from the first send to the last; the first arrival may come up to a
    // second late on a loaded machine (a new connection, a busy MailDev),
    // which shortens the span seen at the server.
    assert!(most_in_a_second(&slow, 0.0) <= 11);
    let slow_span = slow[49] - slow[0];
    assert!(
        (3.9..=7.0).contains(&slow_span),
        "slow.example took {slow_span:.1} s"
    );
    let fast_span = fast[49] - fast[0];
    assert!(
        fast_span < slow_span / 2.0,
        "fast.example took {fast_span:.1} s, slow.example {slow_span:.1} s"
    );
}

#[test]
fn a_throttling_domain_is_slowed_alone_and_gets_every_email_in_the_end() {
    let smtp = ThrottlingSmtp::start("throttled.example", 5.0);
    let stack = Stack::start_with(0, vec![("SMTP_PORT".into(), smtp.port().to_string())]);
    import_at(&stack, &["throttled.example", "other.example"], 30);
    let id = create(&stack, "throttled", json!({ "audience": "'imported' in tags" }));
    let done = stack.wait_completed(&id, Duration::from_secs(120));
    assert_eq!(done["progress"], all_sent(60), "every email in the end: {done}");

    let received = smtp.received();
    let to = |domain: &str| -> Vec<Instant> {
        received
            .iter()
            .filter(|(to, _)| to.ends_with(domain))
            .map(|(_, at)| *at)
            .collect()
    };
    let (throttled, other) = (to("@throttled.example"), to("@other.example"));
    assert_eq!((throttled.len(), other.len()), (30, 30), "one each: {received:?}");
    assert!(smtp.refused() > 0, "the domain throttled");
    let throttles = stack
        .metric("email-service", "comms_send_throttled_total")
        .unwrap_or(0.0);
    assert!(throttles >= 1.0, "email-service saw it throttle");
    // The other domain is not held behind it: all of its mail is in
    // before the throttled domain's is half done.
    let first = throttled.iter().chain(&other).min().copied().unwrap();
    let other_done = *other.iter().max().unwrap() - first;
    let throttled_done = *throttled.iter().max().unwrap() - first;
    assert!(
        other_done < throttled_done / 2,
        "other.example done after {other_done:?}, throttled.example after {throttled_done:?}"
    );
    println!(
        "throttled.example: {} throttling replies, done after {throttled_done:?}; other.example done after {other_done:?}",
        smtp.refused()
    );
}
