//! Keeping streams bounded without losing what a group still needs.
//!
//! Redis 7.0's `XTRIM` knows nothing of consumer groups, so the safe point is
//! computed here: for each group, the oldest entry it still needs is its
//! oldest pending entry, or, when nothing is pending, the entry after its
//! last-delivered id. The stream is trimmed (`XTRIM MINID`) to the smallest of
//! those over all groups. A stream without groups is left alone: nobody has
//! read it yet.
//!
//! The group's last-delivered id is read *before* its pending list. Delivery
//! only moves forward, so anything older than the pending minimum read
//! afterwards was delivered and acknowledged; reading in the other order
//! could miss an entry delivered in between.

use std::time::Duration;

use crate::connection::Redis;
use tokio_util::sync::CancellationToken;

use crate::entry::{text, StreamId};
use crate::error::Result;
use crate::group::groups_of;
use crate::keys::is_dead_letter_stream;
use crate::lease::Lease;

/// The smallest id some group of `stream` still needs, or `None` when the
/// stream has no groups (or does not exist).
pub async fn safe_min_id(conn: &mut Redis, stream: &str) -> Result<Option<StreamId>> {
    let Some(groups) = groups_of(conn, stream).await? else {
        return Ok(None);
    };
    let mut min: Option<StreamId> = None;
    for group in groups {
        let Some(last_delivered) = StreamId::parse(&group.last_delivered_id) else {
            return Ok(None);
        };
        let summary: redis::Value = redis::cmd("XPENDING")
            .arg(stream)
            .arg(&group.name)
            .query_async(conn)
            .await?;
        let needed = oldest_pending(summary).unwrap_or_else(|| last_delivered.next());
        min = Some(min.map_or(needed, |m| m.min(needed)));
    }
    Ok(min)
}

/// Trims `stream` to its safe point. Returns the number of entries removed
/// (always 0 for a dead-letter stream).
pub async fn trim(conn: &mut Redis, stream: &str) -> Result<u64> {
    if is_dead_letter_stream(stream) {
        return Ok(0);
    }
    let Some(min_id) = safe_min_id(conn, stream).await? else {
        return Ok(0);
    };
    let removed: u64 = redis::cmd("XTRIM")
        .arg(stream)
        .arg("MINID")
        .arg("=")
        .arg(min_id.to_string())
        .query_async(conn)
        .await?;
    Ok(removed)
}

/// How many entries `streams` hold that some group still needs: each is
/// trimmed to its safe point first, so what is left is unread, or read and
/// not yet acknowledged. The measure of flow control: it is what the
/// streams occupy in Redis, and it shrinks only as the consumers get on.
pub async fn backlog(conn: &mut Redis, streams: &[String]) -> Result<u64> {
    let mut total = 0;
    for stream in streams {
        trim(conn, stream).await?;
        let len: u64 = redis::cmd("XLEN").arg(stream).query_async(conn).await?;
        total += len;
    }
    Ok(total)
}

/// Trims each of `streams` every `every` until `shutdown`, while holding
/// `lease`: one instance of a service trims for all of them. Errors are
/// logged and retried at the next round.
pub async fn run_trimmer(
    conn: Redis,
    streams: Vec<String>,
    every: Duration,
    lease: Lease,
    shutdown: CancellationToken,
) {
    let round = || {
        let mut conn = conn.clone();
        let streams = &streams;
        async move {
            for stream in streams {
                match trim(&mut conn, stream).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::debug!(stream, removed, "trimmed stream"),
                    Err(error) => tracing::warn!(stream, %error, "trimming failed; will retry"),
                }
            }
        }
    };
    lease.run_rounds(every, round, shutdown).await;
}

/// The smallest pending id from an `XPENDING <stream> <group>` summary
/// (`[count, min, max, consumers]`), or `None` when nothing is pending.
fn oldest_pending(summary: redis::Value) -> Option<StreamId> {
    let redis::Value::Array(mut parts) = summary else {
        return None;
    };
    if parts.len() < 2 {
        return None;
    }
    let min = parts.swap_remove(1);
    StreamId::parse(&text(min)?)
}
