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

/// Deserializes a whole number of a JSON body written either way: `17` or
/// `17.0`, which JSON Schema (and so an OpenAPI `integer`) calls the same
/// integer. A fraction, or a number past ±2^53 where a float is no longer
/// exact, is refused (`#[serde(deserialize_with = "whole_number")]`).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let number = <f64 as serde::Deserialize>::deserialize(deserializer)?;
    if number.fract() == 0.0 && number.abs() <= EXACT {
        // Whole and within ±2^53: the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        Ok(number as i64)
    } else {
        Err(D::Error::custom(format!("{number} is not a whole number")))
    }
}

#[cfg(test)]
mod tests {
    use super::whole_number;

    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(deserialize_with = "whole_number")]
        n: i64,
    }

    #[test]
    fn a_whole_number_reads_written_either_way_and_a_fraction_is_refused() {
        let read = |json: &str| serde_json::from_str::<Body>(json).map(|body| body.n);
        assert_eq!(read(r#"{"n": 17}"#).unwrap(), 17);
        assert_eq!(read(r#"{"n": 17.0}"#).unwrap(), 17);
        assert_eq!(read(r#"{"n": -3}"#).unwrap(), -3);
        assert!(read(r#"{"n": 17.5}"#)
            .unwrap_err()
            .to_string()
            .contains("not a whole number"));
        assert!(read(r#"{"n": 1e300}"#).is_err());
        assert!(read(r#"{"n": "17"}"#).is_err());
    }
}
