//! The dead-letter stream: where entries go that cannot be handled.
//!
//! An entry of stream `S` that cannot be decoded, or fails `max_deliveries`
//! times, is copied to `S:dead` with its original fields plus the fields
//! below, and acked in `S` in the same transaction (on a cluster, where the
//! two keys may live in different slots, the copy is written first and the
//! ack after it), so it is neither lost nor able to block the group. An operator lists dead letters and replays
//! them (re-publishes the original fields to `S`) once the cause is fixed.
//!
//! Dead-letter streams are never capped nor trimmed: a dead letter leaves
//! only by an operator's replay (or deletion), never by eviction.

use crate::batch::Batch;
use crate::connection::Redis;
use crate::entry::{entry_list, RawEntry, StreamId};
use crate::error::{Error, Result};
use crate::keys::dead_letter_stream;

const FIELD_STREAM: &str = "dead.stream";
const FIELD_GROUP: &str = "dead.group";
const FIELD_ORIGINAL_ID: &str = "dead.original_id";
const FIELD_REASON: &str = "dead.reason";
const FIELD_DELIVERIES: &str = "dead.deliveries";

/// One dead letter, as listed for an operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetter {
    /// Its id in the dead-letter stream (what [`replay`] takes).
    pub id: String,
    /// The stream it came from.
    pub stream: String,
    /// The consumer group that gave up on it.
    pub group: String,
    /// Its id in the original stream.
    pub original_id: String,
    /// Why it was dead-lettered.
    pub reason: String,
    /// How many times it had been delivered.
    pub deliveries: u64,
    /// The original fields, values shown as (lossy) UTF-8: `[name, value]`
    /// pairs.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<String>>))]
    pub fields: Vec<(String, String)>,
}

/// What the worker needs to dead-letter one entry.
pub(crate) struct DeadLetterRequest {
    pub entry: RawEntry,
    pub reason: String,
    pub deliveries: u64,
}

/// The command that copies `request` to the dead-letter stream; the caller
/// acks the entry in `group` and counts it after this command.
pub(crate) fn dead_letter_copy(stream: &str, group: &str, request: &DeadLetterRequest) -> redis::Cmd {
    let mut xadd = redis::cmd("XADD");
    xadd.arg(dead_letter_stream(stream))
        .arg("*")
        .arg(FIELD_STREAM)
        .arg(stream)
        .arg(FIELD_GROUP)
        .arg(group)
        .arg(FIELD_ORIGINAL_ID)
        .arg(&request.entry.id)
        .arg(FIELD_REASON)
        .arg(&request.reason)
        .arg(FIELD_DELIVERIES)
        .arg(request.deliveries);
    for (name, value) in &request.entry.fields {
        xadd.arg(name).arg(value.as_slice());
    }
    xadd
}

/// The oldest `count` dead letters of `stream`.
pub async fn list(conn: &mut Redis, stream: &str, count: usize) -> Result<Vec<DeadLetter>> {
    page(conn, stream, None, count).await
}

/// The oldest `count` dead letters of `stream` after dead letter `after`
/// (from the first with `None`); [`Error::InvalidId`] when `after` is not a
/// stream id.
pub async fn page(
    conn: &mut Redis,
    stream: &str,
    after: Option<&str>,
    count: usize,
) -> Result<Vec<DeadLetter>> {
    let start = match after {
        Some(id) if !StreamId::is_exact(id) => return Err(Error::InvalidId(id.to_string())),
        Some(id) => format!("({id}"),
        None => "-".to_string(),
    };
    let reply: redis::Value = redis::cmd("XRANGE")
        .arg(dead_letter_stream(stream))
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(entry_list(reply)
        .into_iter()
        .map(|entry| to_dead_letter(stream, entry))
        .collect())
}

/// The oldest `count` dead letters after `after` over `streams`, the
/// partitions of one stream (see [`crate::partition`]), merged by id, each
/// naming the partition it is in. Two partitions can hold the same id
/// (written in the same millisecond): a page never ends between them, so it
/// may hold a few more than `count`, and the page after its last id misses
/// none.
pub async fn page_over(
    conn: &mut Redis,
    streams: &[String],
    after: Option<&str>,
    count: usize,
) -> Result<Vec<DeadLetter>> {
    let mut letters = Vec::new();
    for stream in streams {
        letters.extend(page(conn, stream, after, count).await?);
    }
    letters.sort_by_key(|letter| StreamId::parse(&letter.id));
    if let Some(last) = letters
        .get(count.saturating_sub(1))
        .map(|letter| letter.id.clone())
    {
        let end = count
            + letters[count..]
                .iter()
                .take_while(|letter| letter.id == last)
                .count();
        letters.truncate(end);
    }
    Ok(letters)
}

