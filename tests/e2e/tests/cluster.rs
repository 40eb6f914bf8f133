//! A campaign on a Redis Cluster: the services get a `redis+cluster://`
//! URL and split the per-recipient streams into 4 partitions, which the
//! cluster's 3 masters share. The master holding the first partition of the
//! email stream is SIGKILLed mid-campaign, left down until the whole
//! cluster is down (`cluster_state:fail`), and restarted (its AOF replayed);
//! every user still gets their email, the counts are exact, and the API
//! adds up the partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use e2e::{all_sent, EventStore, Stack, Wiring};
use serde_json::json;
use testkit::{MailDev, RedisCluster};

const USERS: u64 = 2_000;

const PARTITIONS: u32 = 4;

#[test]
fn a_campaign_on_a_cluster_survives_a_master_crash_and_restart() {
    let mut stack = Stack::start_on(
        USERS,
        RedisCluster::start(),
        MailDev::start(),
        Wiring::Environment,
        vec![("STREAM_PARTITIONS".into(), PARTITIONS.to_string())],
    );
    let emails: Vec<String> = (0..PARTITIONS).map(|p| format!("comms:emails:{{{p}}}")).collect();
    let id = stack.create_campaign("cluster", "Hello {{ name }}", "Dear {{ name }}.");

    stack.wait_for("the first emails", Duration::from_secs(120), || {
        stack.emails().len() >= 300
    });
    let sent_at_crash = stack.emails().len() as u64;
    let EventStore::Cluster(cluster) = &mut stack.redis else {
        unreachable!("the stack runs on a cluster")
    };
    let masters: BTreeSet<usize> = emails
        .iter()
        .map(|partition| cluster.master_of(partition))
        .collect();
    assert_eq!(masters.len(), 3, "the partitions spread over every master");
    let master = cluster.master_of(&emails[0]);
    cluster.kill(master);
    // Down until the other masters declare it failed: with no replica to
    // promote, the whole cluster refuses every command meanwhile.
    cluster.wait_failed_without(master);
    cluster.restart(master);

    let campaign = stack.wait_completed(&id, Duration::from_secs(240));
    assert!(sent_at_crash < USERS, "the crash happened mid-campaign");
    assert_eq!(campaign["progress"], all_sent(USERS));
    let counts = stack.notification_counts(&id, &json!({ "sent": USERS }), Duration::from_secs(60));
    assert_eq!(counts, json!({ "sent": USERS }));

    // Each partition carried a share of the emails, and the API adds them
    // up: one line for the stream, its partitions beside it.
    let added: Vec<u64> = emails
        .iter()
        .map(|partition| stack.entries_added(partition))
        .collect();
    assert!(added.iter().all(|&n| n > 0), "every partition used: {added:?}");
    assert!(added.iter().sum::<u64>() >= USERS, "{added:?}");
    let email_stream = stack.stream_figures("comms:emails");
    let listed: Vec<&str> = email_stream["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|partition| partition["stream"].as_str().unwrap())
        .collect();
    assert_eq!(listed, emails);
    let group = &email_stream["groups"][0];
    assert_eq!(group["group"], "email-service");
    assert!(group["handled"].as_u64().unwrap() >= USERS, "{group}");
    assert_eq!(group["pending"], 0);
    for (query, status) in [
        ("comms:emails", 200),
        ("comms:emails:{3}", 200),
        ("comms:emails:{4}", 400),
    ] {
        let path = format!(
            "/api/v1/dead-letters?stream={}",
            query.replace('{', "%7B").replace('}', "%7D")
        );
        let (code, body) = stack.call("GET", "campaign-service", &path, None, None);
        assert_eq!(code, status, "{query}: {body}");
    }

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
