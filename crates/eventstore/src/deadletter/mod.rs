//! The dead-letter stream: where entries go that cannot be handled.
//!
//! An entry of stream `S` that cannot be decoded, or fails `max_deliveries`
//! times, is copied to `S:dead` with the fields below, its own fields kept
//! exactly in one of them (see [`fields`]), and acked in `S` in the same
//! transaction (on a cluster, where the two keys may live in different
//! slots, the copy is written first and the ack after it), so it is neither
//! lost nor able to block the group. An operator lists dead letters and
//! replays them (re-publishes the original fields to `S`, see [`replay`])
//! once the cause is fixed.
//!
//! Dead-letter streams are never capped nor trimmed: a dead letter leaves
//! only by an operator's replay (or deletion), never by eviction.

pub(crate) mod fields;
mod replay;

pub use replay::{replay, replay_all, replay_over, Pace, ReplayOutcome};

use crate::connection::Redis;
use crate::entry::{RawEntry, StreamId};
use crate::error::{Error, Result};
use crate::keys::dead_letter_stream;
use crate::range::entries_after;

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
    /// The original fields as text, `[name, value]` pairs (bytes that are
    /// not UTF-8 shown as U+FFFD): for reading.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<String>>))]
    pub fields: Vec<(String, String)>,
    /// The same fields exactly, each name and value base64 (standard
    /// alphabet, padded): what a replay re-publishes, and the one faithful
    /// view of an entry whose bytes are not text.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<String>>))]
    pub fields_base64: Vec<(String, String)>,
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
        .arg(request.deliveries)
        .arg(fields::FIELD_FIELDS)
        .arg(fields::encode(&request.entry.fields));
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
    if let Some(id) = after.filter(|id| !StreamId::is_exact(id)) {
        return Err(Error::InvalidId(id.to_string()));
    }
    Ok(entries_after(conn, &dead_letter_stream(stream), after, count)
        .await?
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

/// A dead letter for reading. One whose `dead.fields` cannot be read is
/// listed all the same, without fields, its reason saying why.
fn to_dead_letter(stream: &str, entry: RawEntry) -> DeadLetter {
    let field = |name: &str| {
        entry
            .fields
            .iter()
            .find(|(field, _)| field == name.as_bytes())
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default()
    };
    let mut reason = field(FIELD_REASON);
    let original = fields::original(&entry.fields).unwrap_or_else(|error| {
        reason = format!("{reason} (its fields cannot be read: {error})");
        Vec::new()
    });
    let (fields, fields_base64) = fields::shown(&original);
    DeadLetter {
        stream: stream.to_string(),
        group: field(FIELD_GROUP),
        original_id: field(FIELD_ORIGINAL_ID),
        reason,
        deliveries: field(FIELD_DELIVERIES).parse().unwrap_or_default(),
        fields,
        fields_base64,
        id: entry.id,
    }
}
