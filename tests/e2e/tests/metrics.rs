//! What each service's `/metrics` says after a campaign: user-service's
//! worker figures, and the size of the batches each read handed to a
//! handler, whose sum is every entry handed over once.

use std::time::{Duration, Instant};

use e2e::Stack;

const USERS: u64 = 50;

#[test]
fn every_read_batch_is_measured_and_user_service_serves_its_metrics() {
    let stack = Stack::start(USERS);
    let id = stack.create_campaign("measured", "Hi {{ name }}", "Dear {{ name }}");
    stack.wait_completed(&id, Duration::from_secs(60));

    // user-service read the campaign's announcement on comms:campaigns
    // (and the audience totals it published there itself).
    let campaigns = r#"{stream="comms:campaigns",group="user-service"}"#;
    let handled = stack
        .metric("user-service", &format!("comms_events_handled_total{campaigns}"))
        .expect("user-service counts what it handled");
    assert!(handled >= 1.0, "{handled}");
    let read = stack
        .metric(
            "user-service",
            &format!("comms_worker_read_batch_size_sum{campaigns}"),
        )
        .expect("user-service measures its reads");
    assert_eq!(read, handled, "each entry handled was handed over once");
    assert_eq!(
        stack.metric(
            "user-service",
            &format!("comms_events_dead_lettered_total{campaigns}")
        ),
        Some(0.0)
    );

    // Every request of the campaign was handed to a handler once, in
    // reads of at most the batch size.
    let users = USERS as f64;
    for (service, stream) in [
        ("notification-service", "comms:notifications"),
        ("email-service", "comms:emails"),
    ] {
        let labels = format!(r#"{{stream="{stream}",group="{service}"}}"#);
        let sum = stack.metric(service, &format!("comms_worker_read_batch_size_sum{labels}"));
        assert_eq!(sum, Some(users), "{service}");
        let reads = stack
            .metric(service, &format!("comms_worker_read_batch_size_count{labels}"))
            .expect("a count of reads");
        assert!((1.0..=users).contains(&reads), "{service}: {reads} reads");
        let one_each = stack.metric(
            service,
            &format!(r#"comms_worker_read_batch_size_bucket{{stream="{stream}",group="{service}",le="1"}}"#),
        );
        assert!(one_each.is_some(), "{service}: the histogram has buckets");
    }

    // No campaign is sending any more: the progress gauges are back to 0
    // (they are refreshed every second).
    let start = Instant::now();
    while stack.metric(
        "campaign-service",
        r#"comms_campaign_notifications{status="sent"}"#,
    ) != Some(0.0)
    {
        assert!(start.elapsed() < Duration::from_secs(10), "the gauge stays up");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        stack.metric(
            "campaign-service",
            r#"comms_campaign_notifications{status="pending"}"#
        ),
        Some(0.0)
    );
}
