//! Send rates and quotas shared by every instance: each send takes a slot
//! in time from Redis, so two instances limited to 100 a second send 100 a
//! second together, not 200.
//!
//! One Lua script ([`RESERVE`]) hands out the slots of a batch of sends in
//! one round trip, on Redis' own clock (`TIME`: no instance's clock is
//! trusted, none needs to agree with another's):
//!
//! - **A rate** (GCRA, the generic cell rate algorithm): a send may go at
//!   the theoretical arrival time of the last one plus the interval, less
//!   a tolerance that allows a burst. One number per limit (`tat`) is the
//!   whole state.
//! - **Lanes** beside it, each a rate of its own without burst: a campaign
//!   sending slower than the rest (`rate_per_s`), a receiving domain.
//!   A send's slot is the latest its rate and each of its lanes allow.
//! - **Quotas** per rolling hour and rolling day: sends counted in
//!   buckets (a minute, ten minutes), each kept until no window it could
//!   fall in is open, so the count of any rolling hour or day never passes
//!   its quota (it can count a send a bucket longer than needed: a quota
//!   is never exceeded, at worst reached a minute late).
//!
//! A send whose slot is more than the horizon away, or for which a quota
//! is used up, gets no slot but a time to ask again (a slot held for
//! minutes would be lost by a crash, and reserve capacity for a send that
//! may never come): the sends refused together are told to come back
//! spaced as their slots would be, not all at once. The keys share a hash
//! tag, so one script touches them together on a cluster.

use std::time::Duration;

use crate::connection::Redis;
use crate::error::Result;

/// The hash of the shared rate: `tat`, the quota buckets (`h:<minute>`,
/// `d:<ten minutes>`) and what the dashboard shows (`per_second`,
/// `burst`, `per_hour`, `per_day`, `used_hour`, `used_day`, `wait_us`,
/// `at_us`).
pub const RATE_KEY: &str = "comms:{rate}";

/// The key of lane `name`'s theoretical arrival time (a campaign's:
/// `campaign:<id>`), in [`RATE_KEY`]'s slot.
pub fn lane_key(name: &str) -> String {
    format!("{RATE_KEY}:{name}")
}

/// Reserves slots. `KEYS[1]`: [`RATE_KEY`]; `KEYS[2..]`: lanes. `ARGV`:
/// the rate's interval and burst tolerance in µs (0: no rate), the hourly
/// and daily quotas (0: none), the horizon in µs, the number of sends;
/// then per send, its number of lanes and for each the lane's `KEYS`
/// index and interval in µs. Returns per send the µs until its slot
/// (0 or more), or, refused, minus one less the µs to wait before asking
/// again.
const RESERVE: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local per_hour, per_day = tonumber(ARGV[3]), tonumber(ARGV[4])
local horizon, sends = tonumber(ARGV[5]), tonumber(ARGV[6])
local windows = {
  h = { quota = per_hour, width = 60000000, span = 61, used = 0, oldest = nil },
  d = { quota = per_day, width = 600000000, span = 145, used = 0, oldest = nil },
}
local fields = redis.call('HGETALL', KEYS[1])
local tat = now
for i = 1, #fields, 2 do
  local name = fields[i]
  local kind, bucket = string.match(name, '^([hd]):(%d+)$')
  if kind then
    local window, b = windows[kind], tonumber(bucket)
    if b <= math.floor(now / window.width) - window.span then
      redis.call('HDEL', KEYS[1], name)
    else
      window.used = window.used + tonumber(fields[i + 1])
      if window.oldest == nil or b < window.oldest then window.oldest = b end
    end
  elseif name == 'tat' then
    tat = tonumber(fields[i + 1])
  end
end
local lanes = {}
local function lane(k)
  if lanes[k] == nil then lanes[k] = tonumber(redis.call('GET', KEYS[k]) or '0') end
  return lanes[k]
end
local function quota_free_in()
  local wait = nil
  for _, window in pairs(windows) do
    if window.quota > 0 and window.used >= window.quota then
      local oldest = window.oldest or math.floor(now / window.width)
      local free = (oldest + window.span) * window.width - now
      if wait == nil or free > wait then wait = free end
    end
  end
  return wait
