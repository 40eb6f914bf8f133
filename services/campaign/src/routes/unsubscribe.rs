//! `/unsubscribe/{token}`: the link of every email's `List-Unsubscribe`
//! (RFC 8058), which notification-service signs and campaign-service
//! serves.
//!
//! - `GET` shows a page asking to confirm, and changes nothing: mail
//!   scanners and link previews fetch links nobody clicked.
//! - `POST` with `List-Unsubscribe=One-Click` (what a mail provider sends
//!   for its own unsubscribe button, and the page's button) unsubscribes;
//!   with `action=resubscribe` (the button of the answer's page) takes the
//!   unsubscribe back. Either publishes a `consent.changed` on
//!   `comms:consent` for user-service, which owns the suppression list, and
//!   answers 200 only once it is in the stream: a 503 tells the recipient
//!   (or the provider) to try again. A repeated POST publishes again, which
//!   user-service applies idempotently (the latest `at` wins).
//!
//! The token is the link's only authority (a user and a campaign, signed,
//! expiring), so the route needs no API token, and takes POSTs from any
//! page ([`servicekit::http::Site::open_to_every_page`]): providers post
//! from their own servers or sites. A token that is malformed, forged or
//! expired is a 400 naming which, as a page or, to a client that asks for
//! JSON (`Accept`), as `{"error": "..."}`.

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_SECURITY_POLICY};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use contracts::consent::{ConsentChanged, SuppressionReason};
use contracts::unsubscribe::Unsubscribe;
use eventstore::Envelope;
use serde::{Deserialize, Serialize};
use servicekit::http::extract::{ApiPath, FormFields};
use servicekit::http::ErrorBody;
use servicekit::now_ms;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::state::AppState;

/// The route, as the router and the origin check name it.
pub const ROUTE: &str = "/unsubscribe/{token}";

/// What the pages may do: nothing but post their own form back.
const POLICY: &str = "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The token of the link, as its last path segment holds it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct TokenPath {
    /// `<user id>.<campaign id>.<expiry>.<signature>`, as notification-service
    /// signs it (`contracts::unsubscribe`); one that does not verify is a 400.
    #[param(
        pattern = r"^-?[0-9]+\.[0-9A-Za-z-]+\.-?[0-9]+\.[0-9A-Za-z_-]*$",
        example = "42.3f2504e0-4f89-41d3-9a0c-0305e82c3301.1767225600.czMzImOmFWIhmKvOCdP0KUna8YLInugTmcYNV08x1lo"
    )]
    token: String,
}

/// What a POST asks for. Its body is exactly one field:
/// `List-Unsubscribe=One-Click` (RFC 8058's body, and the page's button)
/// or `action=resubscribe` (the button that takes an unsubscribe back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice {
    /// `List-Unsubscribe=One-Click`.
    Unsubscribe,
    /// `action=resubscribe`.
    Resubscribe,
}

impl Choice {
    /// The choice of a form's `fields`; `None` for any other body.
    fn of(fields: &[(String, String)]) -> Option<Self> {
        match fields {
            [(name, value)] if name == "List-Unsubscribe" && value == "One-Click" => Some(Self::Unsubscribe),
            [(name, value)] if name == "action" && value == "resubscribe" => Some(Self::Resubscribe),
            _ => None,
        }
    }
}

/// The form, documented as the handler reads it: one of two bodies of
/// one field each, nothing else.
impl PartialSchema for Choice {
    fn schema() -> RefOr<Schema> {
        let body = |name: &str, value: &str, description: &str| {
            let field = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([value]));
            ObjectBuilder::new()
                .property(name, field)
                .required(name)
                .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
                .description(Some(description))
                .build()
        };
        OneOfBuilder::new()
            .item(body(
                "List-Unsubscribe",
                "One-Click",
                "Unsubscribe (RFC 8058's one-click body)",
            ))
            .item(body("action", "resubscribe", "Take the unsubscribe back"))
            .into()
    }
}

impl ToSchema for Choice {}

