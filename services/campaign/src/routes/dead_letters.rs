//! The dead-letter operator API, for every stream: a page of a stream's
//! dead letters with their reasons, and replaying one or all of them.
//! A stream is named as comms names it (all its partitions) or as one
//! partition of a split stream.
//!
//! Replaying them all puts back each letter there when the request came,
//! once, at the pace the stream drains (see [`deadletter::replay_all`]),
//! for at most [`REPLAY_TIME`]: the answer says how many went back and
//! whether that was all of them.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use eventstore::{deadletter, DeadLetter};
use serde::{Deserialize, Serialize};
use servicekit::http::extract::ApiQuery;
use servicekit::http::{fetch_page, ApiError, ErrorBody};
use utoipa::{IntoParams, ToSchema};

use super::MAX_LIMIT;
use crate::state::AppState;

/// How long one replay-all may go on before it answers, within the
/// request time limit; what it has not reached by then stays for the next.
const REPLAY_TIME: Duration = Duration::from_secs(20);

/// Entries a stream may hold that some group still needs before
/// replay-all waits for them to drain: user-service's default bound on
/// what an expansion puts in the streams (`EXPANSION_BACKLOG`).
const REPLAY_BACKLOG: u64 = 10_000;

/// `?stream=`, which every dead-letter route takes.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StreamQuery {
    /// The stream: `comms:campaigns`, `comms:notifications`,
    /// `comms:emails` or `comms:deliveries` (all its partitions), or one
    /// partition of a split stream (`comms:emails:{2}`). The served
    /// document lists them ([`super::document`]).
    #[param(example = "comms:emails")]
    stream: String,
}

impl StreamQuery {
    /// The partitions the stream names: every one of a stream of comms,
    /// or the one partition named; 400 for any other name.
    fn partitions<'s>(&self, state: &'s AppState) -> Result<&'s [String], ApiError> {
        state.streams.select(&self.stream).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown stream `{}`; one of {} (or one of their partitions)",
                self.stream,
                contracts::ALL_STREAMS.join(", ")
            ))
        })
    }
}

/// `&after=&limit=` of a page of dead letters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageQuery {
    /// The page after this dead letter id (the last page's `next_after`);
    /// empty or absent: the first page.
    #[serde(default)]
    #[param(pattern = "^([0-9]{1,19}-[0-9]{1,19})?$", example = "1700000000000-0")]
    after: String,
    /// How many at most.
    #[serde(default = "default_limit")]
    #[param(default = 100, minimum = 1, maximum = 500)]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// `&id=` of a replay.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct IdQuery {
    /// The dead letter's id (as listed), e.g. `1700000000000-0`.
    #[param(
        required = true,
        pattern = "^[0-9]{1,19}-[0-9]{1,19}$",
        example = "1700000000000-0"
    )]
    id: Option<String>,
}

/// One page of a stream's dead letters.
#[derive(Serialize, ToSchema)]
pub(super) struct DeadLetterPage {
    /// The oldest first.
    dead_letters: Vec<DeadLetter>,
    /// The `after` of the next page; `null` on the last one.
    next_after: Option<String>,
}

/// A dead letter put back on its stream.
#[derive(Serialize, ToSchema)]
pub(super) struct Replayed {
    /// The dead letter's id.
    replayed: String,
    /// The id of the entry added to the stream.
    new_id: String,
}

/// The dead letters of a stream put back on it.
#[derive(Serialize, ToSchema)]
pub(super) struct ReplayedAll {
    /// The stream.
    stream: String,
    /// How many were put back, each once.
    replayed: usize,
    /// How many were left in place: they hold nothing to replay (their
    /// entry was deleted, or their fields were written by hand).
    skipped: usize,
    /// Whether every letter present at the request was gone through;
    /// `false` when the stream drained too slowly to finish within 20 s
    /// (ask again for the rest).
    done: bool,
}

/// The answer to an event-store error: an id that is not a stream id is
/// the caller's 400, one that two partitions hold, or a letter with
/// nothing to replay, a 409, the rest ours.
fn refused(error: eventstore::Error) -> ApiError {
    match error {
        eventstore::Error::InvalidId(_) => ApiError::bad_request(error.to_string()),
        eventstore::Error::AmbiguousId { .. } | eventstore::Error::NothingToReplay { .. } => {
            ApiError::conflict(error.to_string())
        }
        error => anyhow::Error::from(error).into(),
    }
}

