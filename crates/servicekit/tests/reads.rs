//! A service's HTTP reads against its stream handlers, on a real Redis and
//! an SQLite file: the routes read on a pool of their own, so that a
//! handler's write goes through while every read place is held, and past
//! its bound on reads in flight a read is answered 503 with a JSON body
//! while `/health` and writes still answer.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use common::{ApiDoc, Hello, SPEC};
use eventstore::{Delivery, Envelope, HandleError, Publisher, RedisTarget};
use servicekit::config::ServiceSettings;
use servicekit::http::capacity::Capacity;
use servicekit::service::Service;
use sqlx::AnyPool;
use testkit::RedisServer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a slow read holds its place, its connection and its read
/// transaction.
const HELD: Duration = Duration::from_secs(3);

/// The route's state: the service's read pool, and how many slow reads
/// hold a read transaction open right now.
#[derive(Clone)]
struct Reads {
    pool: AnyPool,
    holding: Arc<AtomicUsize>,
}

/// `GET /slow`: reads the table in a transaction on the read pool and
/// holds it open for [`HELD`].
async fn slow(State(reads): State<Reads>) -> String {
    let mut tx = reads.pool.begin().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM demo")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    reads.holding.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(HELD).await;
    reads.holding.fetch_sub(1, Ordering::SeqCst);
    tx.commit().await.unwrap();
    count.to_string()
}

/// A service on `redis_url` and an SQLite file in `dir`, within
/// `capacity`, whose handler inserts each hello's name through the writer
/// pool and then sends it to `handled`. Returns its port, the slow reads'
/// counter, and the token that stops it.
async fn start(
    redis_url: &str,
    dir: &tempfile::TempDir,
    capacity: Capacity,
    handled: mpsc::Sender<String>,
) -> (u16, Arc<AtomicUsize>, CancellationToken) {
    let settings = ServiceSettings {
        redis_url: redis_url.into(),
        database_url: format!("sqlite://{}/demo.db", dir.path().display()).into(),
        capacity,
        ..ServiceSettings::new(0)
    };
    let service = Service::build(&SPEC, &settings).await.unwrap();
    let port = service.port();
    let db = service.db().clone();
    let reads = Reads {
        pool: service.reads().clone(),
        holding: Arc::new(AtomicUsize::new(0)),
    };
    let holding = reads.holding.clone();
    let routes = Router::new()
        .route("/slow", get(slow))
        .route("/write", post(|| async { "written" }))
        .with_state(reads);
    let service = service
        .consume("demo:hellos", move |delivery: Delivery| {
            let (db, handled) = (db.clone(), handled.clone());
            async move {
                let hello: Hello = delivery.envelope.decode()?;
                sqlx::query("INSERT INTO demo (name) VALUES ($1)")
                    .bind(&hello.name)
                    .execute(&db)
                    .await
                    .map_err(|error| HandleError::Retry(error.into()))?;
                handled.send(hello.name).await.unwrap();
                Ok::<(), HandleError>(())
            }
        })
        .serve(routes, <ApiDoc as utoipa::OpenApi>::openapi());
    let shutdown = CancellationToken::new();
    tokio::spawn(service.run(shutdown.clone()));
    (port, holding, shutdown)
}

/// `method` on `url`; returns the status, the `Retry-After` header and the
/// body.
async fn call(method: &'static str, url: String) -> (u16, Option<String>, String) {
    tokio::task::spawn_blocking(move || match ureq::request(method, &url).call() {
        Ok(response) | Err(ureq::Error::Status(_, response)) => (
            response.status(),
            response.header("retry-after").map(str::to_string),
            response.into_string().unwrap(),
        ),
        Err(error) => panic!("{method} {url}: {error}"),
    })
    .await
    .unwrap()
}

/// `count` slow reads started together, once all of them hold their read
/// transaction.
async fn hold_reads(
    port: u16,
    holding: &AtomicUsize,
    count: usize,
) -> Vec<tokio::task::JoinHandle<(u16, Option<String>, String)>> {
    let reads: Vec<_> = (0..count)
        .map(|_| tokio::spawn(call("GET", format!("http://127.0.0.1:{port}/slow"))))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while holding.load(Ordering::SeqCst) < count {
        assert!(Instant::now() < deadline, "the slow reads never all held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    reads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_writes_while_every_read_place_holds_a_read() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (handled, mut received) = mpsc::channel(4);
    let capacity = Capacity {
        max_reads: 4,
        read_wait_ms: 10_000,
        ..Capacity::default()
    };
    let (port, holding, shutdown) = start(&redis.url(), &dir, capacity, handled).await;
    let reads = hold_reads(port, &holding, 4).await;

    let started = Instant::now();
    let target = RedisTarget::parse(&redis.url()).unwrap();
    let publisher = Publisher::new(target.shared().await.unwrap());
    let hello = Envelope::new(&Hello { name: "Ada".into() }).unwrap();
    publisher.publish("demo:hellos", &hello).await.unwrap();
    let name = tokio::time::timeout(HELD, received.recv()).await;
    assert_eq!(
        name.expect("the handler's write waits for no reader").as_deref(),
        Some("Ada")
    );
    assert_eq!(holding.load(Ordering::SeqCst), 4, "while all four still hold");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    for read in reads {
        let (status, _, count) = read.await.unwrap();
        assert_eq!((status, count.as_str()), (200, "0"), "each read its own snapshot");
    }
    let (status, _, count) = call("GET", format!("http://127.0.0.1:{port}/slow")).await;
    assert_eq!(
        (status, count.as_str()),
        (200, "1"),
        "a later read sees the write"
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_bound_a_read_is_answered_503_in_json_and_health_and_writes_answer() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (handled, _received) = mpsc::channel(4);
    let capacity = Capacity {
        max_reads: 2,
        read_wait_ms: 200,
        ..Capacity::default()
    };
    let (port, holding, shutdown) = start(&redis.url(), &dir, capacity, handled).await;
    let base = format!("http://127.0.0.1:{port}");
    let reads = hold_reads(port, &holding, 2).await;

    let started = Instant::now();
    let (status, retry_after, body) = call("GET", format!("{base}/slow")).await;
    assert_eq!(status, 503, "a third read is refused: {body}");
    assert!(started.elapsed() >= Duration::from_millis(200), "after its wait");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error["error"],
        "the service is at its limit of 2 reads at once; try again"
    );
    let started = Instant::now();
    assert_eq!(call("GET", format!("{base}/health")).await.0, 200);
    assert_eq!(call("GET", format!("{base}/ready")).await.0, 200);
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "health waits for no read"
    );
    assert_eq!(
        call("POST", format!("{base}/write")).await.0,
        200,
        "a write is no read"
    );

    for read in reads {
        assert_eq!(read.await.unwrap().0, 200);
    }
    assert_eq!(
        call("GET", format!("{base}/slow")).await.0,
        200,
        "places come back"
    );
    shutdown.cancel();
}
