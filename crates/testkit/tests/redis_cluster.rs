//! The test cluster is a real one: keys spread over its masters, and a
//! master killed and restarted keeps what it acknowledged.

use testkit::RedisCluster;

#[test]
fn a_killed_master_comes_back_with_its_keys() {
    let mut cluster = RedisCluster::start();
    assert!(cluster.url().starts_with("redis+cluster://127.0.0.1:"));
    let owners: std::collections::HashSet<usize> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|key| cluster.master_of(key))
        .collect();
    assert!(owners.len() > 1, "keys spread over the masters");

    let owner = cluster.master_of("kept");
    assert_eq!(cluster.command(owner, &["SET", "kept", "yes"]), "OK");
    let other = (owner + 1) % cluster.ports().len();
    assert!(cluster.command(other, &["GET", "kept"]).starts_with("MOVED"));

    cluster.kill(owner);
    assert_eq!(cluster.command(owner, &["PING"]), "");
    cluster.restart(owner);
    assert_eq!(cluster.command(owner, &["GET", "kept"]), "yes");
    assert!(cluster
        .command(other, &["CLUSTER", "INFO"])
        .contains("cluster_state:ok"));
}
