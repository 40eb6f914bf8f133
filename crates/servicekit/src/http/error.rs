//! The one shape of every error comms answers over HTTP: a status and
//! `{"error": "..."}`, whatever went wrong (a bad value, a body that is not
//! JSON, a route that does not exist, a failure inside).

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error answered as JSON: `{"error": "..."}` ([`ErrorBody`]) with its
/// status.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What is wrong, for the caller.
    pub message: String,
}

impl ApiError {
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 409 Conflict: the request is well formed but matches more than one
    /// thing, or clashes with the state it would change.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    /// A body that is not the expected JSON (400, 415, 422) or too large
    /// (413), with axum's description of what is wrong.
    fn from(rejection: JsonRejection) -> Self {
        Self {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<FormRejection> for ApiError {
    /// A body that is not a form (415) or not the expected one (400, 422),
    /// or too large (413), with axum's description of what is wrong.
    fn from(rejection: FormRejection) -> Self {
        Self {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<MultipartRejection> for ApiError {
    /// A `multipart/form-data` body without its boundary: 400.
    fn from(rejection: MultipartRejection) -> Self {
        Self {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<MultipartError> for ApiError {
    /// A `multipart/form-data` body that does not parse (400) or is too
    /// large (413), with multer's description of what is wrong.
    fn from(error: MultipartError) -> Self {
        Self {
            status: error.status(),
            message: error.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    /// A query string that does not parse: 400 with axum's description.
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    /// A path parameter that does not parse: 400 with axum's description.
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        anyhow::Error::from(error).into()
    }
}

/// The body of every error answer, whatever the status: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What is wrong, for the caller.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.message })).into_response()
    }
}

/// The answer of a lookup by id: the item, or a 404 saying that there is
/// no `what` with this id.
pub fn found<T>(item: Option<T>, what: &str, id: &dyn std::fmt::Display) -> Result<Json<T>, ApiError> {
    item.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no {what} with id {id}")))
}
