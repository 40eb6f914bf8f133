//! `POST /api/v1/templates`, `GET /api/v1/templates/{name}` and
//! `GET /api/v1/templates/{name}/versions/{version}`: message
//! templates stored by name, each change a new version, for messages to
//! name instead of carrying their templates
//! (`{"to", "template": "login-code", "variables": {...}}`).
//!
//! A template declares its variables; it is checked when stored (its
//! parts compile, stay within their bounds and use only `name`, `email`
//! and what it declares), and a message that names it must give exactly
//! the variables it declares.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use servicekit::http::extract::{ApiJson, ApiPath};
use servicekit::http::{found, ApiError, ErrorBody};
use templates::message::MessageTemplates;
use utoipa::ToSchema;

use crate::domain::{CheckedTemplates, TemplatesRequest};
use crate::state::AppState;
use crate::store::StoredTemplate;

/// The longest template name.
const MAX_NAME: usize = 100;

/// The JSON body of `POST /api/v1/templates`.
#[derive(Deserialize, ToSchema)]
pub(super) struct NewTemplate {
    /// 1 to 100 lower-case letters, digits, `.`, `_` and `-`.
    #[schema(
        example = "login-code",
        min_length = 1,
        max_length = 100,
        pattern = "^[a-z0-9._-]{1,100}$"
    )]
    name: String,
    /// The subject, body and HTML templates, as a message's.
    #[serde(flatten)]
    templates: TemplatesRequest,
    /// The variables the templates may use beside `name` and `email`
    /// (letters, digits and `_`; up to 50): a message naming the template
    /// gives exactly these.
    #[serde(default)]
    #[schema(example = json!(["code"]))]
    variables: Vec<String>,
}

/// Stores a message template, as a new version if the name has one.
#[utoipa::path(
    post,
    path = "/api/v1/templates",
    tag = "messages",
    security((), ("api_token" = [])),
    request_body = NewTemplate,
    responses(
        (status = 201, description = "The version stored", body = StoredTemplate),
        (status = 400, description = "Malformed JSON, an invalid name, template or variable (named)", body = ErrorBody),
        (status = 409, description = "Another version of this name was stored at the same moment: try again", body = ErrorBody)
    )
)]
pub(super) async fn add(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<NewTemplate>,
) -> Result<(StatusCode, Json<StoredTemplate>), ApiError> {
    let name = check_name(&request.name).map_err(ApiError::bad_request)?;
    let variables = request.variables;
    let (checked, variables) = tokio::task::spawn_blocking(move || check(request.templates, variables))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(ApiError::bad_request)?;
    match state
        .tracker
        .store()
        .add_template(&name, &checked, &variables)
        .await?
    {
        Some(stored) => Ok((StatusCode::CREATED, Json(stored))),
        None => Err(ApiError::conflict(format!(
            "another version of template {name} was stored at the same moment; try again"
        ))),
    }
}

/// A stored message template's latest version.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{name}",
    tag = "messages",
    params(("name" = String, Path, description = "The template's name")),
    responses(
        (status = 200, description = "Its latest version", body = StoredTemplate),
        (status = 404, description = "No template of this name", body = ErrorBody)
    )
)]
pub(super) async fn latest(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<StoredTemplate>, ApiError> {
    found(state.reads.template(&name, None).await?, "template", &name)
}

/// One version of a stored message template.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{name}/versions/{version}",
    tag = "messages",
    params(
        ("name" = String, Path, description = "The template's name"),
        ("version" = i64, Path, minimum = 1, description = "The version, 1 for the first")
    ),
    responses(
        (status = 200, description = "The version", body = StoredTemplate),
        (status = 400, description = "A version that is not a whole number of 1 or more", body = ErrorBody),
        (status = 404, description = "No template of this name and version", body = ErrorBody)
    )
)]
pub(super) async fn version(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, i64)>,
) -> Result<Json<StoredTemplate>, ApiError> {
    if version < 1 {
        return Err(ApiError::bad_request("version must be 1 or more"));
    }
    let template = state.reads.template(&name, Some(version)).await?;
    found(template, "template version", &format!("{name}/{version}"))
}

/// `name` if it is 1 to [`MAX_NAME`] lower-case letters, digits, `.`, `_`
/// and `-`; what is wrong otherwise.
fn check_name(name: &str) -> Result<String, String> {
    let usable = (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte));
    if usable {
        Ok(name.to_string())
    } else {
        Err(format!(
            "name must be 1 to {MAX_NAME} lower-case letters, digits, '.', '_' and '-', not {name:?}"
        ))
    }
}

/// `templates` and `variables` if the templates are within their bounds
/// and use only `name`, `email` and `variables` (each a usable name,
/// sorted, once); what is wrong otherwise.
fn check(
    templates: TemplatesRequest,
    variables: Vec<String>,
) -> Result<(CheckedTemplates, Vec<String>), String> {
    let declared: BTreeMap<String, String> = variables
        .iter()
        .map(|variable| (variable.clone(), String::new()))
        .collect();
    if declared.len() != variables.len() {
        return Err("variables: each name once".into());
    }
    templates::message::check_variables(&declared)?;
    let checked = CheckedTemplates::within_bounds(templates)?;
    MessageTemplates::check(&checked.sources(), &declared).map_err(|error| error.to_string())?;
    Ok((checked, declared.into_keys().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_plain() {
        assert_eq!(check_name("login-code.v2_b").unwrap(), "login-code.v2_b");
        for bad in ["", "Login", "a b", "é", &"x".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
