//! The paging rules every list of comms follows: `?after=&limit=` in,
//! `{<items>, "next_after": <key or null>}` out (pass `next_after` as
//! `after` for the next page).

use std::future::Future;

use super::ApiError;

/// Checks a page's `?limit=`: 1 to `max`, or a 400 that says so. Every
/// list of comms is paged the same way (`?after=&limit=` →
/// `{<items>, next_after}`); this and [`next_after`] are its two rules.
pub fn page_limit(limit: i64, max: i64) -> Result<(), ApiError> {
    if (1..=max).contains(&limit) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "limit must be between 1 and {max}"
        )))
    }
}

/// The `after` of the page that follows `page`, a page asked with `limit`
/// whose items are keyed by `key`: `None` once a page is not full.
pub fn next_after<T, K>(page: &[T], limit: i64, key: impl Fn(&T) -> K) -> Option<K> {
    (page.len() as i64 >= limit)
        .then(|| page.last().map(key))
        .flatten()
}

/// One page by the rules: `limit` checked against `max` (a 400 past it),
/// the items from `fetch`, and the `after` of the next page keyed by
/// `key`. Every paged list handler is this call and its response type.
pub async fn fetch_page<T, K, E, Fut>(
    limit: i64,
    max: i64,
    fetch: impl FnOnce() -> Fut,
    key: impl Fn(&T) -> K,
) -> Result<(Vec<T>, Option<K>), ApiError>
where
    Fut: Future<Output = Result<Vec<T>, E>>,
    E: Into<ApiError>,
{
    page_limit(limit, max)?;
    let items = fetch().await.map_err(Into::into)?;
    let next = next_after(&items, limit, key);
    Ok((items, next))
}
