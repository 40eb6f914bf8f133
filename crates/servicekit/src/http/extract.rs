//! Extractors that answer a request they cannot read in the project's
//! error shape ([`ApiError`]: a status and `{"error": "..."}`), so a handler
//! takes `ApiJson<T>`, `ApiForm<T>`, `ApiQuery<T>` or `ApiPath<T>` and never unwraps a
//! rejection by hand. They are axum's own extractors with another
//! rejection (axum's `customize-extractor-error` example); answers stay
//! `axum::Json`.

use axum::extract::{FromRequest, FromRequestParts};

use super::ApiError;

/// A JSON body (`Content-Type: application/json`); one that is not JSON,
/// not of the expected shape or too large is a 400, 415, 422 or 413 with
/// axum's description of what is wrong.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// A form body (`Content-Type: application/x-www-form-urlencoded`, what
/// an HTML form and a mail provider's one-click unsubscribe send); another
/// content type is a 415, a body that does not parse a 422, both with
/// axum's description.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Form), rejection(ApiError))]
pub struct ApiForm<T>(pub T);

/// The query string; one that does not parse is a 400 naming the field.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The path's parameters; one that does not parse is a 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);