end
local result, at_arg, longest, refused = {}, 7, 0, 0
local counted = {}
for i = 1, sends do
  local count = tonumber(ARGV[at_arg])
  local at = now
  if interval > 0 then at = math.max(at, tat - tolerance) end
  for j = 1, count do
    at = math.max(at, lane(tonumber(ARGV[at_arg + 2 * j - 1])))
  end
  local quota_wait = quota_free_in()
  if quota_wait then
    result[i] = -1 - quota_wait
    if quota_wait > longest then longest = quota_wait end
  elseif at - now > horizon then
    -- Its slot, were the sends refused before it in this batch to have
    -- theirs: so that they come back one after the other.
    local spacing = interval
    for j = 1, count do spacing = math.max(spacing, tonumber(ARGV[at_arg + 2 * j])) end
    result[i] = -1 - (at - now - horizon + refused * spacing)
    refused = refused + 1
  else
    result[i] = at - now
    if at - now > longest then longest = at - now end
    if interval > 0 then tat = math.max(tat, at) + interval end
    for j = 1, count do
      local k = tonumber(ARGV[at_arg + 2 * j - 1])
      lanes[k] = math.max(lanes[k], at) + tonumber(ARGV[at_arg + 2 * j])
    end
    for kind, window in pairs(windows) do
      if window.quota > 0 then
        local b = math.floor(at / window.width)
        local bucket = kind .. ':' .. string.format('%d', b)
        counted[bucket] = (counted[bucket] or 0) + 1
        window.used = window.used + 1
        if window.oldest == nil or b < window.oldest then window.oldest = b end
      end
    end
  end
  at_arg = at_arg + 1 + 2 * count
end
for bucket, n in pairs(counted) do redis.call('HINCRBY', KEYS[1], bucket, n) end
for k, lane_tat in pairs(lanes) do
  local ttl = math.floor((lane_tat - now) / 1000) + 1000
  if ttl > 0 then redis.call('SET', KEYS[k], string.format('%.0f', lane_tat), 'PX', ttl) end
end
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat),
  'per_second', ARGV[1] == '0' and '0' or string.format('%.3f', 1000000 / interval),
  'burst', string.format('%d', interval > 0 and math.floor(tolerance / interval + 1.5) or 0),
  'per_hour', ARGV[3], 'per_day', ARGV[4],
  'used_hour', string.format('%d', windows.h.used), 'used_day', string.format('%d', windows.d.used),
  'wait_us', string.format('%d', longest), 'at_us', string.format('%.0f', now))
return result
";

/// The limits every instance shares.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SharedLimits {
    /// Sends a second, all instances together; `None`: no rate.
    pub per_second: Option<f64>,
    /// How many may go at once after a quiet spell (at least 1).
    pub burst: u32,
    /// Sends in any rolling hour; `None`: no quota.
    pub per_hour: Option<u64>,
    /// Sends in any rolling day; `None`: no quota.
    pub per_day: Option<u64>,
}

impl SharedLimits {
    /// Whether there is any limit to ask Redis about.
    pub fn any(&self) -> bool {
        self.per_second.is_some() || self.per_hour.is_some() || self.per_day.is_some()
    }
}

/// A lane a send goes through besides the shared rate: a campaign's own
/// rate, say.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// Its name, unique among lanes (`campaign:<id>`).
    pub name: String,
    /// Its rate: sends a second.
    pub per_second: f64,
}

/// What one send of a batch got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A slot: it may go after this wait.
    In(Duration),
    /// No slot now: ask again after this wait.
    Later(Duration),
}

/// The shared limits, as one instance reserves slots under them.
#[derive(Clone)]
pub struct RateLimiter {
    conn: Redis,
    limits: SharedLimits,
    /// How far ahead a slot may be reserved.
    horizon: Duration,
}

