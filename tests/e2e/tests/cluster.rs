//! A campaign on a Redis Cluster: the services get a `redis+cluster://`
//! URL, and the master holding the email stream is SIGKILLed and restarted
//! (its AOF replayed) mid-campaign; every user still gets their email, and
//! the counts are exact.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{EventStore, Stack, Wiring};
use serde_json::json;
use testkit::{MailDev, RedisCluster};

const USERS: u64 = 2_000;

#[test]
fn a_campaign_on_a_cluster_survives_a_master_crash_and_restart() {
    let mut stack = Stack::start_on(
        USERS,
        RedisCluster::start(),
        MailDev::start(),
        Wiring::Environment,
        Vec::new(),
    );
    let id = stack.create_campaign("cluster", "Hello {{ name }}", "Dear {{ name }}.");

    stack.wait_for("the first emails", Duration::from_secs(120), || {
        stack.emails().len() >= 300
    });
    let sent_at_crash = stack.emails().len() as u64;
    let EventStore::Cluster(cluster) = &mut stack.redis else {
        unreachable!("the stack runs on a cluster")
    };
    let master = cluster.master_of("comms:emails");
    cluster.kill(master);
    std::thread::sleep(Duration::from_millis(500));
    cluster.restart(master);

    let campaign = stack.wait_completed(&id, Duration::from_secs(240));
    assert!(sent_at_crash < USERS, "the crash happened mid-campaign");
    assert_eq!(
        campaign["progress"],
        json!({ "total": USERS, "sent": USERS, "failed": 0, "dead_lettered": 0, "pending": 0 })
    );
    let counts = stack.get(
        "notification-service",
        &format!("/api/v1/campaigns/{id}/notifications"),
    );
    assert_eq!(counts, json!({ "sent": USERS }));

    // Every user got email; a redelivery after the crash may have sent one
    // twice, always with the same Message-ID.
    let mut by_recipient: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for email in stack.emails() {
        by_recipient
            .entry(email["to"][0]["address"].as_str().unwrap().to_string())
            .or_default()
            .push(email["messageId"].as_str().unwrap().to_string());
    }
    assert_eq!(by_recipient.len() as u64, USERS, "every user got email");
    for (address, ids) in &by_recipient {
        assert!(ids.iter().all(|id| id == &ids[0]), "{address}: {ids:?}");
    }
}
