//! Whether a consumer group is still to settle a given entry.
//!
//! A producer that re-sends an event when it sees no effect (campaign-service
//! re-announcing a campaign whose audience is still unknown) must not pile up
//! copies while the first one is merely waiting: behind a slow or stopped
//! consumer, every copy would later be handled too. It asks [`awaits`] first
//! and re-sends only once the group has settled the last copy (handled it or
//! dead-lettered it) without the effect showing.

use crate::connection::Redis;

use crate::entry::StreamId;
use crate::error::Result;
use crate::group::groups_of;

/// Whether `group` has yet to settle entry `entry_id` of `stream`: it was
/// not delivered to the group yet (or the group does not exist yet; groups
/// read a stream from its start), or it was delivered and not acknowledged.
pub async fn awaits(conn: &mut Redis, stream: &str, group: &str, entry_id: &str) -> Result<bool> {
    let Some(groups) = groups_of(conn, stream).await? else {
        return Ok(false);
    };
    let Some(found) = groups.into_iter().find(|found| found.name == group) else {
        return Ok(true);
    };
    let delivered = match (
        StreamId::parse(entry_id),
        StreamId::parse(&found.last_delivered_id),
    ) {
        (Some(entry), Some(last)) => entry <= last,
        _ => true,
    };
    if !delivered {
        return Ok(true);
    }
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg(entry_id)
        .arg(entry_id)
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(matches!(pending, redis::Value::Array(rows) if !rows.is_empty()))
}
