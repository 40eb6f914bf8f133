//! The contracts' unit tests: ids, statuses and stream names.

use super::*;

#[test]
fn a_delivery_status_reads_back_the_text_it_is_stored_as_and_nothing_else() {
    for status in [
        DeliveryStatus::Sent,
        DeliveryStatus::Failed,
        DeliveryStatus::DeadLettered,
        DeliveryStatus::Suppressed,
    ] {
        assert_eq!(status.as_str().parse::<DeliveryStatus>(), Ok(status));
    }
    assert_eq!(
        "lost".parse::<DeliveryStatus>().unwrap_err().to_string(),
        "`lost` is not a delivery status"
    );
}

#[test]
fn only_the_per_recipient_streams_are_split() {
    let streams = Streams::new(4);
    assert_eq!(streams.campaigns.partitions(), [CAMPAIGNS]);
    assert_eq!(streams.emails.partitions().len(), 4);
    assert_eq!(streams.select(EMAILS).map(<[String]>::len), Some(4));
    assert_eq!(
        streams.select("comms:deliveries:{3}").map(<[String]>::len),
        Some(1)
    );
    assert_eq!(streams.select("comms:deliveries:{4}"), None);
    assert_eq!(streams.select("comms:unknown"), None);
}

#[test]
fn every_name_is_selectable_and_nothing_else_is_named() {
    for partitions in [1, 4] {
        let streams = Streams::new(partitions);
        let names = streams.names();
        assert_eq!(names.len(), if partitions == 1 { 9 } else { 9 + 3 * 4 });
        assert!(names.iter().all(|name| streams.select(name).is_some()));
        assert_eq!(&names[..2], [CAMPAIGNS, NOTIFICATIONS].as_slice());
    }
}

#[test]
fn notification_ids_are_deterministic_and_distinct() {
    assert_eq!(notification_id("c1", 7), notification_id("c1", 7));
    assert_ne!(notification_id("c1", 7), notification_id("c1", 8));
    assert_ne!(notification_id("c1", 7), notification_id("c2", 7));
}

#[test]
fn a_campaigns_trace_id_is_its_id() {
    let id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let trace_id = campaign_trace_id(id).unwrap();
    assert_eq!(trace_id, "3f2504e04f8941d39a0c0305e82c3301");
    let traceparent = traceparent(&trace_id);
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], trace_id);
    assert_eq!(parts[2].len(), 16);
    assert_ne!(parts[2], "0000000000000000");
    assert_eq!(parts[3], "01");
    assert_eq!(trace_id_of(&traceparent), Some(trace_id));
    assert_eq!(campaign_trace_id("not a uuid"), None);
}

#[test]
fn only_a_valid_traceparent_gives_a_trace_id() {
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    assert_eq!(
        trace_id_of(&format!("00-{trace_id}-00f067aa0ba902b7-01")).as_deref(),
        Some(trace_id)
    );
    for invalid in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
    ] {
        assert_eq!(trace_id_of(invalid), None, "{invalid}");
    }
}
