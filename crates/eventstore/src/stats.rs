//! What a dashboard shows of each stream and consumer group.
//!
//! Length and pending come from Redis itself (`XLEN`, `XINFO GROUPS`), and
//! so does the lag where it is right (see [`lag_of`]).
//! The counts of handled, retried and dead-lettered entries are kept by the
//! workers in a hash per stream and group (`<stream>:stats:<group>`), so that
//! any process can read them, whichever instance did the work.
//!
//! A [`Partitioned`] stream's figures are its partitions' added up
//! ([`partitioned_stats`]), with each partition's own beside them.

use crate::batch::Batch;
use crate::connection::Redis;
use crate::entry::StreamId;
use crate::error::Result;
use crate::keys::{dead_letter_stream, stats_key, DEAD_LETTERED, HANDLED, RETRIED};
use crate::partition::Partitioned;

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
    /// Each partition's own figures (one, the stream itself, when it is
    /// not split): a partition that lags behind the others shows here.
    pub partitions: Vec<PartitionStats>,
}

/// One partition of a stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartitionStats {
    /// The partition's stream key (`comms:emails:{2}`).
    pub stream: String,
    /// Entries in it.
    pub length: u64,
    /// Entries in its dead-letter stream.
    pub dead_letters: u64,
    /// Delivered and not yet acknowledged, over all its groups.
    pub pending: u64,
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
    /// Entries in the stream not yet delivered to the group: exactly those
    /// after its last delivered one, however the stream was trimmed
    /// (Redis's own figure counts trimmed entries the group never read,
    /// and 7.0 can report tens of thousands on a stream trimmed to
    /// nothing). `None` only when the group's position cannot be read.
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
pub async fn stream_stats(conn: &mut Redis, stream: &str) -> Result<StreamStats> {
    let mut batch = Batch::default();
    batch
        .add(redis::cmd("XLEN").arg(stream).to_owned())
        .add(redis::cmd("XLEN").arg(dead_letter_stream(stream)).to_owned())
        .add(redis::cmd("EXISTS").arg(stream).to_owned());
    let (length, dead_letters, exists): (u64, u64, bool) =
        redis::from_redis_value(redis::Value::Array(batch.run(conn).await?))
            .map_err(redis::RedisError::from)?;
    let mut groups = Vec::new();
    if exists {
        let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(conn)
            .await?;
        let first = first_id(conn, stream).await?;
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
            let lag = match lag_of(group.lag, &group.last_delivered_id, first, last_generated, length) {
                Lag::Known(lag) => lag,
                Lag::CountAfter(after) => Some(count_after(conn, stream, after).await?),
            };
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
                lag,
                handled: counter(HANDLED),
                retried: counter(RETRIED),
                dead_lettered: counter(DEAD_LETTERED),
                group: group.name,
            });
        }
    }
    Ok(StreamStats {
        partitions: vec![PartitionStats {
            stream: stream.to_string(),
            length,
            dead_letters,
            pending: groups.iter().map(|group| group.pending).sum(),
        }],
        stream: stream.to_string(),
        length,
        dead_letters,
        groups,
    })
}

/// The figures of `stream` over all its partitions: lengths, dead letters
/// and every group's counts added up, a consumer's figures merged over the
/// partitions it reads (its pending added up, its idle time the least).
pub async fn partitioned_stats(conn: &mut Redis, stream: &Partitioned) -> Result<StreamStats> {
    let mut total = StreamStats {
        stream: stream.name().to_string(),
        length: 0,
        dead_letters: 0,
        groups: Vec::new(),
        partitions: Vec::new(),
    };
    for partition in stream.partitions() {
        let figures = stream_stats(conn, partition).await?;
        total.length += figures.length;
        total.dead_letters += figures.dead_letters;
        total.partitions.extend(figures.partitions);
        for group in figures.groups {
            match total.groups.iter_mut().find(|known| known.group == group.group) {
                Some(known) => known.add(group),
                None => total.groups.push(group),
            }
        }
    }
    Ok(total)
}

