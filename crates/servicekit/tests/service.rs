//! A service built with [`Service`] against a real Redis and SQLite: it
//! binds a free port at build, consumes what it registered, serves its
//! routes beside the shared ones, stops everything on one token, and names
//! what it cannot reach in one line.

mod common;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::{ApiDoc, Hello, SPEC};
use eventstore::{Delivery, Envelope, HandleError, Publisher, RedisTarget};
use servicekit::config::ServiceSettings;
use servicekit::service::Service;
use testkit::{free_port, RedisServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Settings on `redis_url`, an SQLite file in `dir` and port 0.
fn settings(redis_url: &str, dir: &tempfile::TempDir) -> ServiceSettings {
    ServiceSettings::on(redis_url, &format!("sqlite://{}/demo.db", dir.path().display()))
}

/// GETs `url`; returns the status and the body.
async fn get_text(url: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || match ureq::get(&url).call() {
        Ok(response) | Err(ureq::Error::Status(_, response)) => {
            (response.status(), response.into_string().unwrap())
        }
        Err(error) => panic!("GET {url}: {error}"),
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_consumes_serves_and_stops_on_its_token() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (handled, mut received) = mpsc::channel(16);
    let (ended, mut task_ended) = mpsc::channel(1);

    let service = Service::build(&SPEC, &settings(&redis.url(), &dir))
        .await
        .unwrap();
    let port = service.port();
    assert_ne!(port, 0, "port 0 picks a free port at build");
    assert!(service.consumer().starts_with("demo-service@"));
    assert!(service.consumer().contains(&format!(":{port}-")));
    let service = service
        .consume_with(
            "demo:hellos",
            move |delivery: Delivery| {
                let handled = handled.clone();
                async move {
                    let hello: Hello = delivery.envelope.decode()?;
                    handled.send(hello.name).await.unwrap();
                    Ok::<(), HandleError>(())
                }
            },
            |worker| worker.handler_timeout = Duration::from_secs(1),
        )
        .trim(&["demo:hellos"])
        .spawn(move |shutdown| async move {
            shutdown.cancelled().await;
            ended.send(()).await.unwrap();
        })
        .serve(
            Router::new().route("/hello", get(|| async { "hello" })),
            <ApiDoc as utoipa::OpenApi>::openapi(),
        );
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run(shutdown.clone()));

    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(get_text(format!("{base}/hello")).await, (200, "hello".into()));
    assert_eq!(get_text(format!("{base}/ready")).await.0, 200);
    let (status, document) = get_text(format!("{base}/api-docs/openapi.json")).await;
    assert_eq!(status, 200);
    assert!(
        document.contains("demo-service") && document.contains("/ready"),
        "{document}"
    );

    let target = RedisTarget::parse(&redis.url()).unwrap();
    let publisher = Publisher::new(target.shared().await.unwrap());
    let hello = Envelope::new(&Hello { name: "Ada".into() }).unwrap();
    publisher.publish("demo:hellos", &hello).await.unwrap();
    let name = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
    assert_eq!(name.unwrap().as_deref(), Some("Ada"));

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(5), running).await;
    stopped.expect("stops within seconds").unwrap().unwrap();
    assert!(task_ended.try_recv().is_ok(), "its own task saw the shutdown");
}

#[tokio::test]
async fn what_it_cannot_reach_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let error = Service::build(&SPEC, &settings(&dead, &dir)).await.err().unwrap();
    let line = format!("{error:#}");
    assert!(
        line.starts_with("cannot connect to Redis at redis://127.0.0.1:"),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");

    let redis = RedisServer::start();
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let settings = ServiceSettings {
        port,
        ..settings(&redis.url(), &dir)
    };
    let error = Service::build(&SPEC, &settings).await.err().unwrap();
    assert_eq!(
        format!("{error:#}"),
        format!("port {port} is already in use; set DEMO_PORT to another port")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_stream_is_consumed_in_every_partition_and_the_count_is_agreed() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let split = ServiceSettings {
        stream_partitions: 4,
        ..settings(&redis.url(), &dir)
    };
    let hellos = eventstore::Partitioned::new("demo:hellos", 4);
    let (handled, mut received) = mpsc::channel(64);
    let service = Service::build(&SPEC, &split)
        .await
        .unwrap()
        .consume(&hellos, move |delivery: Delivery| {
            let handled = handled.clone();
            async move {
                let hello: Hello = delivery.envelope.decode()?;
                handled.send(hello.name).await.unwrap();
                Ok::<(), HandleError>(())
            }
        })
        .serve(Router::new(), <ApiDoc as utoipa::OpenApi>::openapi());
    assert_eq!(service.partitions(), 4);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run(shutdown.clone()));

    let target = RedisTarget::parse(&redis.url()).unwrap();
    let publisher = Publisher::new(target.shared().await.unwrap());
    let names: Vec<String> = (0..40).map(|n| format!("user{n}")).collect();
    let events: Vec<(&str, Envelope)> = names
        .iter()
        .map(|name| {
            (
                hellos.for_key(name),
                Envelope::new(&Hello { name: name.clone() }).unwrap(),
            )
        })
        .collect();
    for partition in hellos.partitions() {
        assert!(
            events.iter().any(|(stream, _)| stream == partition),
            "{partition} gets some"
        );
    }
    publisher.publish_many(&events).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < names.len() {
        let name = tokio::time::timeout(Duration::from_secs(10), received.recv()).await;
        seen.push(name.expect("every partition is read").unwrap());
    }
    seen.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(seen, expected);

    // Another count than the one the store's streams are split into is
    // refused, in one line that says how to mend it.
    let other = ServiceSettings {
        stream_partitions: 2,
        ..settings(&redis.url(), &dir)
    };
    let error = Service::build(&SPEC, &other).await.err().unwrap();
    let line = format!("{error:#}");
    assert!(
        line.starts_with("STREAM_PARTITIONS is 2, but the streams in this Redis are split into 4"),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// The scheduling policy of the thread that calls it, as Linux's
/// `/proc/thread-self/stat` gives it (its 41st field): 0 is the usual
/// policy, 5 the idle one.
async fn this_threads_policy() -> String {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[38].to_string()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reads_of_the_routes_marked_run_at_the_idle_priority_and_nothing_else_does() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let service = Service::build(&SPEC, &settings(&redis.url(), &dir))
        .await
        .unwrap();
    let port = service.port();
    let routes = Router::new()
        .route("/idle", get(this_threads_policy).post(this_threads_policy))
        .route("/usual", get(this_threads_policy));
    let service = service
        .read_at_idle_priority(&["/idle"])
        .serve(routes, <ApiDoc as utoipa::OpenApi>::openapi());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run(shutdown.clone()));

    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(get_text(format!("{base}/idle")).await, (200, "5".into()));
    assert_eq!(get_text(format!("{base}/usual")).await, (200, "0".into()));
    let posted = tokio::task::spawn_blocking(move || {
        ureq::post(&format!("{base}/idle"))
            .set("content-type", "application/json")
            .send_string("")
            .unwrap()
            .into_string()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(posted, "0", "a write to the same route runs as usual");

    shutdown.cancel();
    running.await.unwrap().unwrap();
}
