//! What a dashboard shows of each stream and consumer group.
//!
//! Length, pending and lag come from Redis itself (`XLEN`, `XINFO GROUPS`).
//! The counts of handled, retried and dead-lettered entries are kept by the
//! workers in a hash per stream and group (`<stream>:stats:<group>`), so that
//! any process can read them, whichever instance did the work.

use redis::aio::ConnectionManager;

use crate::error::Result;
use crate::keys::{dead_letter_stream, stats_key, DEAD_LETTERED, HANDLED, RETRIED};

/// One stream and its consumer groups.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamStats {
    /// The stream's key.
    pub stream: String,
    /// Entries currently in the stream (after trimming).
    pub length: u64,
    /// Entries in its dead-letter stream.
    pub dead_letters: u64,
    /// One line per consumer group.
    pub groups: Vec<GroupStats>,
}

/// One consumer group of a stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupStats {
    /// The group's name.
    pub group: String,
    /// Consumers known to the group.
    pub consumers: u64,
    /// Delivered but not yet acknowledged.
    pub pending: u64,
    /// Entries not yet delivered to the group (`None` when Redis cannot tell,
    /// e.g. after entries were deleted out of order).
    pub lag: Option<u64>,
    /// Entries handled successfully and acked.
    pub handled: u64,
    /// Entries settled on a redelivery (an earlier attempt failed or its
    /// consumer died).
    pub retried: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
}

/// Reads the figures of `stream`; a stream that does not exist yet has
/// length 0 and no groups.
pub async fn stream_stats(conn: &mut ConnectionManager, stream: &str) -> Result<StreamStats> {
    let (length, dead_letters, exists): (u64, u64, bool) = redis::pipe()
        .cmd("XLEN")
        .arg(stream)
        .cmd("XLEN")
        .arg(dead_letter_stream(stream))
        .cmd("EXISTS")
        .arg(stream)
        .query_async(conn)
        .await?;
    let mut groups = Vec::new();
    if exists {
        let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(conn)
            .await?;
        for group in info.groups {
            let counters: std::collections::HashMap<String, u64> = redis::cmd("HGETALL")
                .arg(stats_key(stream, &group.name))
                .query_async(conn)
                .await?;
            let counter = |name: &str| counters.get(name).copied().unwrap_or(0);
            groups.push(GroupStats {
                consumers: group.consumers as u64,
                pending: group.pending as u64,
                lag: group.lag.map(|lag| lag as u64),
                handled: counter(HANDLED),
                retried: counter(RETRIED),
                dead_lettered: counter(DEAD_LETTERED),
                group: group.name,
            });
        }
    }
    Ok(StreamStats {
        stream: stream.to_string(),
        length,
        dead_letters,
        groups,
    })
}
