//! `POST /api/v1/messages` and `GET /api/v1/messages/{id}`: one email to
//! one address or one user, sent now (a password reset, a receipt, a login
//! code), and where it stands.
//!
//! To an address, campaign-service renders its templates with the
//! message's own variables, as a test send's ([`super::test_send`]), and
//! publishes one `email.requested` to `comms:messages`, a lane of its own
//! that
//! email-service reads beside `comms:emails`, so that a message never
//! waits behind a campaign's backlog, and sends over connections kept for
//! messages when the campaigns' are busy; email-service sends it through
//! its send ledger and its checks (a suppressed address gets nothing, and
//! the message ends `suppressed`). The message is stored first, `queued`
//! ([`crate::store::Stored`]), and answered 202 once its entry is in the
//! stream; its email's outcome settles it. Its id is its email's
//! notification id and `Message-ID`: one email per message, however often
//! its request or its entry comes again. With an `Idempotency-Key`, a
//! retried request gets the first message back and sends nothing more.
//!
//! To a user id, campaign-service checks the templates against the
//! variables and publishes them, unrendered, as `message.to_user` on
//! `comms:message-users`: user-service, which owns the users, renders the
//! email with the user's name and address and requests it on
//! `comms:messages` like any other, or settles the message `failed`
//! ("no user with id …") when there is no such user
//! ([`contracts::messages`]). The suppression list is then checked by
//! email-service alone, as late as the send (`suppressed`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use contracts::messages::MessageToUser;
use contracts::EmailRequested;
use serde::{Deserialize, Serialize};
use serde_json::json;
use servicekit::http::extract::{whole_number, ApiJson};
use servicekit::http::{found, ApiError, ErrorBody};
use sha2::{Digest, Sha256};
use templates::message::MessageTemplates;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::campaigns::idempotency_key;
use super::test_send::{bare_address, check_name};
use crate::domain::{CheckedTemplates, TemplatesRequest};
use crate::messages::Outgoing;
use crate::state::AppState;
use crate::store::{Message, NewMessage, Stored};

/// The JSON body of `POST /api/v1/messages`: its templates inline
/// (`subject`, `body`, `html`) or a stored template's name (`template`).
#[derive(Deserialize, Serialize, ToSchema)]
pub(super) struct SendMessage {
    /// An address, or a user's id.
    to: Recipient,
    /// The name the templates see as `name` (absent: the user's name, or
    /// the address' local part).
    #[serde(default)]
    #[schema(example = "Ada Lovelace", max_length = 200)]
    name: Option<String>,
    /// Subject template, one line of 1 to 500 characters; required unless
    /// `template` is given. The templates see `name`, `email` and the
    /// names of `variables`, nothing else (no `unsubscribe_url`: a message
    /// has no unsubscribe link).
    #[serde(default)]
    #[schema(
        example = "Your code, {{ name }}",
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\r\n]*\S[^\r\n]*$"
    )]
    subject: Option<String>,
    /// Text body template, 1 to 100,000 characters; without it beside
    /// `html`, the text part is derived from the rendered HTML.
    #[serde(default)]
    #[schema(
        example = "Your login code is {{ code }}.",
        min_length = 1,
        max_length = 100_000
    )]
    body: Option<String>,
    /// HTML body template, 1 to 100,000 characters (auto-escaped).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100_000)]
    html: Option<String>,
    /// Instead of `subject`, `body` and `html`: the name of a stored
    /// template (`POST /api/v1/templates`).
    #[serde(default)]
    #[schema(example = "login-code", min_length = 1, max_length = 100)]
    template: Option<String>,
    /// With `template`: the version to use (absent: its latest).
    #[serde(default)]
    #[schema(minimum = 1)]
    version: Option<i64>,
    /// The message's own values, by name (letters, digits and `_`; up to
    /// 50, each up to 10,000 characters): every variable the templates
    /// use must be here, and, with a stored template, exactly those it
    /// declares.
    #[serde(default)]
    #[schema(example = json!({"code": "482913"}))]
    variables: BTreeMap<String, String>,
}

