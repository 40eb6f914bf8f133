//! The users API: `GET /api/v1/users` (keyset pages), `GET
//! /api/v1/users/count?filter=…` (the size of an audience), `POST
//! /api/v1/users` (one more), `GET` and `PATCH /api/v1/users/{id}` and
//! `DELETE /api/v1/users/{id}` (the user's erasure, [`crate::erase`]; the
//! writes are [`crate::user_writes`]'s). All touch personal data, so all need the API token
//! whenever one is set (always in `prod`). All are described in [`ApiDoc`],
//! the OpenAPI document served at `/api-docs/openapi.json`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{middleware, Json, Router};
use serde::{Deserialize, Serialize};
use servicekit::access::{require_token, Access};
use servicekit::http::extract::{ApiJson, ApiPath, ApiQuery};
use servicekit::http::{fetch_page, found, ApiError, ErrorBody};
use utoipa::{IntoParams, OpenApi, ToSchema};

use contracts::audience::Filter;

use crate::erase::{Eraser, Erasure};
use crate::store::{User, UserStore};
use crate::user_writes::{checked_email, checked_name, NewUser, UserChange, UserWrites, Written};

/// The OpenAPI document of user-service's own routes (the shared ones are
/// added by [`servicekit::openapi::document`]).
#[derive(OpenApi)]
#[openapi(
    paths(list, count, create, crate::import::import, one, update, erase),
    components(schemas(
        User,
        crate::profile::Profile,
        Count,
        Page,
        Erasure,
        NewUser,
        UserChange,
        crate::import::Imported,
        crate::import::Rejection,
        crate::user_writes::Upserted
    )),
    tags((name = "users", description = "The users, a campaign's audience"))
)]
pub struct ApiDoc;

/// Most users one page may hold.
const MAX_LIMIT: i64 = 1_000;

/// What the routes work on.
#[derive(Clone)]
struct Users {
    store: UserStore,
    writes: UserWrites,
    eraser: Eraser,
}

/// The reads run at the idle priority
/// ([`servicekit::service::Service::read_at_idle_priority`]): their
/// handlers read only `store`, on the service's read connections.
pub const READ_AT_IDLE_PRIORITY: &[&str] = &["/api/v1/users", "/api/v1/users/count", "/api/v1/users/{id}"];

/// The routes, reading on `store`, writing through `writes` (users erased
/// by `eraser`), behind `access`.
pub fn router(store: UserStore, writes: UserWrites, eraser: Eraser, access: Access) -> Router {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/count", get(count))
        .route("/api/v1/users/{id}", get(one).patch(update).delete(erase))
        .route_layer(middleware::from_fn_with_state(access, require_token))
        .with_state(Users {
            store,
            writes,
            eraser,
        })
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
        (status = 400, description = "A limit out of range, or a value that is not a number", body = ErrorBody)
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

/// `?filter=<filter>`: the users a filter selects.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CountQuery {
    /// An audience filter, e.g. `country = 'DE' and plan in ('pro', 'team')
    /// and signed_up_at > '2025-01-01' and 'beta' in tags` (the grammar is
    /// in docs/campaigns.md); none or empty: every user.
    #[param(max_length = 2000)]
    filter: Option<String>,
}

/// How many users a filter selects.
#[derive(Serialize, ToSchema)]
struct Count {
    /// The number of users.
    count: i64,
}

/// How many users match an audience filter: the size of a campaign's
/// audience before it is sent.
#[utoipa::path(
    get,
    path = "/api/v1/users/count",
    tag = "users",
    security((), ("api_token" = [])),
    params(CountQuery),
    responses(
        (status = 200, description = "How many users match", body = Count),
        (status = 400, description = "A filter that is not one: what is wrong and at which character, e.g. `unknown attribute 'contry' at 0`", body = ErrorBody)
    )
)]
async fn count(
    State(Users { store, .. }): State<Users>,
    ApiQuery(query): ApiQuery<CountQuery>,
) -> Result<Json<Count>, ApiError> {
    let filter = match query.filter.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            Some(Filter::parse(text).map_err(|error| ApiError::bad_request(format!("filter: {error}")))?)
        }
    };
    let count = store.count_matching(filter.as_ref(), i64::MAX).await?;
    Ok(Json(Count { count }))
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

