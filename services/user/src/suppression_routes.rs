//! The suppression list's API: `GET /api/v1/suppressions` (keyset pages),
//! `POST /api/v1/suppressions` (add one), `DELETE
//! /api/v1/suppressions/{address}` (take one off: a resubscribe) and `POST
//! /api/v1/suppressions/import` (add many), and `POST /api/v1/bounces`,
//! which takes a bounce or complaint report as the raw message
//! ([`crate::bounces`]). All hold or take addresses, so all need the API
//! token whenever one is set (always in `prod`).
//!
//! A change is answered `202 Accepted` once it is durably on
//! `comms:consent`; it applies when this service reads it there, in order
//! with every other change (an unsubscribe link, a bounce), so a list read
//! at once may not show it yet.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{middleware, Json, Router};
use contracts::consent::{check_address, ConsentChanged, SuppressionReason};
use serde::{Deserialize, Serialize};
use servicekit::access::{require_token, Access};
use servicekit::http::extract::{ApiJson, ApiPath, ApiQuery};
use servicekit::http::{fetch_page, ApiError, ErrorBody};
use servicekit::now_ms;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::bounces::{self, Kind};
use crate::consent::Consent;
use crate::suppressions::{Suppression, SuppressionStore};

/// The OpenAPI document of the suppression routes.
#[derive(OpenApi)]
#[openapi(
    paths(list, add, remove, import, bounce),
    components(schemas(Suppression, SuppressionPage, NewSuppression, Import, Accepted, Rejected, SuppressionReason, BounceReport)),
    tags((name = "suppressions", description = "Who comms never emails, and why"))
)]
pub struct ApiDoc;

/// Most entries one page may hold.
const MAX_LIMIT: i64 = 1_000;
/// Most addresses one import may carry.
const MAX_IMPORT: usize = 10_000;

/// What the routes work on: changes go through `consent`; the list is read
/// on `reads`, the service's read connections, as every read route's is.
#[derive(Clone)]
struct Routes {
    consent: Consent,
    reads: SuppressionStore,
}

/// The list's route, whose reads (on `reads` only) run at the idle
/// priority ([`servicekit::service::Service::read_at_idle_priority`]).
pub const LIST_ROUTE: &str = "/api/v1/suppressions";

/// The routes, publishing through `consent` and reading the list on
/// `reads`, behind `access`.
pub fn router(consent: Consent, reads: SuppressionStore, access: Access) -> Router {
    Router::new()
        .route(LIST_ROUTE, get(list).post(add))
        .route("/api/v1/suppressions/import", post(import))
        .route("/api/v1/suppressions/{address}", delete(remove))
        .route("/api/v1/bounces", post(bounce))
        .route_layer(middleware::from_fn_with_state(access, require_token))
        .with_state(Routes { consent, reads })
}

/// `?after=<hash>&limit=<n>`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Entries with address hashes above this one (the last page's
    /// `next_after`; empty: the first page).
    #[serde(default)]
    after: String,
    /// How many at most.
    #[serde(default = "default_limit")]
    #[param(default = 100, minimum = 1, maximum = 1000)]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// One page of the list.
#[derive(Serialize, ToSchema)]
struct SuppressionPage {
    /// In address-hash order.
    suppressions: Vec<Suppression>,
    /// The `after` of the next page; `null` on the last one.
    next_after: Option<String>,
}

/// An address to suppress.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSuppression {
    /// The address.
    #[schema(
        example = "ada@example.com",
        min_length = 3,
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]+$"
    )]
    address: String,
    /// Why (default `manual`).
    #[serde(default = "manual")]
    reason: SuppressionReason,
    /// A note kept with the entry.
    #[serde(default)]
    #[schema(max_length = 1000)]
    detail: Option<String>,
}

fn manual() -> SuppressionReason {
    SuppressionReason::Manual
}

/// Many addresses to suppress for one reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Import {
    /// The addresses (at most 10,000).
    #[schema(max_items = 10000)]
    addresses: Vec<String>,
    /// Why (default `manual`).
    #[serde(default = "manual")]
    reason: SuppressionReason,
}