/// Whom a message is for.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
pub(super) enum Recipient {
    /// A user's id (user-service's): the email goes to their address, with
    /// their name; a message to no such user ends `failed`. Written `42`
    /// or `42.0`, the same integer to JSON Schema.
    User(#[serde(deserialize_with = "whole_number")] i64),
    /// An address, bare (`ada@example.com`, no display name).
    Address(String),
}

/// The largest user id `to` takes, 2^53, past which a JSON number is no
/// longer exact ([`whole_number`]).
const WHOLE: f64 = 9_007_199_254_740_992.0;

/// `to`, documented as the handler reads it: an integer or a string.
impl PartialSchema for Recipient {
    fn schema() -> RefOr<Schema> {
        let user = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            // Exact as JSON's numbers are: 42.0 is 42 too.
            .minimum(Some(-WHOLE))
            .maximum(Some(WHOLE))
            .description(Some(
                "A user's id: the email goes to their address, with their name; a message to no such user ends `failed`",
            ))
            .examples([json!(42)]);
        let address = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(3))
            .max_length(Some(254))
            .description(Some("An address, bare (no display name)"))
            .examples([json!("ada@example.com")]);
        OneOfBuilder::new().item(user).item(address).into()
    }
}

impl ToSchema for Recipient {}

impl SendMessage {
    /// The templates the message is rendered from: its own, or the stored
    /// one it names (checked against its variables); what is wrong
    /// otherwise.
    async fn templates(&self, state: &AppState) -> Result<CheckedTemplates, ApiError> {
        let inline = self.subject.is_some() || self.body.is_some() || self.html.is_some();
        let Some(name) = &self.template else {
            let subject = self
                .subject
                .clone()
                .ok_or_else(|| ApiError::bad_request("subject is required unless template is given"))?;
            return CheckedTemplates::within_bounds(TemplatesRequest {
                subject,
                body: self.body.clone(),
                html: self.html.clone(),
            })
            .map_err(ApiError::bad_request);
        };
        if inline {
            return Err(ApiError::bad_request(
                "template names a stored template: give it, or subject, body and html, not both",
            ));
        }
        let stored = state
            .tracker
            .store()
            .template(name, self.version)
            .await?
            .ok_or_else(|| {
                ApiError::bad_request(match self.version {
                    Some(version) => format!("template {name} has no version {version}"),
                    None => format!("no template {name}"),
                })
            })?;
        let given: Vec<&str> = self.variables.keys().map(String::as_str).collect();
        if given != stored.variables.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(ApiError::bad_request(format!(
                "variables: template {name} (version {}) declares [{}]; the message gives [{}]",
                stored.version,
                stored.variables.join(", "),
                given.join(", ")
            )));
        }
        Ok(CheckedTemplates {
            subject: stored.subject,
            body: stored.body,
            html: stored.html,
        })
    }
}

/// The message asked for.
#[derive(Serialize, ToSchema)]
pub(super) struct MessageQueued {
    /// Its id, for `GET /api/v1/messages/{id}`.
    id: String,
    /// `queued`, or where it stands when the request was a retry.
    status: String,
}

/// Sends one email to one address or user now.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "messages",
    security((), ("api_token" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters, new for each message: a request retried with the same key and body gets the message the first one asked for (200), and no second email; the same key with another body is a 409. A key names its message for good.")
    ),
    request_body = SendMessage,
    responses(
        (status = 202, description = "The message is stored and its email (or, to a user id, the message for user-service to address) in the stream", body = MessageQueued),
        (status = 200, description = "The message this `Idempotency-Key` asked for before, for the same body; nothing new", body = MessageQueued),
        (status = 400, description = "Malformed JSON, an invalid address, template, variable or `Idempotency-Key`, a variable the templates use and the message does not give, a stored template unknown or whose declared variables are not the message's (named)", body = ErrorBody),
        (status = 409, description = "This `Idempotency-Key` asked for another message (named); nothing new", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape, or an address on the suppression list (named, with why); nothing is sent. A user on the list ends `suppressed`", body = ErrorBody),
        (status = 503, description = "The event store is unreachable (nothing stored, or stored and published later): retry with the same `Idempotency-Key`", body = ErrorBody)
    )
)]
pub(super) async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SendMessage>,
) -> Result<(StatusCode, Json<MessageQueued>), ApiError> {
    let key = idempotency_key(&headers)?;
    let request_hash = format!(
        "{:x}",
        Sha256::digest(serde_json::to_vec(&request).map_err(anyhow::Error::from)?)
    );
    let templates = request.templates(&state).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let outgoing = tokio::task::spawn_blocking(move || prepare(id, request, &templates))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(ApiError::bad_request)?;
    if let Outgoing::Email(email) = &outgoing {
        refuse_if_suppressed(&state, &email.to_email, key.as_deref()).await?;
    }
    let stored = state
        .tracker
        .store()
        .store_message(NewMessage {
            id: outgoing.id().to_string(),
            key,
            request_hash,
            recipient: outgoing.recipient(),
            subject: outgoing.subject().to_string(),
            email: serde_json::to_string(&outgoing).map_err(anyhow::Error::from)?,
        })
        .await?;
    match stored {
        Stored::New(message) => {
            publish(&state, &outgoing).await?;
            tracing::info!(message = %message.id, "message requested");
            Ok((StatusCode::ACCEPTED, queued(message)))
        }
        Stored::Replayed(message) => Ok((StatusCode::OK, queued(message))),
        Stored::KeyReused { message_id } => Err(ApiError::conflict(format!(
            "this Idempotency-Key asked for message {message_id} with another body; use a new key for a new message"
        ))),
    }
}