/// Adds a user, with the id after the highest.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    security((), ("api_token" = [])),
    request_body = NewUser,
    responses(
        (status = 201, description = "The user added", body = User),
        (status = 400, description = "An address, name or attribute that is not one (the field named), or malformed JSON", body = ErrorBody),
        (status = 409, description = "The address is another user's already (named); nothing changed", body = ErrorBody)
    )
)]
async fn create(
    State(Users { writes, .. }): State<Users>,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let name = checked_name(&new.name).map_err(ApiError::bad_request)?;
    let email = checked_email(&new.email).map_err(ApiError::bad_request)?;
    let profile = new.profile().map_err(ApiError::bad_request)?;
    let user = written(writes.create(&name, &email, &profile).await?, &email)?;
    tracing::info!(user_id = user.id, "user added");
    Ok((StatusCode::CREATED, Json(user)))
}

/// Changes a user's name, address, profile (country, locale, plan,
/// sign-up time, tags, attributes), or any of them.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    tag = "users",
    security((), ("api_token" = [])),
    params(("id" = i64, Path, description = "The user's id")),
    request_body = UserChange,
    responses(
        (status = 200, description = "The user as it is now", body = User),
        (status = 400, description = "An id that is not an integer, an address, name or attribute that is not one, or no change asked (named)", body = ErrorBody),
        (status = 404, description = "No user with this id", body = ErrorBody),
        (status = 409, description = "The address is another user's already (named); nothing changed", body = ErrorBody)
    )
)]
async fn update(
    State(Users { writes, .. }): State<Users>,
    ApiPath(id): ApiPath<String>,
    ApiJson(change): ApiJson<UserChange>,
) -> Result<Json<User>, ApiError> {
    let id = user_id(&id)?;
    let name = change
        .name
        .as_deref()
        .map(checked_name)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let email = change
        .email
        .as_deref()
        .map(checked_email)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let profile = change.profile().map_err(ApiError::bad_request)?;
    if name.is_none() && email.is_none() && profile.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: give `name`, `email` or an attribute (`country`, `locale`, `plan`, `signed_up_at`, `tags`, `attributes`)",
        ));
    }
    let written = writes
        .update(id, name.as_deref(), email.as_deref(), &profile)
        .await?;
    if matches!(written, Written::NotFound) {
        return Err(ApiError::not_found(format!("no user with id {id}")));
    }
    let user = self::written(written, email.as_deref().unwrap_or_default())?;
    tracing::info!(user_id = user.id, "user changed");
    Ok(Json(user))
}

/// The user a write made, or the 409 of an address taken.
fn written(written: Written, email: &str) -> Result<User, ApiError> {
    match written {
        Written::Done(user) => Ok(user),
        Written::AddressTaken(holder) => Err(ApiError::conflict(format!(
            "`{}` is the address of user {holder} already",
            email.escape_default()
        ))),
        Written::NotFound => Err(ApiError::not_found("no such user")),
    }
}

/// A user id from the path.
fn user_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("user id must be an integer, not `{id}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document names the count route, and a user's profile fields
    /// (flattened into the user, as served).
    #[test]
    fn the_document_has_the_count_and_the_profile() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let count = &document["paths"]["/api/v1/users/count"]["get"];
        assert_eq!(count["parameters"][0]["name"], "filter", "{count}");
        assert!(count["responses"]["400"].is_object(), "{count}");
        let text = document["components"]["schemas"].to_string();
        for field in ["country", "locale", "plan", "signed_up_at", "tags", "attributes"] {
            assert!(text.contains(&format!("\"{field}\"")), "{field}: {text}");
        }
        let change = &document["components"]["schemas"]["UserChange"]["properties"];
        assert!(
            change["tags"].is_object() && change["attributes"].is_object(),
            "{change}"
        );
    }
}
