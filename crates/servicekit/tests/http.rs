//! The limits every service's HTTP server has, over a real socket: a
//! request that takes too long is answered 503 (whatever it accepts: only
//! a route that streams outlives the limit, and only once it has
//! answered), a body too large 413, an unknown route 404, each with a
//! JSON error naming the problem; a client that sends half a request is
//! disconnected.

use std::time::{Duration, Instant};

use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use servicekit::http::{serve_with, ApiError, Limits, Site, SiteSettings};
use tokio_util::sync::CancellationToken;

/// Events the stream of `/events` sends, one every 100 ms: it lasts past
/// the 300 ms limit.
const TICKS: u32 = 8;

/// Serves a slow route, an event stream and a JSON route within short
/// limits; returns the base URL.
async fn spawn(shutdown: &CancellationToken) -> String {
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "done"
            }),
        )
        .route(
            "/slow-untimed",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "done"
            }),
        )
        .route(
            "/events",
            get(|| async {
                let ticks = futures::stream::unfold(0, |n| async move {
                    if n == TICKS {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((
                        Ok::<_, std::convert::Infallible>(Event::default().data(n.to_string())),
                        n + 1,
                    ))
                });
                Sse::new(ticks)
            }),
        )
        .route(
            "/echo",
            post(
                |body: Result<Json<Value>, axum::extract::rejection::JsonRejection>| async move {
                    let Json(value) = body?;
                    Ok::<_, ApiError>(Json(value))
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let limits = Limits {
        body_bytes: 1024,
        timeout: Duration::from_millis(300),
        header_read: Duration::from_millis(500),
        untimed_routes: vec!["/slow-untimed".to_string()],
    };
    let site = Site::new("test", "127.0.0.1", &SiteSettings::default());
    tokio::spawn(serve_with(listener, app, shutdown.clone(), limits, site));
    base
}

/// Sends a request; returns status and JSON body.
async fn call(method: &'static str, url: String, body: Option<String>) -> (u16, Value) {
    call_accepting(method, url, body, "application/json").await
}

/// Sends a request accepting `accept`; returns status and JSON body (null
/// for another body).
async fn call_accepting(
    method: &'static str,
    url: String,
    body: Option<String>,
    accept: &'static str,
) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let request = ureq::request(method, &url)
            .set("content-type", "application/json")
            .set("accept", accept);
        let response = match body {
            Some(body) => request.send_string(&body),
            None => request.call(),
        };
        let response = match response {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("{url}: {error}"),
        };
        let status = response.status();
        (status, response.into_json().unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn every_route_is_bounded_in_time_and_body_and_answers_json() {
    let shutdown = CancellationToken::new();
    let base = spawn(&shutdown).await;

    let start = Instant::now();
    let (status, error) = call("GET", format!("{base}/slow"), None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (503, Some("the request took longer than 300 ms"))
    );
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "answered at the limit, not when done"
    );
    // Asking for an event stream does not lift the limit of a route that
    // does not stream.
    let start = Instant::now();
    let (status, error) = call_accepting("GET", format!("{base}/slow"), None, "text/event-stream").await;
    assert_eq!(
        (status, error["error"].as_str()),
        (503, Some("the request took longer than 300 ms"))
    );
    assert!(start.elapsed() < Duration::from_millis(900), "cut at the limit");

    let small = format!("{{\"text\": \"{}\"}}", "x".repeat(100));
    let (status, echoed) = call("POST", format!("{base}/echo"), Some(small)).await;
    assert_eq!((status, echoed["text"].as_str().map(str::len)), (200, Some(100)));

    let large = format!("{{\"text\": \"{}\"}}", "x".repeat(2048));
    let (status, error) = call("POST", format!("{base}/echo"), Some(large)).await;
    assert_eq!(status, 413, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap_or_default()
            .contains("length limit"),
        "{error}"
    );

    let (status, error) = call("GET", format!("{base}/nowhere"), None).await;
    assert_eq!((status, error["error"].as_str()), (404, Some("no such route")));

    // A route the service lets take its time (an import) is not cut.
    let response = get_text(&format!("{base}/slow-untimed")).await;
    assert_eq!(response, (200, "done".to_string()));
    shutdown.cancel();
}

/// GETs `url` and returns its status and text body.
async fn get_text(url: &str) -> (u16, String) {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || testkit::http::send("GET", &url, None, None))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_event_stream_goes_on_past_the_limit_once_it_has_answered() {
    let shutdown = CancellationToken::new();
    let base = spawn(&shutdown).await;
    let start = Instant::now();
    let body = tokio::task::spawn_blocking(move || {
        let response = ureq::get(&format!("{base}/events"))
            .set("accept", "text/event-stream")
            .call()
            .unwrap();
        response.into_string().unwrap()
    })
    .await
    .unwrap();
    let events: Vec<&str> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .collect();
    let expected: Vec<String> = (0..TICKS).map(|n| n.to_string()).collect();
    assert_eq!(events, expected, "every event, past the limit");
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "{:?}",
        start.elapsed()
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_request_whose_headers_never_arrive_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let shutdown = CancellationToken::new();
    let base = spawn(&shutdown).await;
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(b"GET /ech").await.unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    // The server closes the connection (with or without a 408 first).
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was still open after 5 s");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(2),
        "closed after {elapsed:?}, not at the 500 ms limit"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A whole request on a fresh connection is still answered.
    let (status, _) = call("GET", format!("{base}/nowhere"), None).await;
    assert_eq!(status, 404);
    shutdown.cancel();
}
