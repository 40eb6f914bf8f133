//! email-service's own route, `GET /api/v1/dkim`: the DNS TXT record that
//! publishes the public key of its DKIM signatures, so that whoever runs
//! the domain's DNS can copy it from the running service rather than
//! derive it from the private key. Described in [`ApiDoc`], the OpenAPI
//! document served at `/api-docs/openapi.json`. The record is public by
//! nature: no token is asked.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use servicekit::http::{ApiError, ErrorBody};
use utoipa::OpenApi;

use crate::dkim::DkimRecord;

/// The OpenAPI document of email-service's own routes (the shared ones
/// are added by [`servicekit::openapi::document`]).
#[derive(OpenApi)]
#[openapi(
    paths(dkim),
    components(schemas(DkimRecord)),
    tags((name = "dkim", description = "The DNS record of the key that signs every email"))
)]
pub struct ApiDoc;

/// The routes; `record` is `None` while signing is off.
pub fn router(record: Option<DkimRecord>) -> Router {
    Router::new()
        .route("/api/v1/dkim", get(dkim))
        .with_state(Arc::new(record))
}

/// What to publish in DNS for receivers to check the signatures: a TXT
/// record named `name` whose value is `txt`.
#[utoipa::path(
    get,
    path = "/api/v1/dkim",
    tag = "dkim",
    responses(
        (status = 200, description = "The record of the signing key", body = DkimRecord),
        (status = 404, description = "DKIM signing is off: no key is set", body = ErrorBody)
    )
)]
async fn dkim(State(record): State<Arc<Option<DkimRecord>>>) -> Result<Json<DkimRecord>, ApiError> {
    record.as_ref().clone().map(Json).ok_or_else(|| {
        ApiError::not_found(
            "DKIM signing is off: set EMAIL_DKIM_PRIVATE_KEY and EMAIL_DKIM_SELECTOR (Vault: \
             dkim_private_key, dkim_selector), and EMAIL_DKIM_DOMAIN (dkim_domain) unless \
             MAIL_FROM's domain signs",
        )
    })
}
