//! How many requests a service serves at once, and how many event streams
//! it holds open.
//!
//! Every route of comms but the health routes is open to whoever reaches
//! the port, and a dashboard's live channel is held open for as long as
//! its page is. Without a bound, enough clients exhaust a service's file
//! descriptors, memory or database connection, and its stream workers with
//! it. Past either bound a request is answered at once with 503 and the
//! usual JSON error body (and `Retry-After: 1`), which costs next to
//! nothing; `/health`, `/ready` and `/metrics` are outside the bound, so
//! that an orchestrator does not kill a service for being busy.
//!
//! A request holds a place among [`Capacity::max_requests`] until its
//! handler has answered. An answer that is an event stream
//! (`text/event-stream`) then moves to a place among
//! [`Capacity::max_streams`], held until the stream ends: streams do not
//! starve ordinary requests, nor these streams.
//!
//! A read (`GET`, `HEAD`) also holds one of [`Capacity::max_reads`] places
//! while its handler runs, waiting at most [`Capacity::read_wait_ms`] for
//! one (503 past it). The stream handlers share the process, its cores and
//! its database with the routes; readers that send again as soon as they
//! are answered would otherwise take all the time the pipeline leaves and
//! more. Bounded, they share a few places, in turn (the wait is first come
//! first served), and the number of them waiting is bounded by
//! `max_requests`. A wait rather than an immediate 503: a closed-loop
//! client refused at once would come straight back, and refusals as fast
//! as the service can make them cost the cores as much as answers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::read_runtime::ReadRuntime;
use super::ApiError;

/// The bounds of one service (`<PREFIX>MAX_REQUESTS`,
/// `<PREFIX>MAX_STREAMS`, `<PREFIX>MAX_READS`, `<PREFIX>READ_WAIT_MS`:
/// `CAMPAIGN_MAX_REQUESTS`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Requests whose handlers run at once.
    pub max_requests: usize,
    /// Event streams (the live channel) open at once.
    pub max_streams: usize,
    /// Reads (`GET`, `HEAD`) whose handlers run at once; also the number
    /// of database connections the reads have ([`crate::db::connect_reads`]),
    /// so that a read admitted never waits for one.
    pub max_reads: usize,
    /// How long a read waits for a place before it is answered 503.
    pub read_wait_ms: u64,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            max_requests: 512,
            max_streams: 256,
            max_reads: 4,
            read_wait_ms: 1_000,
        }
    }
}

/// The places left under each bound.
#[derive(Clone)]
struct Places {
    requests: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    reads: Arc<Semaphore>,
    capacity: Capacity,
    /// Where the reads of the routes served at the idle priority run.
    idle: Option<IdleReads>,
}

/// The routes whose reads run at the idle priority, and the runtime they
/// run on.
#[derive(Clone)]
struct IdleReads {
    routes: Arc<[String]>,
    runtime: Arc<ReadRuntime>,
}

/// `routes` within `capacity`: a request past either bound is answered
/// 503 at once. Routes merged in afterwards are outside it. The reads
/// (`GET`, `HEAD`) of the route patterns `idle_routes` run on a thread of
/// the idle priority ([`super::read_runtime`]).
pub fn bound(routes: Router, capacity: Capacity, idle_routes: &[String]) -> anyhow::Result<Router> {
    let idle = if idle_routes.is_empty() {
        None
    } else {
        Some(IdleReads {
            routes: idle_routes.into(),
            runtime: Arc::new(ReadRuntime::start("http-reads")?),
        })
    };
    let places = Places {
        requests: Arc::new(Semaphore::new(capacity.max_requests)),
        streams: Arc::new(Semaphore::new(capacity.max_streams)),
        reads: Arc::new(Semaphore::new(capacity.max_reads)),
        capacity,
        idle,
    };
    Ok(routes.layer(middleware::from_fn_with_state(places, admit)))
}

/// Runs `request` if a place is free (for a read, once one is, within the
/// wait), and holds a stream's place for as long as its body is read.
async fn admit(State(places): State<Places>, request: Request, next: Next) -> Response {
    let Ok(place) = places.requests.clone().try_acquire_owned() else {
        return full(format!(
            "the service is at its limit of {} requests at once; try again",
            places.capacity.max_requests
        ));
    };
    let read = if matches!(*request.method(), Method::GET | Method::HEAD) {
        let wait = Duration::from_millis(places.capacity.read_wait_ms);
        match tokio::time::timeout(wait, places.reads.clone().acquire_owned()).await {
            Ok(Ok(read)) => Some(read),
            _ => {
                return full(format!(
                    "the service is at its limit of {} reads at once; try again",
                    places.capacity.max_reads
                ))
            }
        }
    } else {
        None
    };
    let at_idle_priority = places.idle.as_ref().filter(|idle| {
        read.is_some()
            && request
                .extensions()
                .get::<MatchedPath>()
                .is_some_and(|route| idle.routes.iter().any(|idle| idle == route.as_str()))
    });
    let response = if let Some(idle) = at_idle_priority {
        match idle.runtime.run(next.run(request)).await {
            Ok(response) => response,
            Err(error) => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("the read stopped: {error}"),
            }
            .into_response(),
        }
    } else {
        next.run(request).await
    };
    drop((read, place));
    if !is_event_stream(&response) {
        return response;
    }
    let Ok(place) = places.streams.clone().try_acquire_owned() else {
        return full(format!(
            "the service is at its limit of {} event streams at once; try again",
            places.capacity.max_streams
        ));
    };
    hold_while_open(response, place)
}

/// Whether `response` is an event stream.
fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|kind| kind.to_str().ok())
        .is_some_and(|kind| kind.starts_with("text/event-stream"))
}

/// `response`, its body holding `place` until it ends or its client
/// leaves.
fn hold_while_open(response: Response, place: OwnedSemaphorePermit) -> Response {
    let (parts, body) = response.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _held = &place;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}

/// 503 with `message`, and a second to wait.
fn full(message: String) -> Response {
    let mut response = ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message,
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
