//! `POST /api/v1/users/import`: many users at once, from a CSV or NDJSON
//! body of any size, upserted by address (a new address is a new user, a
//! known one gets the name and attributes given: [`parse::COLUMNS`]), streamed: the body is read a part at a
//! time on a blocking thread ([`parse`]), its rows reach the database a
//! batch at a time in one transaction each, so a million rows take the
//! memory of a few batches (and of the addresses' 8-byte hashes, to find
//! an address twice in the file).
//!
//! Each batch is committed before the next is read: a crash midway keeps
//! the batches before it, and importing the same file again gives the same
//! users (what was there is `unchanged`). The answer counts what was
//! created, updated and unchanged, and names every rejected row by line
//! and reason (the first [`MAX_LISTED`]; all are counted). What makes the
//! rest unreadable (a bad CSV header, a line over 1 MiB, a body that stops
//! coming for [`IDLE`]) ends it with a 400 saying so and what was imported
//! before it: never a partial import that looks whole.

mod lines;
pub mod parse;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{middleware, Json, Router};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use servicekit::access::{require_token, Access};
use servicekit::http::{ApiError, ErrorBody};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};
use utoipa::ToSchema;

use crate::user_writes::{NewUser, Upserted, UserWrites};
use parse::{Format, Item};

/// The route, as the router and [`servicekit::service::Service::untimed`]
/// name it: an import takes as long as its body takes to come.
pub const ROUTE: &str = "/api/v1/users/import";

/// Rows per transaction.
const BATCH: usize = 500;

/// Rejected rows named in the answer, at most.
pub const MAX_LISTED: usize = 1_000;

/// The longest wait for the next part of the body.
pub const IDLE: Duration = Duration::from_secs(30);

/// What an import did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Imported {
    /// Users added, renamed, and already there as given.
    #[serde(flatten)]
    pub upserted: Upserted,
    /// Rows not imported.
    pub rejected: u64,
    /// The first rejected rows (up to 1,000), each with its line and why.
    pub rejections: Vec<Rejection>,
}

/// A row not imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rejection {
    /// Its line in the file, from 1 (the CSV header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// The import route, behind `access`.
pub fn router(writes: UserWrites, access: Access) -> Router {
    Router::new()
        .route(ROUTE, post(import))
        .route_layer(middleware::from_fn_with_state(access, require_token))
        .with_state(writes)
}

/// Adds or renames many users at once.
#[utoipa::path(
    post,
    path = "/api/v1/users/import",
    tag = "users",
    security((), ("api_token" = [])),
    request_body(content(
        (Vec<NewUser> = "text/csv", example = "email,name,country,plan,tags\nada@example.com,Ada Lovelace,GB,pro,beta;newsletter\n"),
        (Vec<NewUser> = "application/x-ndjson", example = "{\"email\": \"ada@example.com\", \"name\": \"Ada Lovelace\", \"country\": \"GB\", \"tags\": [\"beta\"], \"attributes\": {\"team\": \"ops\"}}\n")
    ), description = "The rows, each an `email` and a `name`, and any of `country`, `locale`, `plan`, `signed_up_at` and `tags` (checked as in `POST /api/v1/users`): as CSV with a header naming the columns (in any order; `email` and `name` needed; no other column; tags separated by `;` or `|`; an empty cell clears its attribute), or as one JSON object per line (these keys and `attributes`, an object; `tags` an array; `null` clears; a key left out leaves its attribute as it is). Any size: it is read as it comes. A row that is not a user is named in the answer, not refused with the file."),
    responses(
        (status = 200, description = "Imported: counts, and every rejected row by line and reason (the first 1,000 named)", body = Imported),
        (status = 400, description = "A CSV header with an unknown or missing column, a line over 1 MiB, or a body that stopped coming: the error says which line, and what was imported before it", body = ErrorBody),
        (status = 415, description = "Neither `text/csv` nor `application/x-ndjson`", body = ErrorBody)
    )
)]
pub(crate) async fn import(
    State(writes): State<UserWrites>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Imported>, ApiError> {
    let format = format_of(&headers)?;
    let (batches, mut read) = mpsc::channel::<Vec<Item>>(4);
    let chunks = timeout_each(body.into_data_stream().map_err(std::io::Error::other), IDLE);
    let reading = tokio::task::spawn_blocking(move || {
        let input = SyncIoBridge::new(StreamReader::new(Box::pin(chunks)));
        parse::read(format, input, BATCH, |batch| batches.blocking_send(batch).is_ok())
    });
    let mut imported = Imported::default();
    let mut seen = FirstLines::default();
    while let Some(batch) = read.recv().await {
        let mut rows = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Item::Row { line, row } => match seen.first(&row.email, line) {
                    None => rows.push(row),
                    Some(first) => imported.reject(line, format!("{} is on line {first} already", row.email)),
                },
                Item::Rejected { line, reason } => imported.reject(line, reason),
            }
        }
        if !rows.is_empty() {
            let done = writes.upsert(&rows).await?;
            imported.add(done);
        }
    }
    let read = reading.await.map_err(anyhow::Error::from)?;
    tracing::info!(
        created = imported.upserted.created,
        updated = imported.upserted.updated,
        unchanged = imported.upserted.unchanged,
        rejected = imported.rejected,
        stopped = read.is_err(),
        "users imported"
    );
    match read {
        Ok(()) => Ok(Json(imported)),
        Err(error) => Err(ApiError::bad_request(format!(
            "{error}: the import stopped there; before it {} users were created, {} updated, {} unchanged, {} rows rejected \
             (importing the whole file again gives the same users)",
            imported.upserted.created, imported.upserted.updated, imported.upserted.unchanged, imported.rejected
        ))),
    }
}

impl Imported {
    fn reject(&mut self, line: u64, reason: String) {
        self.rejected += 1;
        if self.rejections.len() < MAX_LISTED {
            self.rejections.push(Rejection { line, reason });
        }
    }

    fn add(&mut self, done: Upserted) {
        self.upserted.created += done.created;
        self.upserted.updated += done.updated;
        self.upserted.unchanged += done.unchanged;
    }
}

/// The format named by `Content-Type`; another is a 415.
fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/csv" => Ok(Format::Csv),
        "application/x-ndjson" | "application/ndjson" => Ok(Format::Ndjson),
        _ => Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "an import is `text/csv` or `application/x-ndjson`, not `{}`",
                content_type.escape_default()
            ),
        }),
    }
}

/// The line each address was first seen on, by an 8-byte hash of it: a
/// million addresses in some 16 MB. A collision of two addresses' hashes
/// (about one in 10^7 for a million rows) rejects the later one as a
/// duplicate, which importing it alone again imports.
#[derive(Default)]
struct FirstLines {
    hasher: RandomState,
    lines: HashMap<u64, u64>,
}

impl FirstLines {
    /// The line `email` was seen on before, or `None` (and now it is).
    fn first(&mut self, email: &str, line: u64) -> Option<u64> {
        let key = self.hasher.hash_one(email);
        match self.lines.entry(key) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(new) => {
                new.insert(line);
                None
            }
        }
    }
}

/// The items of `stream`, each within `idle` of the one before, else an
/// error that ends it.
fn timeout_each<S>(stream: S, idle: Duration) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    S: futures::Stream<Item = std::io::Result<Bytes>> + Send + Unpin,
{
    futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the body stopped coming for {} s", idle.as_secs()),
                )),
                None,
            )),
        }
    })
}