/// A stream's dead letters with their reason, the oldest first, a page at
/// a time.
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "streams",
    security((), ("api_token" = [])),
    params(StreamQuery, PageQuery),
    responses(
        (status = 200, description = "The stream's dead letters (their payloads hold recipients' addresses)", body = DeadLetterPage),
        (status = 400, description = "No stream, or an unknown one, a limit out of range, or an `after` that is not a stream id", body = ErrorBody)
    )
)]
pub(super) async fn dead_letters(
    State(state): State<AppState>,
    ApiQuery(stream): ApiQuery<StreamQuery>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let partitions = stream.partitions(&state)?;
    let mut conn = state.redis.clone();
    let after = Some(page.after.as_str()).filter(|after| !after.is_empty());
    let (dead_letters, next_after) = fetch_page(
        page.limit,
        MAX_LIMIT,
        || async {
            deadletter::page_over(&mut conn, partitions, after, page.limit as usize)
                .await
                .map_err(refused)
        },
        |letter| letter.id.clone(),
    )
    .await?;
    Ok(Json(DeadLetterPage {
        dead_letters,
        next_after,
    }))
}

/// Puts one dead letter back on its stream, for its groups to handle again.
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/replay",
    tag = "streams",
    security((), ("api_token" = [])),
    params(StreamQuery, IdQuery),
    responses(
        (status = 200, description = "Replayed", body = Replayed),
        (status = 400, description = "No stream or id, an unknown stream, or an id that is not a stream id", body = ErrorBody),
        (status = 404, description = "No such dead letter on this stream", body = ErrorBody),
        (status = 409, description = "Two partitions of the stream hold a dead letter with this id (they number their entries on their own): name the partition, as each dead letter's `stream` does; or the dead letter holds nothing to replay", body = ErrorBody)
    )
)]
pub(super) async fn replay(
    State(state): State<AppState>,
    ApiQuery(stream): ApiQuery<StreamQuery>,
    ApiQuery(IdQuery { id }): ApiQuery<IdQuery>,
) -> Result<Json<Replayed>, ApiError> {
    let partitions = stream.partitions(&state)?;
    let id = id.ok_or_else(|| ApiError::bad_request("missing query parameter `id`"))?;
    let mut conn = state.redis.clone();
    match deadletter::replay_over(&mut conn, partitions, &id)
        .await
        .map_err(refused)?
    {
        Some(new_id) => Ok(Json(Replayed { replayed: id, new_id })),
        None => Err(ApiError::not_found(format!(
            "no dead letter {id} on {}",
            stream.stream
        ))),
    }
}

/// Puts every dead letter of a stream back on it, each once, at the pace
/// the stream drains, for up to 20 s.
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/replay-all",
    tag = "streams",
    security((), ("api_token" = [])),
    params(StreamQuery),
    responses(
        (status = 200, description = "Replayed, with how many, and whether that was all", body = ReplayedAll),
        (status = 400, description = "No stream, or an unknown one", body = ErrorBody)
    )
)]
pub(super) async fn replay_all(
    State(state): State<AppState>,
    ApiQuery(stream): ApiQuery<StreamQuery>,
) -> Result<Json<ReplayedAll>, ApiError> {
    let partitions = stream.partitions(&state)?;
    let mut conn = state.redis.clone();
    let pace = deadletter::Pace {
        max_backlog: REPLAY_BACKLOG,
        until: tokio::time::Instant::now() + REPLAY_TIME,
    };
    let mut answer = ReplayedAll {
        stream: stream.stream,
        replayed: 0,
        skipped: 0,
        done: true,
    };
    for partition in partitions {
        let outcome = deadletter::replay_all(&mut conn, partition, pace)
            .await
            .map_err(refused)?;
        answer.replayed += outcome.replayed;
        answer.skipped += outcome.skipped;
        if !outcome.done {
            answer.done = false;
            break;
        }
    }
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use contracts::Streams;

    use crate::routes::document;

    #[test]
    fn the_document_names_every_stream_the_server_takes() {
        for partitions in [1, 4] {
            let streams = Streams::new(partitions);
            let document = serde_json::to_value(document(&streams)).unwrap();
            for path in [
                "/api/v1/dead-letters",
                "/api/v1/dead-letters/replay",
                "/api/v1/dead-letters/replay-all",
            ] {
                let operation = &document["paths"][path];
                let operation = operation.get("get").unwrap_or(&operation["post"]);
                assert_eq!(operation["parameters"][0]["name"], "stream");
                let documented: Vec<String> =
                    serde_json::from_value(operation["parameters"][0]["schema"]["enum"].clone()).unwrap();
                assert_eq!(documented, streams.names(), "{path}");
            }
        }
    }
}
