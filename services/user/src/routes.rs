//! The users API: `GET /api/v1/users` (keyset pages), `GET
//! /api/v1/users/{id}` and `DELETE /api/v1/users/{id}` (the user's erasure,
//! [`crate::erase`]). All touch personal data, so all need the API token
//! whenever one is set (always in `prod`). All are described in [`ApiDoc`],
//! the OpenAPI document served at `/api-docs/openapi.json`.

use axum::extract::State;
use axum::routing::get;
use axum::{middleware, Json, Router};
use serde::{Deserialize, Serialize};
use servicekit::access::{require_token, Access};
use servicekit::http::extract::{ApiPath, ApiQuery};
use servicekit::http::{fetch_page, found, ApiError, ErrorBody};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::erase::{Eraser, Erasure};
use crate::store::{User, UserStore};

/// The OpenAPI document of user-service's own routes (the shared ones are
/// added by [`servicekit::openapi::document`]).
#[derive(OpenApi)]
#[openapi(
    paths(list, one, erase),
    components(schemas(User, Page, Erasure)),
    tags((name = "users", description = "The users, a campaign's audience"))
)]
pub struct ApiDoc;

/// Most users one page may hold.
const MAX_LIMIT: i64 = 1_000;

/// What the routes work on.
#[derive(Clone)]
struct Users {
    store: UserStore,
    eraser: Eraser,
}

/// The routes, on `store` (users erased by `eraser`), behind `access`.
pub fn router(store: UserStore, eraser: Eraser, access: Access) -> Router {
    Router::new()
        .route("/api/v1/users", get(list))
        .route("/api/v1/users/{id}", get(one).delete(erase))
        .route_layer(middleware::from_fn_with_state(access, require_token))
        .with_state(Users { store, eraser })
}

/// `?after=<id>&limit=<n>`: users with ids above `after`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Users with ids above this one (the last page's `next_after`; 0: the
    /// first page).
    #[serde(default)]
    #[param(default = 0)]
    after: i64,
    /// How many at most.
    #[serde(default = "default_limit")]
    #[param(default = 100, minimum = 1, maximum = 1000)]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// One page, and the `after` that gives the next one.
#[derive(Serialize, ToSchema)]
struct Page {
    /// In id order.
    users: Vec<User>,
    /// The `after` of the next page; `null` on the last one.
    next_after: Option<i64>,
}

/// The users, a page at a time in id order.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    security((), ("api_token" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page of users", body = Page),
        (status = 400, description = "A limit out of range, or a value that is not a number", body = ErrorBody),
    )
)]
async fn list(
    State(Users { store, .. }): State<Users>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page>, ApiError> {
    let (users, next_after) = fetch_page(
        query.limit,
        MAX_LIMIT,
        || store.page(query.after, query.limit),
        |user| user.id,
    )
    .await?;
    Ok(Json(Page { users, next_after }))
}

/// One user.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    security((), ("api_token" = [])),
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "An id that is not an integer", body = ErrorBody),
        (status = 404, description = "No user with this id", body = ErrorBody)
    )
)]
async fn one(
    State(Users { store, .. }): State<Users>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<User>, ApiError> {
    let id = user_id(&id)?;
    found(store.get(id).await?, "user", &id)
}

/// Erases one user: their personal data leaves every service and stream
/// of comms; the campaigns' counts stay as they are; their address, if
/// suppressed, stays suppressed by its hash alone.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    tag = "users",
    security((), ("api_token" = [])),
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Erased here; the other services erase their records as they read `user.erased`", body = Erasure),
        (status = 400, description = "An id that is not an integer", body = ErrorBody),
        (status = 404, description = "No user with this id (or erased already)", body = ErrorBody)
    )
)]
async fn erase(
    State(Users { eraser, .. }): State<Users>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Erasure>, ApiError> {
    let id = user_id(&id)?;
    found(eraser.erase(id).await?, "user", &id)
}

/// A user id from the path.
fn user_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("user id must be an integer, not `{id}`")))
}
