//! The Redis commands of the worker, and how their replies are read.
//!
//! Redis's delivery count of an entry is raised only where the worker is
//! about to run a handler on it: `XREADGROUP … >` (a new entry) and
//! [`take`] (`XCLAIM` without `JUSTID`: a claimed or retried entry). Every
//! other claim uses `JUSTID`, which Redis 7.0 does not count: claiming idle
//! entries ([`claim_idle_ids`]) and keeping held ones fresh ([`keep`]).
//!
//! Only `XAUTOCLAIM` takes an entry from another consumer, and only one
//! idle longer than `claim_idle` (its consumer died). [`take`] and [`keep`]
//! re-claim entries this consumer holds already, and must not take one
//! that another consumer claimed meanwhile (this one looked dead to it, its
//! keeping having failed for a while): a plain `XCLAIM … 0` would take it
//! back from a live consumer, and both would run it, claiming it from each
//! other for as long as both hold it. So they claim through [`CLAIM_MINE`],
//! which leaves out the ids pending for another consumer.
//!
//! Besides the count, the worker keeps per entry how many deliveries ended
//! in [`crate::HandleError::Retry`] (a hash `<stream>:retries:<group>`), so
//! that any consumer can tell deliveries that answered from deliveries that
//! crashed; the settle pipeline deletes an entry's field with its ack.

use redis::{RedisResult, Value};

use super::config::WorkerConfig;
use crate::batch::Batch;
use crate::connection::Redis;
use crate::entry::{entry_list, read_reply_entries, text, RawEntry};
use crate::keys::retries_key;

/// Most ids in one `XCLAIM`, to keep a command's size modest.
const CLAIM_CHUNK: usize = 1_000;

