//! What a creation may add to the pipeline: a bounded number of campaigns
//! in progress, and nothing while Redis is at its memory ceiling.
//!
//! Each campaign in progress holds its announcement (with its templates)
//! in `comms:campaigns` and an expansion in user-service, and all of them
//! share one window of the streams behind the expansions
//! (docs/architecture.md, *Flow control*). The count is bounded
//! (`CAMPAIGN_MAX_IN_PROGRESS`) so that what they hold in Redis has a
//! bound too; past it a creation is refused with 429, and accepted again
//! once a campaign completes. The size of each campaign is bounded where
//! it is parsed (`crates/templates`: sources of at most 500 and 100,000
//! characters; a request body of at most 256 KiB).
//!
//! A Redis past its `maxmemory` (with `noeviction`, as comms starts it)
//! refuses every write with `OOM`. A creation is then refused with 503
//! before anything is stored, rather than stored and left to wait; the
//! workers retry their own refused writes (nothing is lost).

use eventstore::Redis;
use servicekit::http::ApiError;

/// Whether Redis has room for writes: `false` when it has a `maxmemory`
/// and uses more (`INFO memory`), so that a write would be refused. A
/// reply that does not say (a cluster answers per node) counts as room:
/// the write itself is then the check, and a refused announcement is
/// made again later (`CAMPAIGN_REANNOUNCE_MS`).
pub async fn redis_has_room(redis: &Redis) -> bool {
    let info: String = match redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut redis.clone())
        .await
    {
        Ok(info) => info,
        Err(error) => {
            tracing::debug!(%error, "INFO memory gave no single figure; the write will tell");
            return true;
        }
    };
    let figure = |name: &str| {
        info.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(':')?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    match (figure("used_memory"), figure("maxmemory")) {
        (Some(used), Some(max)) if max > 0 => used < max,
        _ => true,
    }
}

/// The 503 of a creation while Redis is full.
pub fn redis_full() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
        message: "Redis is at its memory ceiling (maxmemory): no campaign can be created until the \
                  campaigns in progress drain; retry later"
            .into(),
    }
}

/// The 429 of a creation past `max_in_progress` campaigns in progress.
pub fn too_many(max_in_progress: u64) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::TOO_MANY_REQUESTS,
        message: format!(
            "quota reached: {max_in_progress} campaigns in progress (CAMPAIGN_MAX_IN_PROGRESS), the most at once; \
             retry once one has completed"
        ),
    }
}
