//! Extractors that answer a request they cannot read in the project's
//! error shape ([`ApiError`]: a status and `{"error": "..."}`), so a handler
//! takes `ApiJson<T>`, `ApiForm<T>`, [`FormFields`], `ApiQuery<T>` or `ApiPath<T>` and never unwraps a
//! rejection by hand. They are axum's own extractors with another
//! rejection (axum's `customize-extractor-error` example); answers stay
//! `axum::Json`.

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::header::CONTENT_TYPE;

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

/// The fields of a form body in either encoding a form is posted in:
/// `application/x-www-form-urlencoded` (an HTML form's default) or
/// `multipart/form-data` (RFC 8058's own example of a one-click
/// unsubscribe, and what some mail providers send), in order. Another
/// content type is a 415, a body that does not parse a 400 (413 when too
/// large), in the project's error shape.
#[derive(Debug)]
pub struct FormFields(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for FormFields {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let multipart = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        if !multipart {
            let ApiForm(fields) = ApiForm::from_request(request, state).await?;
            return Ok(Self(fields));
        }
        let mut body = Multipart::from_request(request, state).await?;
        let mut fields = Vec::new();
        while let Some(field) = body.next_field().await? {
            let name = field.name().unwrap_or_default().to_string();
            fields.push((name, field.text().await?));
        }
        Ok(Self(fields))
    }
}
