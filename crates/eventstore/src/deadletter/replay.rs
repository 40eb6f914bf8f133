//! Putting dead letters back on their stream, one or all of them.
//!
//! A replay re-publishes a letter's original fields, exactly (see
//! [`super::fields`]), to the stream it came from and removes the letter,
//! atomically (on a cluster: re-published first, removed after, so a crash
//! between the two repeats a replay, never loses a letter).
//!
//! [`replay_all`] replays the letters present when it starts, each once:
//! it pages forward from the first to the last id it saw then, so letters
//! that fail again at once (with new ids, past that bound) are not replayed
//! again in the same run, and it ends. It goes at the pace of the stream it
//! replays into: a page waits while that stream holds more than
//! [`Pace::max_backlog`] entries some group still needs (the measure of
//! user-service's flow control, [`crate::trim::backlog`]), so a replay of
//! a hundred thousand letters joins the traffic instead of flooding Redis.

use std::time::Duration;

use tokio::time::Instant;

use super::fields;
use crate::batch::Batch;
use crate::connection::Redis;
use crate::entry::{entry_list, RawEntry, StreamId};
use crate::error::{Error, Result};
use crate::keys::dead_letter_stream;
use crate::range::entries_between;
use crate::trim;

/// Most letters replayed in one page (one pipeline).
const PAGE: u64 = 100;

/// How often a paused replay looks at the backlog again.
const POLL: Duration = Duration::from_millis(50);

/// How [`replay_all`] goes: at what pace, and until when.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Entries the stream may hold that some group still needs before a
    /// page of letters waits for them to drain (a stream that holds none
    /// takes a page whatever its size).
    pub max_backlog: u64,
    /// When the replay stops, done or not: the caller may have a deadline
    /// of its own (an HTTP request's), and a stream that nobody reads never
    /// drains.
    pub until: Instant,
}

/// What [`replay_all`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Letters put back on the stream.
    pub replayed: usize,
    /// Letters left in place: they hold nothing to replay (see
    /// [`Error::NothingToReplay`]).
    pub skipped: usize,
    /// Whether every letter present at the start was gone through; `false`
    /// when [`Pace::until`] came first (call again for the rest).
    pub done: bool,
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
        [(stream, entry)] => republish_one(conn, stream, entry).await.map(Some),
        _ => Err(Error::AmbiguousId {
            id: dead_id.to_string(),
            streams: holders.iter().map(|(stream, _)| (*stream).clone()).collect(),
        }),
    }
}

/// Re-publishes dead letter `dead_id` of `stream` to `stream` and removes it
/// from the dead-letter stream. Returns the new entry id, or `None` when no
/// such dead letter exists; [`Error::InvalidId`] when `dead_id` is not a
/// stream id (the caller's mistake, not the store's), and
/// [`Error::NothingToReplay`] for a letter without fields.
pub async fn replay(conn: &mut Redis, stream: &str, dead_id: &str) -> Result<Option<String>> {
    if !StreamId::is_exact(dead_id) {
        return Err(Error::InvalidId(dead_id.to_string()));
    }
    match dead_letter(conn, stream, dead_id).await? {
        Some(entry) => republish_one(conn, stream, &entry).await.map(Some),
        None => Ok(None),
    }
}

/// Replays every dead letter `stream` holds when it starts, each once, a
/// page at a time at `pace` (see the module's doc).
pub async fn replay_all(conn: &mut Redis, stream: &str, pace: Pace) -> Result<ReplayOutcome> {
    let dead = dead_letter_stream(stream);
    let mut outcome = ReplayOutcome {
        replayed: 0,
        skipped: 0,
        done: false,
    };
    let Some(last) = last_id(conn, &dead).await? else {
        outcome.done = true;
        return Ok(outcome);
    };
    let page_size = usize::try_from(PAGE.min(pace.max_backlog).max(1)).unwrap_or(usize::MAX);
    let mut after: Option<String> = None;
    loop {
        let page = entries_between(conn, &dead, after.as_deref(), &last, page_size).await?;
        let Some(tail) = page.last() else {
            outcome.done = true;
            return Ok(outcome);
        };
        after = Some(tail.id.clone());
        let (letters, skipped): (Vec<_>, Vec<_>) = page
            .into_iter()
            .map(|letter| (fields::original(&letter.fields), letter))
            .partition(|(original, _)| original.as_ref().is_ok_and(|fields| !fields.is_empty()));
        outcome.skipped += skipped.len();
        if !wait_for_room(conn, stream, letters.len() as u64, pace).await? {
            return Ok(outcome);
        }
        let letters: Vec<(fields::RawFields, RawEntry)> = letters
            .into_iter()
            .map(|(original, letter)| (original.unwrap_or_default(), letter))
            .collect();
        outcome.replayed += republish(conn, stream, &letters).await?.len();
    }
}

/// Waits until `stream` has room for `page` more entries at `pace`
/// (or holds none that a group needs); `false` if `pace.until` comes first.
async fn wait_for_room(conn: &mut Redis, stream: &str, page: u64, pace: Pace) -> Result<bool> {
    loop {
        let backlog = trim::backlog(conn, &[stream.to_string()]).await?;
        if backlog == 0 || backlog + page <= pace.max_backlog {
            return Ok(true);
        }
        if Instant::now() + POLL >= pace.until {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The id of the last entry of `stream`, if any.
async fn last_id(conn: &mut Redis, stream: &str) -> Result<Option<String>> {
    let reply: redis::Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(entry_list(reply).into_iter().next().map(|entry| entry.id))
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

/// Re-publishes dead letter `letter` of `stream`; see [`replay`].
async fn republish_one(conn: &mut Redis, stream: &str, letter: &RawEntry) -> Result<String> {
    let original = fields::original(&letter.fields).map_err(|reason| Error::NothingToReplay {
        id: letter.id.clone(),
        reason,
    })?;
    if original.is_empty() {
        return Err(Error::NothingToReplay {
            id: letter.id.clone(),
            reason: "its entry had no fields left (it was deleted)".into(),
        });
    }
    let mut new_ids = republish(conn, stream, &[(original, letter.clone())]).await?;
    Ok(new_ids.pop().unwrap_or_default())
}

/// Re-publishes each of `letters` (its original fields, never empty, and
/// the letter) to `stream` and removes the letters from its dead-letter
/// stream, in one pipeline: the new entries first. Returns the new ids.
async fn republish(
    conn: &mut Redis,
    stream: &str,
    letters: &[(fields::RawFields, RawEntry)],
) -> Result<Vec<String>> {
    if letters.is_empty() {
        return Ok(Vec::new());
    }
    let mut batch = Batch::atomic();
    for (original, _) in letters {
        let mut xadd = redis::cmd("XADD");
        xadd.arg(stream).arg("*");
        for (name, value) in original {
            xadd.arg(name.as_slice()).arg(value.as_slice());
        }
        batch.add(xadd);
    }
    let mut xdel = redis::cmd("XDEL");
    xdel.arg(dead_letter_stream(stream));
    for (_, letter) in letters {
        xdel.arg(&letter.id);
    }
    batch.add(xdel);
    let replies = batch.run(conn).await?;
    replies
        .into_iter()
        .take(letters.len())
        .map(|reply| redis::from_redis_value(reply).map_err(|error| Error::Redis(error.into())))
        .collect()
}
