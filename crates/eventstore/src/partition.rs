//! Streams split into partitions, so that one stream's entries spread over
//! the masters of a Redis Cluster instead of living on one.
//!
//! A stream `S` split into `P > 1` partitions is the `P` streams `S:{0}` …
//! `S:{P-1}`: each name carries a hash tag, so a partition and everything
//! the event store keeps beside it (its dead letters, counters, retry
//! counts: see [`crate::keys`]) live in one slot, and the partitions of one
//! stream fall into different slots. With `P = 1` the stream keeps its
//! plain name, so a store that never partitioned reads as before.
//!
//! A publisher picks the partition of an entry by a key (the recipient,
//! say) with [`Partitioned::for_key`]: every entry of one key goes to one
//! partition, in order. A consumer group reads every partition; each
//! instance of a service runs a worker per partition, so no coordinator
//! assigns partitions and a dead instance's entries are claimed like any.
//!
//! Every process must agree on `P`: a publisher on 4 partitions and a
//! consumer on 1 would leave three partitions unread. [`agree`] records
//! the count in Redis the first time and refuses any other after.

use crc16::{State, XMODEM};

use crate::connection::Redis;
use crate::error::{Error, Result};

/// The key holding the partition count every process agreed on.
pub const PARTITIONS_KEY: &str = "comms:partitions";

/// A stream and the partitions it is split into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitioned {
    /// The stream's name, as operators know it (`comms:emails`).
    name: String,
    /// The partitions' stream names, in order: `[name]` when unsplit.
    partitions: Vec<String>,
}

impl Partitioned {
    /// `name` split into `count` partitions (0 counts as 1).
    pub fn new(name: &str, count: u32) -> Self {
        let partitions = match count {
            0 | 1 => vec![name.to_string()],
            count => (0..count).map(|index| format!("{name}:{{{index}}}")).collect(),
        };
        Self {
            name: name.to_string(),
            partitions,
        }
    }

    /// The stream's name, whatever its partitions.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream name of every partition.
    pub fn partitions(&self) -> &[String] {
        &self.partitions
    }

    /// The partition of the entries of `key`: CRC16 (the hash Redis Cluster
    /// uses for slots) of the key, modulo the count, so that it is the same
    /// in every process and every release.
    pub fn for_key(&self, key: &str) -> &str {
        let hash = State::<XMODEM>::calculate(key.as_bytes()) as usize;
        &self.partitions[hash % self.partitions.len()]
    }

    /// The partitions `stream` names: all of them for the stream's own
    /// name, one for a partition's, none for any other stream.
    pub fn select(&self, stream: &str) -> &[String] {
        if stream == self.name {
            &self.partitions
        } else {
            match self.partitions.iter().position(|partition| partition == stream) {
                Some(index) => &self.partitions[index..=index],
                None => &[],
            }
        }
    }
}

impl From<&str> for Partitioned {
    /// An unsplit stream.
    fn from(name: &str) -> Self {
        Self::new(name, 1)
    }
}

impl From<&Partitioned> for Partitioned {
    fn from(stream: &Partitioned) -> Self {
        stream.clone()
    }
}

/// Records `count` as the partition count of the store on first use, and
/// fails with [`Error::PartitionsDiffer`] when another count was recorded
/// before: processes that disagree would leave partitions unread.
pub async fn agree(conn: &mut Redis, count: u32) -> Result<()> {
    let count = count.max(1);
    let _: Option<String> = redis::cmd("SET")
        .arg(PARTITIONS_KEY)
        .arg(count)
        .arg("NX")
        .query_async(conn)
        .await?;
    let recorded: u32 = redis::cmd("GET").arg(PARTITIONS_KEY).query_async(conn).await?;
    if recorded == count {
        Ok(())
    } else {
        Err(Error::PartitionsDiffer {
            asked: count,
            recorded,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use redis::cluster_routing::Slot;

    use super::*;

    #[test]
    fn an_unsplit_stream_keeps_its_name() {
        let stream = Partitioned::new("comms:emails", 1);
        assert_eq!(stream.partitions(), ["comms:emails"]);
        assert_eq!(stream.for_key("ada@example.com"), "comms:emails");
        assert_eq!(Partitioned::new("comms:emails", 0), stream);
    }

    #[test]
    fn partitions_are_hash_tagged_and_fall_into_different_slots() {
        let stream = Partitioned::new("comms:emails", 4);
        assert_eq!(
            stream.partitions(),
            [
                "comms:emails:{0}",
                "comms:emails:{1}",
                "comms:emails:{2}",
                "comms:emails:{3}"
            ]
        );
        let slots: HashSet<_> = stream.partitions().iter().map(Slot::for_key).collect();
        assert_eq!(slots.len(), 4);
    }

    #[test]
    fn a_key_always_goes_to_one_partition_and_keys_spread_over_all() {
        let stream = Partitioned::new("comms:emails", 4);
        let chosen = |key: &str| stream.for_key(key).to_string();
        assert_eq!(chosen("ada@example.com"), chosen("ada@example.com"));
        let used: HashSet<_> = (0..1_000)
            .map(|user| chosen(&format!("user{user}@example.com")))
            .collect();
        assert_eq!(used.len(), 4, "1,000 recipients use every partition");
        // CRC16/XMODEM("123456789") is 0x31C3: the partition does not hang
        // on a hasher that could change between releases.
        assert_eq!(Partitioned::new("s", 0x31C4).for_key("123456789"), "s:{12739}");
    }

    #[test]
    fn a_stream_selects_all_its_partitions_and_a_partition_itself() {
        let stream = Partitioned::new("comms:emails", 3);
        assert_eq!(stream.select("comms:emails").len(), 3);
        assert_eq!(stream.select("comms:emails:{1}"), ["comms:emails:{1}"]);
        assert!(stream.select("comms:other").is_empty());
    }
}
