//! Many clients against a real Redis and SQLite, over TCP: what the live
//! channel's clients cost does not grow with how many there are, and past
//! its bounds the service answers 503 while its health routes still
//! answer.

mod common;

use std::time::Duration;

use common::spawn_app;
use testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens the live channel over TCP and reads until its first `streams`
/// event: the client is then counted among the listeners.
async fn open_live(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "GET /api/v1/campaigns/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !String::from_utf8_lossy(&seen).contains("event: streams") {
            let read = stream.read(&mut buffer).await.unwrap();
            assert!(
                read > 0,
                "the live channel closed: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buffer[..read]);
        }
    })
    .await
    .expect("a first streams event within 10 s");
    stream
}

/// How many `EXISTS` commands Redis has run: reading the stream figures
/// takes one per stream, and nothing else of campaign-service sends it
/// once it runs, so this counts the live channel's reads.
fn stats_reads(redis: &RedisServer) -> u64 {
    let stats = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "INFO", "commandstats"])
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&stats.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_exists:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

/// The stream figures' reads made over `window`.
async fn reads_over(redis: &RedisServer, window: Duration) -> u64 {
    let before = stats_reads(redis);
    tokio::time::sleep(window).await;
    stats_reads(redis) - before
}

/// Asserts that GET `path` is refused with a 503 whose JSON error names
/// the service's `limit` (e.g. `2 requests`) it is at.
async fn assert_at_limit(port: u16, path: &str, limit: &str) {
    let (status, body) = get(port, path).await;
    assert_eq!(status, 503, "{path} is refused: {body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error["error"],
        format!("the service is at its limit of {limit} at once; try again")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_live_clients_cost_what_one_costs() {
    let app = spawn_app(|_| {}).await.unwrap();
    let window = Duration::from_secs(3);

    let first = open_live(app.port()).await;
    let one = reads_over(&app.redis, window).await;
    assert!(one > 0, "one client's channel reads the stream figures");

    let mut clients = vec![first];
    for _ in 0..39 {
        clients.push(open_live(app.port()).await);
    }
    let forty = reads_over(&app.redis, window).await;
    assert!(
        forty <= one * 3 / 2 + 2,
        "40 clients read the stream figures {forty} times in {window:?}, one {one} times: the figures are read per client"
    );

    // Once every client has left, nothing is read for them any more.
    drop(clients);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let none = reads_over(&app.redis, window).await;
    assert_eq!(none, 0, "no client listens, yet the figures are still read");
}

/// Sends `request` (a whole HTTP/1.1 request but its `Host` and
/// `Connection: close` headers) and returns the status and the body.
async fn send(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (line, rest) = request.split_once("\r\n").unwrap();
    let request = format!("{line}\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{rest}");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_string())
}

/// GETs `path`.
async fn get(port: u16, path: &str) -> (u16, String) {
    send(port, &format!("GET {path} HTTP/1.1\r\n\r\n")).await
}

/// A request whose handler is running and waits for the rest of its body:
/// it holds its place until the connection is dropped.
async fn half_sent_post(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "POST /api/v1/campaigns HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_bounds_a_service_answers_503_and_its_health_still_answers() {
    let app = spawn_app(|config| {
        config.service.capacity.max_requests = 2;
        config.service.capacity.max_streams = 2;
    })
    .await
    .unwrap();
    let health_answers = || async {
        assert_eq!(get(app.port(), "/health").await.0, 200, "/health answers");
        assert_eq!(get(app.port(), "/ready").await.0, 200, "/ready answers");
    };

    // Two live channels fill the streams' places, not the requests'.
    let streams = vec![open_live(app.port()).await, open_live(app.port()).await];
    // A third live channel is refused.
    assert_at_limit(app.port(), "/api/v1/campaigns/events", "2 event streams").await;
    assert_eq!(get(app.port(), "/api/v1/campaigns").await.0, 200);
    health_answers().await;

    // Two requests in their handlers fill the requests' places.
    let posts = vec![half_sent_post(app.port()).await, half_sent_post(app.port()).await];
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A third request is refused.
    assert_at_limit(app.port(), "/api/v1/campaigns", "2 requests").await;
    health_answers().await;

    // Places are given back when their clients leave.
    drop(posts);
    drop(streams);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(app.port(), "/api/v1/campaigns").await.0, 200);
    drop(open_live(app.port()).await);
}