/// The JSON answer of a POST (to a client that asks for JSON).
#[derive(Serialize, ToSchema)]
pub(super) struct Consent {
    /// Whether the recipient gets this sender's emails from now on.
    subscribed: bool,
}

/// The page of an unsubscribe link: what it names, and a button that
/// unsubscribes. Changes nothing.
#[utoipa::path(
    get,
    path = "/unsubscribe/{token}",
    tag = "consent",
    params(TokenPath),
    responses(
        (status = 200, description = "A page asking to confirm, with a button that POSTs `List-Unsubscribe=One-Click` to the same URL; nothing changed", body = String, content_type = "text/html"),
        (status = 400, description = "A token that is malformed, forged or expired (named): a page, or JSON to a client that asks for it", content(
            (String = "text/html"),
            (ErrorBody = "application/json")
        ))
    )
)]
pub(super) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(TokenPath { token }): ApiPath<TokenPath>,
) -> Response {
    match verify(&state, &token) {
        Ok(_) => answer(StatusCode::OK, CONFIRM),
        Err(error) => refuse(&headers, StatusCode::BAD_REQUEST, &error),
    }
}

/// Unsubscribes (`List-Unsubscribe=One-Click`, RFC 8058) or resubscribes
/// (`action=resubscribe`) the recipient the token names, from the
/// campaign's sender: answered once the change is in `comms:consent`.
#[utoipa::path(
    post,
    path = "/unsubscribe/{token}",
    tag = "consent",
    params(TokenPath),
    request_body(content(
        (Choice = "application/x-www-form-urlencoded"),
        (Choice = "multipart/form-data")
    )),
    responses(
        (status = 200, description = "The change is published: a page saying so (with the button that undoes it), or JSON to a client that asks for it", content(
            (String = "text/html"),
            (Consent = "application/json")
        )),
        (status = 400, description = "A token that is malformed, forged or expired, or a body other than the two (named)", content(
            (String = "text/html"),
            (ErrorBody = "application/json")
        )),
        (status = 413, description = "A body over 256 KiB", body = ErrorBody),
        (status = 415, description = "A body that is not a form (`application/x-www-form-urlencoded` or `multipart/form-data`)", body = ErrorBody),
        (status = 503, description = "Redis did not take the change; nothing changed: retry", content(
            (String = "text/html"),
            (ErrorBody = "application/json")
        ))
    )
)]
pub(super) async fn choose(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(TokenPath { token }): ApiPath<TokenPath>,
    FormFields(fields): FormFields,
) -> Response {
    let link = match verify(&state, &token) {
        Ok(link) => link,
        Err(error) => return refuse(&headers, StatusCode::BAD_REQUEST, &error),
    };
    let Some(choice) = Choice::of(&fields) else {
        let error = "the body must be exactly `List-Unsubscribe=One-Click` (unsubscribe) or \
                     `action=resubscribe`";
        return refuse(&headers, StatusCode::BAD_REQUEST, error);
    };
    let subscribe = choice == Choice::Resubscribe;
    if let Err(error) = publish(&state, &link, subscribe).await {
        tracing::warn!(
            user = link.user_id,
            campaign = %link.campaign_id,
            error = format!("{error:#}"),
            "a consent change was not published"
        );
        let error = "your request could not be recorded just now; nothing changed: please try again";
        return refuse(&headers, StatusCode::SERVICE_UNAVAILABLE, error);
    }
    tracing::info!(
        user = link.user_id,
        campaign = %link.campaign_id,
        subscribe,
        "consent changed through an unsubscribe link"
    );
    if wants_json(&headers) {
        return (
            StatusCode::OK,
            Json(Consent {
                subscribed: subscribe,
            }),
        )
            .into_response();
    }
    answer(
        StatusCode::OK,
        if subscribe { RESUBSCRIBED } else { UNSUBSCRIBED },
    )
}

/// What `token` names, verified now.
fn verify(state: &AppState, token: &str) -> Result<Unsubscribe, String> {
    state
        .unsubscribe_key
        .verify(token, now_ms() / 1000)
        .map_err(|error| error.to_string())
}