/// What was accepted, and what was not.
#[derive(Debug, Serialize, ToSchema)]
struct Accepted {
    /// Changes now on `comms:consent`.
    accepted: usize,
    /// The addresses refused, each with why.
    rejected: Vec<Rejected>,
}

/// An address refused by an import.
#[derive(Debug, Serialize, ToSchema)]
struct Rejected {
    /// Its place in `addresses`, from 0.
    index: usize,
    /// Why.
    error: String,
}

/// A change of `address`'s consent, asked now.
fn change(
    address: &str,
    suppress: bool,
    reason: SuppressionReason,
    detail: Option<String>,
) -> ConsentChanged {
    ConsentChanged {
        user_id: None,
        address: Some(address.to_string()),
        suppress,
        reason,
        campaign_id: None,
        detail,
        notification_id: None,
        at: now_ms(),
    }
}

/// The list, a page at a time in address-hash order.
#[utoipa::path(
    get,
    path = "/api/v1/suppressions",
    tag = "suppressions",
    security((), ("api_token" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the list", body = SuppressionPage),
        (status = 400, description = "A limit out of range", body = ErrorBody)
    )
)]
async fn list(
    State(Routes { reads, .. }): State<Routes>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<SuppressionPage>, ApiError> {
    let (suppressions, next_after) = fetch_page(
        query.limit,
        MAX_LIMIT,
        || reads.page(&query.after, query.limit),
        |entry| entry.address_hash.clone(),
    )
    .await?;
    Ok(Json(SuppressionPage {
        suppressions,
        next_after,
    }))
}

/// Suppresses one address.
#[utoipa::path(
    post,
    path = "/api/v1/suppressions",
    tag = "suppressions",
    security((), ("api_token" = [])),
    request_body = NewSuppression,
    responses(
        (status = 202, description = "The change is on comms:consent", body = Accepted),
        (status = 400, description = "Not an email address, or malformed JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape (an unknown reason or field)", body = ErrorBody)
    )
)]
async fn add(
    State(Routes { consent, .. }): State<Routes>,
    ApiJson(request): ApiJson<NewSuppression>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let address = check_address(&request.address).map_err(ApiError::bad_request)?;
    if request
        .detail
        .as_ref()
        .is_some_and(|detail| detail.chars().count() > 1000)
    {
        return Err(ApiError::bad_request("detail is longer than 1000 characters"));
    }
    consent
        .request(&[change(address, true, request.reason, request.detail)])
        .await?;
    Ok(accepted(1, Vec::new()))
}

/// Takes one address off the list (a resubscribe).
#[utoipa::path(
    delete,
    path = "/api/v1/suppressions/{address}",
    tag = "suppressions",
    security((), ("api_token" = [])),
    params(("address" = String, Path, description = "The address", min_length = 3, max_length = 254, pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]+$")),
    responses(
        (status = 202, description = "The change is on comms:consent", body = Accepted),
        (status = 400, description = "Not an email address", body = ErrorBody)
    )
)]
async fn remove(
    State(Routes { consent, .. }): State<Routes>,
    ApiPath(address): ApiPath<String>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let address = check_address(&address).map_err(ApiError::bad_request)?;
    consent
        .request(&[change(address, false, SuppressionReason::Manual, None)])
        .await?;
    Ok(accepted(1, Vec::new()))
}