impl GroupStats {
    /// Adds the figures of the same group on another partition.
    fn add(&mut self, other: GroupStats) {
        self.pending += other.pending;
        self.lag = self.lag.zip(other.lag).map(|(mine, theirs)| mine + theirs);
        self.handled += other.handled;
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
        for consumer in other.consumer_details {
            match self
                .consumer_details
                .iter_mut()
                .find(|known| known.name == consumer.name)
            {
                Some(known) => {
                    known.pending += consumer.pending;
                    known.idle_ms = known.idle_ms.min(consumer.idle_ms);
                }
                None => self.consumer_details.push(consumer),
            }
        }
        self.consumers = self.consumer_details.len() as u64;
    }
}

/// The id of the first entry of `stream`, `None` when it is empty.
async fn first_id(conn: &mut Redis, stream: &str) -> Result<Option<StreamId>> {
    let range: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(range.ids.first().and_then(|entry| StreamId::parse(&entry.id)))
}

/// How many entries of `stream` come after `after`, counted a page at a
/// time (only when Redis cannot tell, see [`lag_of`]).
async fn count_after(conn: &mut Redis, stream: &str, after: StreamId) -> Result<u64> {
    const PAGE: usize = 1_000;
    let (mut count, mut cursor) = (0, after);
    loop {
        let page: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream)
            .arg(format!("({cursor}"))
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        count += page.ids.len() as u64;
        match page.ids.last().and_then(|entry| StreamId::parse(&entry.id)) {
            Some(last) if page.ids.len() == PAGE => cursor = last,
            _ => return Ok(count),
        }
    }
}

/// A group's lag, or how to find it.
#[derive(Debug, PartialEq, Eq)]
enum Lag {
    /// The lag (`None`: the group's position cannot be read).
    Known(Option<u64>),
    /// The entries after this id, to be counted.
    CountAfter(StreamId),
}

/// The lag of a group whose Redis figure is `reported` and whose last
/// delivered id is `last_delivered`, on a stream of `length` entries from
/// `first` to `last_generated` (its last id ever). Redis's figure counts
/// every entry added after the group's position, trimmed ones included,
/// and is `None` after deletions out of order; exact figures come from the
/// position instead: 0 at or past the stream's end, the whole length
/// before its first entry, Redis's figure in between when it has one (no
/// entry after the group's position is gone then), else a count.
fn lag_of(
    reported: Option<usize>,
    last_delivered: &str,
    first: Option<StreamId>,
    last_generated: Option<StreamId>,
    length: u64,
) -> Lag {
    let Some(delivered) = StreamId::parse(last_delivered) else {
        return Lag::Known(reported.map(|lag| (lag as u64).min(length)));
    };
    let (Some(first), Some(last)) = (first, last_generated) else {
        return Lag::Known(Some(0));
    };
    if delivered >= last {
        Lag::Known(Some(0))
    } else if delivered < first {
        Lag::Known(Some(length))
    } else if let Some(lag) = reported {
        Lag::Known(Some((lag as u64).min(length)))
    } else {
        Lag::CountAfter(delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lag_is_what_is_left_after_the_groups_position() {
        let id = |id: &str| StreamId::parse(id);
        let (first, last) = (id("10-0"), id("20-0"));
        let lag = |reported, delivered| lag_of(reported, delivered, first, last, 7);
        assert_eq!(lag(Some(63_374), "20-0"), Lag::Known(Some(0)), "caught up");
        assert_eq!(
            lag(None, "20-0"),
            Lag::Known(Some(0)),
            "caught up, unknown to Redis"
        );
        assert_eq!(
            lag(Some(63_374), "5-0"),
            Lag::Known(Some(7)),
            "before the first entry"
        );
        assert_eq!(lag(None, "0-0"), Lag::Known(Some(7)), "read nothing");
        assert_eq!(lag(Some(3), "15-0"), Lag::Known(Some(3)), "Redis's figure");
        assert_eq!(lag(None, "15-0"), Lag::CountAfter(id("15-0").unwrap()));
        assert_eq!(
            lag_of(Some(63_374), "20-0", None, last, 0),
            Lag::Known(Some(0)),
            "trimmed to nothing"
        );
        assert_eq!(lag(Some(3), "nonsense"), Lag::Known(Some(3)));
    }
}
