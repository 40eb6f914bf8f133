//! `POST /api/v1/campaigns/preview`: templates rendered for one recipient
//! with the checks and bounds of a new campaign, creating nothing.

use axum::Json;
use serde::{Deserialize, Serialize};
use servicekit::http::extract::ApiJson;
use servicekit::http::{ApiError, ErrorBody};
use utoipa::ToSchema;

use crate::domain::{CheckedTemplates, TemplatesRequest};

/// The JSON body of `POST /api/v1/campaigns/preview`: templates, and the
/// recipient to render them for (the sample recipient by default).
#[derive(Deserialize, ToSchema)]
pub(super) struct PreviewRequest {
    /// The subject, body and HTML templates, as a campaign's.
    #[serde(flatten)]
    templates: TemplatesRequest,
    /// The recipient's name (the sample recipient's by default).
    #[serde(default = "sample_name")]
    #[schema(default = "Ada Lovelace")]
    name: String,
    /// The recipient's address (the sample recipient's by default).
    #[serde(default = "sample_email")]
    #[schema(default = "ada.lovelace@example.com")]
    email: String,
}

/// An email rendered for one recipient.
#[derive(Serialize, ToSchema)]
pub(super) struct Preview {
    /// The subject.
    subject: String,
    /// The text body (derived from the HTML when no text template was
    /// given).
    body: String,
    /// The HTML body, HTML-escaped values and unsubscribe link included;
    /// `null` without an HTML template.
    html: Option<String>,
}

fn sample_name() -> String {
    templates::SAMPLE_NAME.into()
}

fn sample_email() -> String {
    templates::SAMPLE_EMAIL.into()
}

/// Renders templates for one recipient with the checks and bounds of a
/// new campaign, so a form can show the email, or what is wrong with it,
/// before anything is created.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/preview",
    tag = "campaigns",
    security((), ("api_token" = [])),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The email as that recipient would get it", body = Preview),
        (status = 400, description = "Malformed JSON, or an invalid template (named)", body = ErrorBody)
    )
)]
pub(super) async fn preview(ApiJson(request): ApiJson<PreviewRequest>) -> Result<Json<Preview>, ApiError> {
    let rendered = tokio::task::spawn_blocking(move || {
        let checked = CheckedTemplates::parse(request.templates)?;
        templates::Templates::compile_sources(&templates::Sources {
            subject: &checked.subject,
            body: &checked.body,
            html: checked.html.as_deref(),
        })
        .and_then(|templates| {
            templates.render(&templates::Recipient {
                name: &request.name,
                email: &request.email,
                unsubscribe_url: templates::SAMPLE_UNSUBSCRIBE_URL,
            })
        })
        .map_err(|error| error.to_string())
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(ApiError::bad_request)?;
    Ok(Json(Preview {
        subject: rendered.subject,
        body: rendered.body,
        html: rendered.html,
    }))
}