/// A 422 naming why, when `to` is on the suppression list (as
/// campaign-service's copy of it has it, brought up to date with the
/// event store first), unless `key` already names a message: a retry gets
/// the message it asked for, whatever happened since. A 503 when the list
/// cannot be read up to date (the event store away): nothing is stored.
async fn refuse_if_suppressed(state: &AppState, to: &str, key: Option<&str>) -> Result<(), ApiError> {
    let listed = state.suppressed.among(&[to]).await.map_err(|error| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!("cannot read the suppression list now ({error:#}); nothing was stored, retry"),
    })?;
    let Some(reason) = listed.into_iter().next().flatten() else {
        return Ok(());
    };
    if let Some(key) = key {
        if state.tracker.store().message_key_used(key).await? {
            return Ok(());
        }
    }
    Err(ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: format!("{to} is on the suppression list ({reason}); nothing was sent"),
    })
}

/// Where a message stands: `queued` until its email's outcome.
#[utoipa::path(
    get,
    path = "/api/v1/messages/{id}",
    tag = "messages",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message", body = Message),
        (status = 404, description = "No message with this id", body = ErrorBody)
    )
)]
pub(super) async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    found(state.tracker.store().message(&id).await?, "message", &id)
}

/// What message `id` asked for by `request` publishes: to an address, its
/// email rendered from `templates`; to a user, the templates, checked
/// against the request's variables, for user-service to render. What is
/// wrong with the request otherwise.
fn prepare(id: String, request: SendMessage, templates: &CheckedTemplates) -> Result<Outgoing, String> {
    let name = check_name(request.name).map_err(|error| error.message)?;
    templates::message::check_variables(&request.variables)?;
    let checked = MessageTemplates::check(&templates.sources(), &request.variables)
        .map_err(|error| error.to_string())?;
    let to = match request.to {
        Recipient::User(user_id) => {
            return Ok(Outgoing::ToUser(MessageToUser {
                message_id: id,
                user_id,
                name,
                subject: templates.subject.clone(),
                body: templates.body.clone(),
                html: templates.html.clone(),
                variables: request.variables,
            }))
        }
        Recipient::Address(to) => bare_address(&to)?,
    };
    let name = name.unwrap_or_else(|| to.split('@').next().unwrap_or(&to).to_string());
    let rendered = checked
        .render(&name, &to, &request.variables)
        .map_err(|error| error.to_string())?;
    Ok(Outgoing::Email(EmailRequested::message(
        id,
        to,
        name,
        rendered.subject,
        rendered.body,
        rendered.html,
    )))
}

/// Publishes `outgoing` (to `comms:messages`, or `comms:message-users`).
/// A failure is a 503: the message stays `queued` and is published again
/// later ([`crate::messages`]).
async fn publish(state: &AppState, outgoing: &Outgoing) -> Result<(), ApiError> {
    let event = outgoing.entry(&state.streams).map_err(anyhow::Error::from)?;
    state
        .publisher
        .publish_many(&[event])
        .await
        .map(|_| ())
        .map_err(|error| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the message is stored but not yet in the event store ({error}); retry with the same Idempotency-Key"),
        })
}

/// The answer for `message`.
fn queued(message: Message) -> Json<MessageQueued> {
    Json(MessageQueued {
        id: message.id,
        status: message.status,
    })
}