/// `XCLAIM <stream> <group> <consumer> 0 <ids…> [JUSTID]` of only those
/// ids the group has pending for `<consumer>` itself, atomically (a script
/// runs alone): `KEYS[1]` the stream, `ARGV` the group, the consumer,
/// `JUSTID` or nothing, then the ids. Answers what `XCLAIM` answers for
/// them. An id deleted from the stream while pending leaves the pending
/// list on the way, as with `XCLAIM` (Redis 7.0).
const CLAIM_MINE: &str = r"
local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], '0'}
for i = 4, #ARGV do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if row and row[2] == ARGV[2] then
    claim[#claim + 1] = ARGV[i]
  end
end
if #claim == 5 then
  return {}
end
if ARGV[3] == 'JUSTID' then
  claim[#claim + 1] = 'JUSTID'
end
return redis.call(unpack(claim))
";

/// Deletes the consumers of group `ARGV[1]` on stream `KEYS[1]` that hold
/// nothing pending and were idle longer than `ARGV[2]` ms, but for
/// `ARGV[3]` (the caller); answers how many. A script runs alone, so no
/// entry can be delivered to one between the check and the deletion: a
/// consumer is deleted only with nothing pending, and one still alive is
/// made again by its next read.
const FORGET_IDLE: &str = r"
local forgotten = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do
    info[consumer[i]] = consumer[i + 1]
  end
  if info['pending'] == 0 and info['idle'] > tonumber(ARGV[2]) and info['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    forgotten = forgotten + 1
  end
end
return forgotten
";

/// Forgets the consumers of the group idle longer than `claim_idle` with
/// nothing pending: consumer names are unique to a process, so each
/// restart leaves one behind, which would be listed for ever. Returns how
/// many.
pub(crate) async fn forget_idle_consumers(conn: &mut Redis, config: &WorkerConfig) -> RedisResult<u64> {
    redis::cmd("EVAL")
        .arg(FORGET_IDLE)
        .arg(1)
        .arg(&config.stream)
        .arg(&config.group)
        .arg(config.claim_idle.as_millis() as u64)
        .arg(&config.consumer)
        .query_async(conn)
        .await
}

/// [`CLAIM_MINE`] of `ids`, with `JUSTID` when `just_ids`.
fn claim_mine(config: &WorkerConfig, ids: &[String], just_ids: bool) -> redis::Cmd {
    let mut eval = redis::cmd("EVAL");
    eval.arg(CLAIM_MINE)
        .arg(1)
        .arg(&config.stream)
        .arg(&config.group)
        .arg(&config.consumer)
        .arg(if just_ids { "JUSTID" } else { "" })
        .arg(ids);
    eval
}

/// One entry the worker is about to run a handler on.
pub(crate) struct Claimed {
    pub entry: RawEntry,
    /// Redis's delivery count, this delivery included.
    pub deliveries: u64,
    /// Earlier deliveries that ended in `HandleError::Retry`.
    pub retried: u64,
}

/// Reads up to `count` new entries, blocking up to `config.block`.
pub(crate) async fn read_new(
    conn: &mut Redis,
    config: &WorkerConfig,
    count: usize,
) -> RedisResult<Vec<Claimed>> {
    let reply: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(&config.group)
        .arg(&config.consumer)
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(config.block.as_millis() as u64)
        .arg("STREAMS")
        .arg(&config.stream)
        .arg(">")
        .query_async(conn)
        .await?;
    Ok(read_reply_entries(reply)
        .into_iter()
        .map(|entry| Claimed {
            entry,
            deliveries: 1,
            retried: 0,
        })
        .collect())
}

/// One page of `XAUTOCLAIM … JUSTID`.
pub(crate) struct IdlePage {
    /// Where the next page starts; `None` after the last.
    pub next: Option<String>,
    /// Entries idle longer than `claim_idle`, now this consumer's, their
    /// delivery count unchanged.
    pub ids: Vec<String>,
}

/// Claims to this consumer up to `count` entries of the group idle longer
/// than `claim_idle`, from `cursor`, without counting a delivery. Entries
/// deleted from the stream leave the pending list on the way, and their
/// retry counts are dropped with them.
pub(crate) async fn claim_idle_ids(
    conn: &mut Redis,
    config: &WorkerConfig,
    cursor: &str,
    count: usize,
) -> RedisResult<IdlePage> {
    let reply: Value = redis::cmd("XAUTOCLAIM")
        .arg(&config.stream)
        .arg(&config.group)
        .arg(&config.consumer)
        .arg(config.claim_idle.as_millis() as u64)
        .arg(cursor)
        .arg("COUNT")
        .arg(count)
        .arg("JUSTID")
        .query_async(conn)
        .await?;
    let Value::Array(parts) = reply else {
        return Ok(IdlePage {
            next: None,
            ids: Vec::new(),
        });
    };
    let mut parts = parts.into_iter();
    let next = parts.next().and_then(text).filter(|next| next != "0-0");
    let ids = parts.next().map(id_list).unwrap_or_default();
    let deleted = parts.next().map(id_list).unwrap_or_default();
    if !deleted.is_empty() {
        redis::cmd("HDEL")
            .arg(retries_key(&config.stream, &config.group))
            .arg(&deleted)
            .query_async::<()>(conn)
            .await?;
    }
    Ok(IdlePage { next, ids })
}

/// Claims those of `ids` still pending for this consumer (whatever their
/// idle time: the worker holds them already) counting a delivery (`XCLAIM`
/// without `JUSTID`), and returns them with their fields and counts,
/// atomically (on a cluster, the retry counts are read just after, in a
/// slot of their own). An id another consumer claimed meanwhile is left to
/// it, and not returned.
pub(crate) async fn take(
    conn: &mut Redis,
    config: &WorkerConfig,
    ids: &[String],
) -> RedisResult<Vec<Claimed>> {
    let mut taken = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CLAIM_CHUNK) {
        let mut batch = Batch::atomic();
        batch.add(claim_mine(config, chunk, false));
        for id in chunk {
            let mut xpending = redis::cmd("XPENDING");
            xpending
                .arg(&config.stream)
                .arg(&config.group)
                .arg(id)
                .arg(id)
                .arg(1);
            batch.add(xpending);
        }
        // Read after the claim: the retry counts of entries this worker
        // holds change only by its own hand.
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(retries_key(&config.stream, &config.group)).arg(chunk);
        batch.add(hmget);
        let mut replies = batch.run(conn).await?;
        let retried: Vec<Option<u64>> = match replies.pop() {
            Some(reply) => redis::from_redis_value(reply)?,
            None => Vec::new(),
        };
        let mut replies = replies.into_iter();
        let entries = replies.next().map(entry_list).unwrap_or_default();
        let counts: Vec<u64> = replies.map(times_delivered).collect();
        for entry in entries.into_iter().filter(|entry| !entry.fields.is_empty()) {
            let Some(index) = chunk.iter().position(|id| *id == entry.id) else {
                continue;
            };
            taken.push(Claimed {
                deliveries: counts.get(index).copied().unwrap_or(1),
                retried: retried.get(index).copied().flatten().unwrap_or(0),
                entry,
            });
        }
    }
    Ok(taken)
}

/// Re-claims those of `ids` still pending for this consumer with `JUSTID`:
/// their idle time starts again, their delivery count stays. Ids no longer
/// pending, or pending for another consumer, are left alone.
pub(crate) async fn keep(conn: &mut Redis, config: &WorkerConfig, ids: &[String]) -> RedisResult<()> {
    for chunk in ids.chunks(CLAIM_CHUNK) {
        claim_mine(config, chunk, true).query_async::<()>(conn).await?;
    }
    Ok(())
}

/// Counts one delivery of `id` that ended in a retry.
pub(crate) async fn record_retry(conn: &mut Redis, config: &WorkerConfig, id: &str) -> RedisResult<()> {
    redis::cmd("HINCRBY")
        .arg(retries_key(&config.stream, &config.group))
        .arg(id)
        .arg(1)
        .query_async(conn)
        .await
}

/// The delivery count from an extended `XPENDING` reply
/// (`[[id, consumer, idle, count]]`); 1 when the entry is no longer pending.
fn times_delivered(reply: Value) -> u64 {
    let Value::Array(rows) = reply else {
        return 1;
    };
    match rows.into_iter().next() {
        Some(Value::Array(row)) => match row.get(3) {
            Some(Value::Int(count)) => (*count).max(1) as u64,
            _ => 1,
        },
        _ => 1,
    }
}

fn id_list(value: Value) -> Vec<String> {
    match value {
        Value::Array(ids) => ids.into_iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}