/// Publishes the change `link` asks for on `comms:consent`.
async fn publish(state: &AppState, link: &Unsubscribe, subscribe: bool) -> anyhow::Result<()> {
    let change = ConsentChanged {
        user_id: Some(link.user_id),
        address: None,
        suppress: !subscribe,
        reason: SuppressionReason::Unsubscribed,
        campaign_id: Some(link.campaign_id.clone()),
        detail: None,
        notification_id: None,
        at: now_ms(),
    };
    let stream = state.streams.consent.for_key(&link.user_id.to_string());
    state.publisher.publish(stream, &Envelope::new(&change)?).await?;
    Ok(())
}

/// Whether the client asks for JSON rather than a page: its `Accept` names
/// `application/json` and not `text/html` (a browser names both, or only
/// the page).
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    accept.contains("application/json") && !accept.contains("text/html")
}

/// A refusal with `status`: `{"error": ...}` to a client that asks for
/// JSON, else a page saying `error`.
fn refuse(headers: &HeaderMap, status: StatusCode, error: &str) -> Response {
    if wants_json(headers) {
        return (
            status,
            Json(ErrorBody {
                error: error.to_string(),
            }),
        )
            .into_response();
    }
    let body = format!("<h1>This link did not work</h1>\n<p>{}</p>", escape(error));
    answer(status, &body)
}

/// A page of `body` (HTML, trusted) with `status`.
fn answer(status: StatusCode, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>Email preferences</title>\n\
         </head>\n<body>\n{body}\n</body>\n</html>\n"
    );
    (status, [(CONTENT_SECURITY_POLICY, POLICY)], Html(page)).into_response()
}

/// `text` with the characters HTML gives a meaning escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The GET page. Its form has no `action`: it posts to the page's own URL,
/// which holds the token.
const CONFIRM: &str = "<h1>Unsubscribe from these emails?</h1>\n\
<p>You will no longer receive emails like the one that brought you here.</p>\n\
<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
<button type=\"submit\">Unsubscribe</button></form>";

/// The answer of an unsubscribe, with the button that takes it back.
const UNSUBSCRIBED: &str = "<h1>You are unsubscribed</h1>\n\
<p>You will no longer receive these emails. Changed your mind?</p>\n\
<form method=\"post\"><input type=\"hidden\" name=\"action\" value=\"resubscribe\">\
<button type=\"submit\">Resubscribe</button></form>";

/// The answer of a resubscribe, with the button that unsubscribes again.
const RESUBSCRIBED: &str = "<h1>You are subscribed again</h1>\n\
<p>You will receive these emails again.</p>\n\
<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
<button type=\"submit\">Unsubscribe</button></form>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_for_clients_that_ask_for_it_and_not_for_a_page() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, accept.parse().unwrap());
            wants_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; q=1"));
        assert!(!with("text/html,application/xhtml+xml,application/json;q=0.9"));
        assert!(!with("*/*"));
        assert!(!wants_json(&HeaderMap::new()));
    }

    #[test]
    fn an_error_is_shown_as_text_not_markup() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_body_is_exactly_one_of_the_two_choices() {
        let form = |pairs: &[(&str, &str)]| {
            let fields: Vec<(String, String)> = pairs
                .iter()
                .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
                .collect();
            Choice::of(&fields)
        };
        assert_eq!(
            form(&[("List-Unsubscribe", "One-Click")]),
            Some(Choice::Unsubscribe)
        );
        assert_eq!(form(&[("action", "resubscribe")]), Some(Choice::Resubscribe));
        for other in [
            &[][..],
            &[("List-Unsubscribe", "one-click")],
            &[("action", "unsubscribe")],
            &[("List-Unsubscribe", "One-Click"), ("action", "resubscribe")],
            &[
                ("List-Unsubscribe", "One-Click"),
                ("List-Unsubscribe", "One-Click"),
            ],
        ] {
            assert_eq!(form(other), None, "{other:?}");
        }
    }
}