impl RateLimiter {
    /// A limiter of `limits` on the event store's connection, reserving up
    /// to `horizon` ahead.
    pub fn new(conn: Redis, limits: SharedLimits, horizon: Duration) -> Self {
        Self {
            conn,
            limits,
            horizon,
        }
    }

    /// The limits it applies.
    pub fn limits(&self) -> SharedLimits {
        self.limits
    }

    /// Slots for a batch of sends, each going through the lanes given
    /// for it, in one round trip; none asked of Redis when nothing limits
    /// them.
    pub async fn reserve(&self, sends: &[Vec<Lane>]) -> Result<Vec<Slot>> {
        if !self.limits.any() && sends.iter().all(Vec::is_empty) {
            return Ok(vec![Slot::In(Duration::ZERO); sends.len()]);
        }
        let mut keys = vec![RATE_KEY.to_string()];
        let interval = |per_second: f64| (1_000_000.0 / per_second).round().max(1.0) as u64;
        let (rate_interval, tolerance) = match self.limits.per_second {
            Some(per_second) => {
                let interval = interval(per_second);
                (interval, interval * u64::from(self.limits.burst.max(1) - 1))
            }
            None => (0, 0),
        };
        let mut per_send: Vec<u64> = Vec::new();
        for lanes in sends {
            per_send.push(lanes.len() as u64);
            for lane in lanes {
                let key = lane_key(&lane.name);
                let index = keys.iter().position(|known| *known == key).map_or_else(
                    || {
                        keys.push(key);
                        keys.len()
                    },
                    |index| index + 1,
                );
                per_send.extend([index as u64, interval(lane.per_second)]);
            }
        }
        let mut eval = redis::cmd("EVAL");
        eval.arg(RESERVE).arg(keys.len()).arg(&keys);
        eval.arg(rate_interval)
            .arg(tolerance)
            .arg(self.limits.per_hour.unwrap_or(0))
            .arg(self.limits.per_day.unwrap_or(0))
            .arg(u64::try_from(self.horizon.as_micros()).unwrap_or(u64::MAX))
            .arg(sends.len())
            .arg(&per_send);
        let answer: Vec<i64> = eval.query_async(&mut self.conn.clone()).await?;
        Ok(answer
            .into_iter()
            .map(|us| {
                if us >= 0 {
                    Slot::In(Duration::from_micros(us.unsigned_abs()))
                } else {
                    Slot::Later(Duration::from_micros((-1 - us).unsigned_abs()))
                }
            })
            .collect())
    }
}

/// The shared limits as the last reservation left them, for the dashboard:
/// what they are, how much of each quota is used and how long sends wait.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendFigures {
    /// The shared rate, emails a second (0: none).
    pub per_second: f64,
    /// Its burst.
    pub burst: u64,
    /// The hourly quota (0: none).
    pub per_hour: u64,
    /// The daily quota (0: none).
    pub per_day: u64,
    /// Emails counted against the hourly quota now.
    pub used_hour: u64,
    /// Emails counted against the daily quota now.
    pub used_day: u64,
    /// The longest wait the last reservation gave, in ms: for its slot,
    /// or, with a quota used up, until the quota frees one.
    pub wait_ms: u64,
    /// When the last reservation was made, ms since the epoch (Redis'
    /// clock).
    pub at_ms: i64,
}

/// The figures of the shared limits; `None` before any send was limited.
pub async fn figures(conn: &Redis) -> Result<Option<SendFigures>> {
    let fields: std::collections::HashMap<String, String> =
        redis::AsyncCommands::hgetall(&mut conn.clone(), RATE_KEY).await?;
    let Some(at_us) = fields.get("at_us") else {
        return Ok(None);
    };
    let number = |name: &str| {
        fields
            .get(name)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let count = |name: &str| number(name).max(0.0) as u64;
    Ok(Some(SendFigures {
        per_second: number("per_second"),
        burst: count("burst"),
        per_hour: count("per_hour"),
        per_day: count("per_day"),
        used_hour: count("used_hour"),
        used_day: count("used_day"),
        wait_ms: count("wait_us") / 1_000,
        at_ms: at_us.parse::<i64>().unwrap_or(0) / 1_000,
    }))
}