/// Suppresses many addresses at once: each valid one is accepted, each
/// other listed with why.
#[utoipa::path(
    post,
    path = "/api/v1/suppressions/import",
    tag = "suppressions",
    security((), ("api_token" = [])),
    request_body = Import,
    responses(
        (status = 202, description = "The valid addresses' changes are on comms:consent", body = Accepted),
        (status = 400, description = "More than 10,000 addresses, or malformed JSON", body = ErrorBody)
    )
)]
async fn import(
    State(Routes { consent, .. }): State<Routes>,
    ApiJson(request): ApiJson<Import>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    if request.addresses.len() > MAX_IMPORT {
        return Err(ApiError::bad_request(format!(
            "an import holds at most {MAX_IMPORT} addresses, not {}",
            request.addresses.len()
        )));
    }
    let mut changes = Vec::new();
    let mut rejected = Vec::new();
    for (index, address) in request.addresses.iter().enumerate() {
        match check_address(address) {
            Ok(address) => changes.push(change(address, true, request.reason, None)),
            Err(error) => rejected.push(Rejected { index, error }),
        }
    }
    if !changes.is_empty() {
        consent.request(&changes).await?;
    }
    Ok(accepted(changes.len(), rejected))
}

/// What a bounce or complaint report said, and what came of it.
#[derive(Debug, Serialize, ToSchema)]
struct BounceReport {
    /// `delivery-status` (a DSN) or `feedback-report` (an ARF complaint).
    report_type: String,
    /// Addresses now being suppressed (`hard_bounce` or `complaint`).
    suppressed: Vec<String>,
    /// Addresses that bounced softly: counted, not suppressed.
    soft_bounces: Vec<String>,
    /// Addresses the report names that are no user's: nothing changed.
    unmatched: Vec<String>,
}

/// Takes one bounce (RFC 3464 delivery status notification) or complaint
/// (RFC 5965 ARF report), as the raw message a bounce mailbox received:
/// a hard bounce or a complaint of a known user suppresses their address.
#[utoipa::path(
    post,
    path = "/api/v1/bounces",
    tag = "suppressions",
    security((), ("api_token" = [])),
    request_body(
        description = "The report, as received (any content type is read as the raw message)",
        content(
            (String = "message/rfc822"),
            (String = "text/plain")
        )
    ),
    responses(
        (status = 202, description = "Read; its suppressions are on comms:consent", body = BounceReport),
        (status = 400, description = "Not a report, or a report lacking what it needs (named)", body = ErrorBody)
    )
)]
async fn bounce(
    State(Routes { consent, .. }): State<Routes>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<BounceReport>), ApiError> {
    let parsed = bounces::parse(&body).map_err(ApiError::bad_request)?;
    let mut report = BounceReport {
        report_type: parsed.report_type.as_str().into(),
        suppressed: Vec::new(),
        soft_bounces: Vec::new(),
        unmatched: Vec::new(),
    };
    let mut changes = Vec::new();
    for finding in parsed.findings {
        if consent.users().by_email(&finding.address).await?.is_none() {
            report.unmatched.push(finding.address);
            continue;
        }
        let reason = match finding.kind {
            Kind::SoftBounce => {
                metrics::counter!("comms_soft_bounces_total").increment(1);
                report.soft_bounces.push(finding.address);
                continue;
            }
            Kind::HardBounce => SuppressionReason::HardBounce,
            Kind::Complaint => SuppressionReason::Complaint,
        };
        changes.push(ConsentChanged {
            notification_id: parsed.notification_id.clone(),
            ..change(&finding.address, true, reason, Some(finding.detail))
        });
        report.suppressed.push(finding.address);
    }
    if !changes.is_empty() {
        consent.request(&changes).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(report)))
}

fn accepted(accepted: usize, rejected: Vec<Rejected>) -> (StatusCode, Json<Accepted>) {
    (StatusCode::ACCEPTED, Json(Accepted { accepted, rejected }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document states the shape the handlers check, in both places
    /// an address is taken.
    #[test]
    fn the_documented_address_pattern_is_the_one_checked() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let body = &document["components"]["schemas"]["NewSuppression"]["properties"]["address"]["pattern"];
        assert_eq!(body, contracts::consent::ADDRESS_PATTERN);
        let path = &document["paths"]["/api/v1/suppressions/{address}"]["delete"]["parameters"][0]["schema"]
            ["pattern"];
        assert_eq!(path, contracts::consent::ADDRESS_PATTERN);
    }
}
