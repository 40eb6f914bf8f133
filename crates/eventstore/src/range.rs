//! Reading a stream in order, without a consumer group: for a reader that
//! must know it has seen every entry written up to now (a copy brought up
//! to date before it is trusted), which a group's deliveries cannot tell.

use crate::connection::Redis;
use crate::entry::{entry_list, RawEntry};
use crate::error::Result;

/// Up to `count` entries of `stream`, oldest first, after the entry id
/// `after` (`None`: from the first the stream still holds). An entry
/// added before this call returns is among them, or among the next page's.
pub async fn entries_after(
    conn: &mut Redis,
    stream: &str,
    after: Option<&str>,
    count: usize,
) -> Result<Vec<RawEntry>> {
    entries_between(conn, stream, after, "+", count).await
}

/// Up to `count` entries of `stream`, oldest first, after the entry id
/// `after` (`None`: from the first) and up to `until` (an entry id, or
/// `+` for the last).
pub async fn entries_between(
    conn: &mut Redis,
    stream: &str,
    after: Option<&str>,
    until: &str,
    count: usize,
) -> Result<Vec<RawEntry>> {
    let start = after.map_or_else(|| "-".to_string(), |id| format!("({id}"));
    let reply: redis::Value = redis::cmd("XRANGE")
        .arg(stream)
        .arg(start)
        .arg(until)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(entry_list(reply))
}