/// Replays dead letter `dead_id` from whichever of `streams` (a stream's
/// partitions) holds it; see [`replay`]. Partitions number their entries
/// on their own, so two may hold the same id: then nothing is replayed and
/// [`Error::AmbiguousId`] names them, for the caller to pick one.
pub async fn replay_over(conn: &mut Redis, streams: &[String], dead_id: &str) -> Result<Option<String>> {
    if !StreamId::is_exact(dead_id) {
        return Err(Error::InvalidId(dead_id.to_string()));
    }
    let mut holders = Vec::new();
    for stream in streams {
        if let Some(entry) = dead_letter(conn, stream, dead_id).await? {
            holders.push((stream, entry));
        }
    }
    match holders.as_slice() {
        [] => Ok(None),
        [(stream, entry)] => republish(conn, stream, entry).await.map(Some),
        _ => Err(Error::AmbiguousId {
            id: dead_id.to_string(),
            streams: holders.iter().map(|(stream, _)| (*stream).clone()).collect(),
        }),
    }
}

/// Dead letter `dead_id` of `stream`, if it is there.
async fn dead_letter(conn: &mut Redis, stream: &str, dead_id: &str) -> Result<Option<RawEntry>> {
    let reply: redis::Value = redis::cmd("XRANGE")
        .arg(dead_letter_stream(stream))
        .arg(dead_id)
        .arg(dead_id)
        .query_async(conn)
        .await?;
    Ok(entry_list(reply).into_iter().next())
}

/// Re-publishes dead letter `dead_id` of `stream` to `stream` and removes it
/// from the dead-letter stream, atomically (on a cluster: re-published
/// first, removed after). Returns the new entry id, or
/// `None` when no such dead letter exists; [`Error::InvalidId`] when
/// `dead_id` is not a stream id (the caller's mistake, not the store's).
pub async fn replay(conn: &mut Redis, stream: &str, dead_id: &str) -> Result<Option<String>> {
    if !StreamId::is_exact(dead_id) {
        return Err(Error::InvalidId(dead_id.to_string()));
    }
    match dead_letter(conn, stream, dead_id).await? {
        Some(entry) => republish(conn, stream, &entry).await.map(Some),
        None => Ok(None),
    }
}

/// Re-publishes dead letter `entry` to `stream`, whose dead-letter stream
/// holds it, and removes it from there (see [`replay`]); returns the new
/// entry id.
async fn republish(conn: &mut Redis, stream: &str, entry: &RawEntry) -> Result<String> {
    let mut xadd = redis::cmd("XADD");
    xadd.arg(stream).arg("*");
    for (name, value) in entry.fields.iter().filter(|(name, _)| !name.starts_with("dead.")) {
        xadd.arg(name).arg(value.as_slice());
    }
    let mut xdel = redis::cmd("XDEL");
    xdel.arg(dead_letter_stream(stream)).arg(&entry.id);
    let mut batch = Batch::atomic();
    batch.add(xadd).add(xdel);
    let replies = batch.run(conn).await?;
    let new_id: String = redis::from_redis_value(replies.into_iter().next().unwrap_or(redis::Value::Nil))
        .map_err(redis::RedisError::from)?;
    Ok(new_id)
}

/// Replays every dead letter of `stream`; returns how many.
pub async fn replay_all(conn: &mut Redis, stream: &str) -> Result<usize> {
    let mut replayed = 0;
    loop {
        let batch = list(conn, stream, 500).await?;
        if batch.is_empty() {
            return Ok(replayed);
        }
        for letter in batch {
            if replay(conn, stream, &letter.id).await?.is_some() {
                replayed += 1;
            }
        }
    }
}

fn to_dead_letter(stream: &str, entry: RawEntry) -> DeadLetter {
    let field = |name: &str| {
        entry
            .fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default()
    };
    DeadLetter {
        stream: stream.to_string(),
        group: field(FIELD_GROUP),
        original_id: field(FIELD_ORIGINAL_ID),
        reason: field(FIELD_REASON),
        deliveries: field(FIELD_DELIVERIES).parse().unwrap_or_default(),
        fields: entry
            .fields
            .iter()
            .filter(|(name, _)| !name.starts_with("dead."))
            .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect(),
        id: entry.id,
    }
}
