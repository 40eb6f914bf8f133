//! What a webhook receiver of a test got, checked as a receiver would:
//! every POST's signature verified with the endpoint's secret, the events
//! of batches taken apart, and each event kept once by its id.

use std::collections::BTreeMap;

use campaign_service::webhooks::sign;
use serde_json::Value;
use testkit::WebhookReceiver;

/// The events `receiver` got, by id (the first copy of each), after
/// checking that every POST is signed with `secret`.
pub fn signed_events(receiver: &WebhookReceiver, secret: &str) -> BTreeMap<String, Value> {
    let key = sign::key_of(secret).expect("a secret");
    let mut events = BTreeMap::new();
    for post in receiver.received() {
        let header = |name: &str| {
            post.headers
                .get(name)
                .unwrap_or_else(|| panic!("no {name}: {post:?}"))
        };
        let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
        let timestamp: i64 = timestamp.parse().expect("a timestamp in seconds");
        assert_eq!(
            header("webhook-signature"),
            &sign::signature(&key, id, timestamp, post.body.as_bytes()),
            "a POST not signed with the endpoint's secret: {post:?}"
        );
        let body: Value = serde_json::from_str(&post.body).expect("a JSON body");
        let batch = match body.get("events") {
            Some(batch) => batch.as_array().expect("an array of events").clone(),
            None => {
                assert_eq!(body["id"].as_str(), Some(id.as_str()), "{body}");
                vec![body]
            }
        };
        for event in batch {
            let event_id = event["id"].as_str().expect("an event id").to_string();
            events.entry(event_id).or_insert(event);
        }
    }
    events
}

/// The events of `kind` among `events`.
pub fn of_kind<'a>(events: &'a BTreeMap<String, Value>, kind: &str) -> Vec<&'a Value> {
    events.values().filter(|event| event["type"] == kind).collect()
}
