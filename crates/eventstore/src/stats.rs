//! What a dashboard shows of each stream and consumer group.
//!
//! Length, pending and lag come from Redis itself (`XLEN`, `XINFO GROUPS`).
//! The counts of handled, retried and dead-lettered entries are kept by the
//! workers in a hash per stream and group (`<stream>:stats:<group>`), so that
//! any process can read them, whichever instance did the work.

use redis::aio::ConnectionManager;

use crate::entry::StreamId;
use crate::error::Result;
use crate::keys::{dead_letter_stream, stats_key, DEAD_LETTERED, HANDLED, RETRIED};

/// One stream and its consumer groups.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupStats {
    /// The group's name.
    pub group: String,
    /// Consumers known to the group.
    pub consumers: u64,
    /// Each consumer: what it holds and how long since it last read or
    /// claimed (a consumer idle for long with entries pending is a dead
    /// one whose entries another will claim).
    pub consumer_details: Vec<ConsumerStats>,
    /// Delivered but not yet acknowledged.
    pub pending: u64,
    /// Entries not yet delivered to the group (`None` when Redis cannot tell,
    /// e.g. after entries were deleted out of order). Redis's own figure,
    /// corrected where it cannot be right: 0 once the group has been
    /// delivered the stream's last entry, and never more than the stream
    /// holds (Redis 7.0 can report a lag in the tens of thousands on a
    /// stream trimmed to nothing).
    pub lag: Option<u64>,
    /// Entries handled successfully and acked.
    pub handled: u64,
    /// Entries settled on a redelivery (an earlier attempt failed or its
    /// consumer died).
    pub retried: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
}

/// One consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerStats {
    /// Its name (service, port or instance).
    pub name: String,
    /// Entries delivered to it and not yet acknowledged.
    pub pending: u64,
    /// Milliseconds since it last interacted with the group.
    pub idle_ms: u64,
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
        let last_generated = StreamId::parse(
            &redis::cmd("XINFO")
                .arg("STREAM")
                .arg(stream)
                .query_async::<redis::streams::StreamInfoStreamReply>(conn)
                .await?
                .last_generated_id,
        );
        for group in info.groups {
            let counters: std::collections::HashMap<String, u64> = redis::cmd("HGETALL")
                .arg(stats_key(stream, &group.name))
                .query_async(conn)
                .await?;
            let counter = |name: &str| counters.get(name).copied().unwrap_or(0);
            let consumers: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(stream)
                .arg(&group.name)
                .query_async(conn)
                .await?;
            groups.push(GroupStats {
                consumers: group.consumers as u64,
                consumer_details: consumers
                    .consumers
                    .into_iter()
                    .map(|consumer| ConsumerStats {
                        name: consumer.name,
                        pending: consumer.pending as u64,
                        idle_ms: consumer.idle as u64,
                    })
                    .collect(),
                pending: group.pending as u64,
                lag: corrected_lag(group.lag, &group.last_delivered_id, last_generated, length),
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

/// The lag of a group whose Redis figure is `reported`, last delivered id
/// `last_delivered`, on a stream whose last id is `last_generated` and which
/// holds `length` entries.
fn corrected_lag(
    reported: Option<usize>,
    last_delivered: &str,
    last_generated: Option<StreamId>,
    length: u64,
) -> Option<u64> {
    let caught_up = matches!(
        (StreamId::parse(last_delivered), last_generated),
        (Some(delivered), Some(last)) if delivered >= last
    );
    if caught_up {
        return Some(0);
    }
    reported.map(|lag| (lag as u64).min(length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lag_is_never_more_than_what_is_left_to_deliver() {
        let last = StreamId::parse("20-0");
        assert_eq!(corrected_lag(Some(63_374), "20-0", last, 0), Some(0), "caught up");
        assert_eq!(
            corrected_lag(None, "20-0", last, 0),
            Some(0),
            "caught up, unknown to Redis"
        );
        assert_eq!(
            corrected_lag(Some(63_374), "10-0", last, 7),
            Some(7),
            "bounded by the length"
        );
        assert_eq!(corrected_lag(Some(3), "10-0", last, 7), Some(3));
        assert_eq!(corrected_lag(None, "10-0", last, 7), None);
    }
}
