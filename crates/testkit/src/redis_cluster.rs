//! A private Redis Cluster per test: three masters, no replicas, each with
//! its append-only file fsynced on every write, so that a master killed and
//! restarted replays everything it acknowledged.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;
use crate::ready::wait_until;
use crate::redis_server::{spawn_redis, MAXMEMORY};

/// How many masters the cluster has (the fewest Redis accepts).
const MASTERS: usize = 3;
/// How long the cluster may take to agree on its slots after a start or a
/// restart.
const CLUSTER_OK: Duration = Duration::from_secs(30);
/// How long a master may be unreachable before the others mark it failed
/// and, with no replica to promote, the whole cluster refuses commands
/// (`cluster_state:fail`) until it is back: short, so that tests can reach
/// that state within seconds.
const NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// A three-master Redis Cluster on free loopback ports, killed when dropped.
pub struct RedisCluster {
    nodes: Vec<Node>,
}

/// One master: its client port, its cluster-bus port and its directory
/// (node table and AOF), kept across restarts.
struct Node {
    port: u16,
    bus_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisCluster {
    /// Starts three masters, joins them into a cluster sharing the 16384
    /// slots, and waits until every node says `cluster_state:ok`.
    pub fn start() -> Self {
        let mut cluster = Self {
            nodes: (0..MASTERS)
                .map(|_| Node {
                    port: free_port(),
                    bus_port: free_port(),
                    dir: tempfile::tempdir().expect("temporary directory"),
                    child: None,
                })
                .collect(),
        };
        for node in &mut cluster.nodes {
            node.spawn();
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("cannot run redis-cli (apt-get install redis-tools)");
        assert!(created.success(), "redis-cli --cluster create failed");
        cluster.wait_ok();
        cluster
    }

    /// The `redis+cluster://` URL naming every master.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The client ports of the masters, in the order of [`Self::kill`]'s
    /// indexes.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// The index of the master serving `key` (asked of the cluster itself,
    /// not of the code under test).
    pub fn master_of(&self, key: &str) -> usize {
        let slot: u16 = self
            .command(0, &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        (0..self.nodes.len())
            .find(|&index| {
                own_slots(&self.command(index, &["CLUSTER", "NODES"]))
                    .any(|(first, last)| (first..=last).contains(&slot))
            })
            .expect("some master serves every slot")
    }

    /// Kills master `index` with SIGKILL, as a crash would.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Starts master `index` again on the same ports and directory (so its
    /// node table is kept and its AOF replayed), and waits until the
    /// cluster is whole again.
    pub fn restart(&mut self, index: usize) {
        self.nodes[index].kill();
        self.nodes[index].spawn();
        self.wait_ok();
    }

    /// Waits until a master other than `down` reports the whole cluster
    /// failed (`cluster_state:fail`): `down` has been unreachable for longer
    /// than [`NODE_TIMEOUT`]. Panics if that takes more than 30 s.
    pub fn wait_failed_without(&self, down: usize) {
        let witness = (down + 1) % self.nodes.len();
        let deadline = std::time::Instant::now() + CLUSTER_OK;
        while !self
            .command(witness, &["CLUSTER", "INFO"])
            .contains("cluster_state:fail")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the cluster never noticed master {down} was down"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs one command on master `index` with `redis-cli` (no redirection)
    /// and returns its output, trimmed; for test assertions that should not
    /// depend on the code under test.
    pub fn command(&self, index: usize, args: &[&str]) -> String {
        self.nodes[index].command(args)
    }

    fn wait_ok(&mut self) {
        for index in 0..self.nodes.len() {
            let node = &mut self.nodes[index];
            let mut child = node.child.take().expect("running master");
            let result = wait_until("redis cluster", &mut child, CLUSTER_OK, || {
                node.command(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
            node.child = Some(child);
            result.unwrap_or_else(|error| error.panic_with_log(&node.log()));
        }
    }
}

impl Node {
    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--cluster-port")
            .arg(self.bus_port.to_string())
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout"])
            .arg(NODE_TIMEOUT.as_millis().to_string())
            .arg("--cluster-config-file")
            .arg(format!("nodes-{}.conf", self.port))
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--maxmemory", MAXMEMORY, "--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log());
        let child = spawn_redis(&mut cmd, &self.log(), || self.command(&["PING"]) == "PONG");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn command(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("redis.log")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

/// The slot ranges of the `myself` line of a `CLUSTER NODES` reply.
fn own_slots(nodes: &str) -> impl Iterator<Item = (u16, u16)> + '_ {
    nodes
        .lines()
        .filter(|line| {
            line.split(' ')
                .nth(2)
                .is_some_and(|flags| flags.contains("myself"))
        })
        .flat_map(|line| line.split(' ').skip(8))
        .filter_map(|range| match range.split_once('-') {
            Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
            None => range.parse().ok().map(|slot| (slot, slot)),
        })
}

#[cfg(test)]
mod tests {
    use super::own_slots;

    #[test]
    fn own_slots_reads_the_myself_line_only() {
        let nodes = "a 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-5460 7000\n\
                     b 127.0.0.1:3@4 master - 0 0 2 connected 5461-10922";
        assert_eq!(own_slots(nodes).collect::<Vec<_>>(), [(0, 5460), (7000, 7000)]);
    }
}
