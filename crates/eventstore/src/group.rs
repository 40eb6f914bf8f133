//! Creating a consumer group, and saying what it can never see.
//!
//! A group is created from the start of its stream (`0`), so that events
//! published before a service first ran are not skipped. But a stream that
//! has been trimmed no longer holds its start: a group created afterwards
//! (a new service, or one recreated after its group was deleted) silently
//! misses every entry removed before it existed. Redis 7.0 tells how many
//! that is: `entries-added` counts every entry ever added, `length` those
//! still there. [`ensure_group`] reports the difference and logs it.

use std::collections::HashMap;

use redis::streams::{StreamInfoGroup, StreamInfoGroupsReply};

use crate::connection::Redis;

use crate::error::Result;

/// The consumer groups of `stream`, or `None` when the stream does not
/// exist: `XINFO GROUPS` fails on a missing key, so the readers of a
/// stream's groups ([`awaits`](crate::pending::awaits), [`safe_min_id`](crate::trim::safe_min_id))
/// ask whether it exists first.
pub(crate) async fn groups_of(conn: &mut Redis, stream: &str) -> Result<Option<Vec<StreamInfoGroup>>> {
    let exists: bool = redis::cmd("EXISTS").arg(stream).query_async(conn).await?;
    if !exists {
        return Ok(None);
    }
    let info: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await?;
    Ok(Some(info.groups))
}

/// What [`ensure_group`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStart {
    /// The group existed already.
    Existed,
    /// The group was created from the start of the stream.
    Created {
        /// Entries removed from the stream (trimmed or deleted) before the
        /// group existed: the group will never see them.
        missed: u64,
    },
}

/// Creates `group` on `stream` (and the stream) if missing, from the start
/// of the stream. When entries had already been removed from the stream, a
/// warning names the stream, the group and how many it missed.
pub async fn ensure_group(conn: &mut Redis, stream: &str, group: &str) -> Result<GroupStart> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(error) if error.code() == Some("BUSYGROUP") => return Ok(GroupStart::Existed),
        Err(error) => return Err(error.into()),
        Ok(()) => {}
    }
    // The new group holds the stream's start from now on, so the trimmer
    // cannot change the difference between this and the creation.
    let info: HashMap<String, redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream)
        .query_async(conn)
        .await?;
    let number = |name: &str| match info.get(name) {
        Some(redis::Value::Int(n)) => (*n).max(0) as u64,
        _ => 0,
    };
    let missed = number("entries-added").saturating_sub(number("length"));
    if missed > 0 {
        tracing::warn!(
            stream,
            group,
            missed,
            "consumer group created after entries had been trimmed or deleted from its stream; it will never see them"
        );
    } else {
        tracing::info!(stream, group, "consumer group created");
    }
    Ok(GroupStart::Created { missed })
}
