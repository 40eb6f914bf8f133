//! The users API: `GET /api/v1/users` (keyset pages) and
//! `GET /api/v1/users/{id}`. Both return personal data, so both need the
//! API token whenever one is set (always in `prod`).

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{middleware, Json, Router};
use serde::{Deserialize, Serialize};
use servicekit::access::{require_token, Access};
use servicekit::http::ApiError;

use crate::store::{User, UserStore};

/// Most users one page may hold.
const MAX_LIMIT: i64 = 1_000;

/// The routes, on `store`, behind `access`.
pub fn router(store: UserStore, access: Access) -> Router {
    Router::new()
        .route("/api/v1/users", get(list))
        .route("/api/v1/users/{id}", get(one))
        .route_layer(middleware::from_fn_with_state(access, require_token))
        .with_state(store)
}

/// `?after=<id>&limit=<n>`: users with ids above `after`.
#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// One page, and the `after` that gives the next one.
#[derive(Serialize)]
struct Page {
    users: Vec<User>,
    next_after: Option<i64>,
}

async fn list(
    State(store): State<UserStore>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    if !(1..=MAX_LIMIT).contains(&query.limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let users = store.page(query.after, query.limit).await?;
    let next_after = (users.len() as i64 == query.limit)
        .then(|| users.last().map(|user| user.id))
        .flatten();
    Ok(Json(Page { users, next_after }))
}

async fn one(State(store): State<UserStore>, Path(id): Path<String>) -> Result<Json<User>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("user id must be an integer, not `{id}`")))?;
    store
        .get(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no user with id {id}")))
}
