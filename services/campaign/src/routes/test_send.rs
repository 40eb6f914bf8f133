//! `POST /api/v1/campaigns/test-send` and `POST /api/v1/campaigns/{id}/test-send`:
//! a draft's or a campaign's email sent now to a few given addresses, to
//! see it in a real inbox before the campaign goes out.
//!
//! A test send takes the email path of a campaign from its last step:
//! campaign-service renders the templates (as a preview does) and
//! publishes one `email.requested` per address straight to `comms:emails`
//! (the address' partition), so email-service sends it as any other email,
//! through its ledger and its checks (a suppressed address gets nothing).
//! What makes it a test:
//! - the subject starts with [`SUBJECT_PREFIX`], and the email carries
//!   `X-Comms-Test: 1` (`test: true` in the request);
//! - each email has a fresh notification id (a UUID v4: a second test
//!   send is a second email) and the campaign id [`TEST_CAMPAIGN`], which
//!   no campaign has: its outcome is recorded by no campaign (campaign-
//!   service's `record` skips it) and matches no notification record
//!   (notification-service's `finish` updates nothing);
//! - the recipient is nobody's record: the name is the given one or the
//!   address' local part, and the unsubscribe link a placeholder
//!   ([`templates::SAMPLE_UNSUBSCRIBE_URL`]) that unsubscribes nobody,
//!   with no `List-Unsubscribe` header.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use contracts::{EmailRequested, TEST_CAMPAIGN};
use eventstore::Envelope;
use serde::{Deserialize, Serialize};
use servicekit::http::extract::ApiJson;
use servicekit::http::{ApiError, ErrorBody};
use templates::{Recipient, Sources, Templates};
use utoipa::ToSchema;

use crate::domain::{CheckedTemplates, TemplatesRequest};
use crate::state::AppState;

/// What a test email's subject starts with.
pub const SUBJECT_PREFIX: &str = "[TEST] ";

/// Most addresses of one test send: enough for a team's inboxes, too few
/// to be a campaign by other means.
pub const MAX_TEST_ADDRESSES: usize = 10;

/// The JSON body of `POST /api/v1/campaigns/test-send`: a draft's
/// templates and where to send them.
#[derive(Deserialize, ToSchema)]
pub(super) struct DraftTestSend {
    /// 1 to 10 bare addresses (`ada@example.com`, no display name).
    #[schema(min_items = 1, max_items = 10, example = json!(["ada@example.com"]))]
    to: Vec<String>,
    /// The subject, body and HTML templates, as a campaign's.
    #[serde(flatten)]
    templates: TemplatesRequest,
    /// The name the templates see (absent: each address' local part).
    #[serde(default)]
    #[schema(example = "Ada Lovelace", max_length = 200)]
    name: Option<String>,
}

/// The JSON body of `POST /api/v1/campaigns/{id}/test-send`: where to
/// send the campaign's email.
#[derive(Deserialize, ToSchema)]
pub(super) struct CampaignTestSend {
    /// 1 to 10 bare addresses (`ada@example.com`, no display name).
    #[schema(min_items = 1, max_items = 10, example = json!(["ada@example.com"]))]
    to: Vec<String>,
    /// The name the templates see (absent: each address' local part).
    #[serde(default)]
    #[schema(example = "Ada Lovelace", max_length = 200)]
    name: Option<String>,
}

/// The test emails requested.
#[derive(Serialize, ToSchema)]
pub(super) struct TestSent {
    /// One id per address, in the order of `to`: each email's
    /// notification id (its `Message-ID` is `<id@comms>`).
    notification_ids: Vec<String>,
}

/// Sends a draft's email to a few addresses now, marked as a test.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/test-send",
    tag = "campaigns",
    security((), ("api_token" = [])),
    request_body = DraftTestSend,
    responses(
        (status = 202, description = "The test emails are requested: `[TEST] ` before the subject, `X-Comms-Test: 1`, counted in no campaign", body = TestSent),
        (status = 400, description = "Malformed JSON, an invalid template or address list (named)", body = ErrorBody)
    )
)]
pub(super) async fn draft(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DraftTestSend>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    let to = check_addresses(&request.to)?;
    let name = check_name(request.name)?;
    let templates = request.templates;
    let emails = tokio::task::spawn_blocking(move || {
        let checked = CheckedTemplates::parse(templates)?;
        render(&checked, &to, name.as_deref())
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(ApiError::bad_request)?;
    publish(&state, emails).await
}

/// Sends a campaign's email to a few addresses now, marked as a test; the
/// campaign's counts do not move.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/test-send",
    tag = "campaigns",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    request_body = CampaignTestSend,
    responses(
        (status = 202, description = "The test emails are requested: `[TEST] ` before the subject, `X-Comms-Test: 1`, counted in no campaign", body = TestSent),
        (status = 400, description = "Malformed JSON or an invalid address list (named)", body = ErrorBody),
        (status = 404, description = "No campaign with this id", body = ErrorBody)
    )
)]
pub(super) async fn campaign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CampaignTestSend>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    let to = check_addresses(&request.to)?;
    let name = check_name(request.name)?;
    let campaign = state
        .reads
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))?;
    let checked = CheckedTemplates {
        subject: campaign.subject,
        body: campaign.body,
        html: campaign.html,
    };
    let emails = tokio::task::spawn_blocking(move || render(&checked, &to, name.as_deref()))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(ApiError::bad_request)?;
    publish(&state, emails).await
}

/// `to` if it holds 1 to [`MAX_TEST_ADDRESSES`] bare addresses; otherwise
/// a 400 naming the problem (and the address).
fn check_addresses(to: &[String]) -> Result<Vec<String>, ApiError> {
    if to.is_empty() {
        return Err(ApiError::bad_request("to must list at least one address"));
    }
    if to.len() > MAX_TEST_ADDRESSES {
        return Err(ApiError::bad_request(format!(
            "to must list at most {MAX_TEST_ADDRESSES} addresses, not {}",
            to.len()
        )));
    }
    to.iter()
        .map(|address| bare_address(address))
        .collect::<Result<_, _>>()
        .map_err(ApiError::bad_request)
}

/// `address`, trimmed, if it is a bare address (no display name);
/// otherwise what is wrong, naming it.
pub(super) fn bare_address(address: &str) -> Result<String, String> {
    let address = address.trim();
    if address.contains(['<', '>', '"', ',']) {
        return Err(format!(
            "to: {address:?} is not a bare address (no display name, quotes or commas)"
        ));
    }
    contracts::consent::check_address(address)
        .map(str::to_string)
        .map_err(|error| format!("to: {address:?}: {error}"))
}

/// The given name, trimmed, if it is at most 200 characters.
pub(super) fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let name = name
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty());
    match name {
        Some(name) if name.chars().count() > 200 => {
            Err(ApiError::bad_request("name must be at most 200 characters"))
        }
        name => Ok(name),
    }
}

/// One test email per address of `to`, rendered from `templates` for the
/// name `name` (or the address' local part).
fn render(
    templates: &CheckedTemplates,
    to: &[String],
    name: Option<&str>,
) -> Result<Vec<EmailRequested>, String> {
    let compiled = Templates::compile_sources(&Sources {
        subject: &templates.subject,
        body: &templates.body,
        html: templates.html.as_deref(),
    })
    .map_err(|error| error.to_string())?;
    to.iter()
        .map(|address| {
            let name = name.unwrap_or_else(|| address.split('@').next().unwrap_or(address));
            let rendered = compiled
                .render(&Recipient {
                    name,
                    email: address,
                    unsubscribe_url: templates::SAMPLE_UNSUBSCRIBE_URL,
                })
                .map_err(|error| error.to_string())?;
            Ok(EmailRequested {
                notification_id: uuid::Uuid::new_v4().to_string(),
                campaign_id: TEST_CAMPAIGN.into(),
                to_email: address.clone(),
                to_name: name.to_string(),
                subject: format!("{SUBJECT_PREFIX}{}", rendered.subject),
                body: rendered.body,
                unsubscribe_url: None,
                unsubscribe_mailto: None,
                html: rendered.html,
                test: true,
                rate_per_s: None,
            })
        })
        .collect()
}

/// Publishes `emails` to their addresses' partitions of `comms:emails`
/// in one pipeline; answers their ids.
async fn publish(
    state: &AppState,
    emails: Vec<EmailRequested>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    let mut events = Vec::with_capacity(emails.len());
    for email in &emails {
        let stream = state.streams.emails.for_key(&email.to_email).to_string();
        let envelope =
            Envelope::with_id(email, email.notification_id.clone()).map_err(anyhow::Error::from)?;
        events.push((stream, envelope));
    }
    state
        .publisher
        .publish_many(&events)
        .await
        .map_err(anyhow::Error::from)?;
    let notification_ids: Vec<String> = emails.into_iter().map(|email| email.notification_id).collect();
    tracing::info!(emails = notification_ids.len(), "test send requested");
    Ok((StatusCode::ACCEPTED, Json(TestSent { notification_ids })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_one_to_ten_bare_ones() {
        assert!(check_addresses(&[]).unwrap_err().message.contains("at least one"));
        let eleven: Vec<String> = (0..11).map(|i| format!("u{i}@example.com")).collect();
        assert!(check_addresses(&eleven)
            .unwrap_err()
            .message
            .contains("at most 10"));
        let named = check_addresses(&["Ada <ada@example.com>".into()]).unwrap_err();
        assert!(named.message.contains("not a bare address"), "{}", named.message);
        assert!(check_addresses(&["nobody".into()]).is_err());
        assert_eq!(
            check_addresses(&[" ada@example.com ".into()]).unwrap(),
            vec!["ada@example.com"]
        );
    }

    #[test]
    fn a_test_email_is_marked_and_rendered_for_its_address() {
        let templates = CheckedTemplates {
            subject: "Hi {{ name }}".into(),
            body: String::new(),
            html: Some("<p>Dear {{ name }}</p>".into()),
        };
        let emails = render(&templates, &["ada.l@example.com".into()], None).unwrap();
        let email = &emails[0];
        assert_eq!(email.subject, "[TEST] Hi ada.l");
        assert_eq!((email.campaign_id.as_str(), email.test), (TEST_CAMPAIGN, true));
        assert!(email.body.starts_with("Dear ada.l\n"), "{}", email.body);
        assert!(email.html.as_deref().unwrap().starts_with("<p>Dear ada.l</p>"));
        assert_eq!(email.unsubscribe_url, None);
    }
}
