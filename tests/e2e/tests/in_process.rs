//! The four services built in-process the way their binaries build them
//! (`build(config)`, then `run(shutdown)`), on free ports, sharing one
//! Redis: each answers `/ready` on the port it picked, and one token stops
//! them all within seconds.

use std::time::{Duration, Instant};

use servicekit::config::ServiceSettings;
use servicekit::service::Service;
use testkit::{MailDev, RedisServer};
use tokio_util::sync::CancellationToken;

/// Settings on `redis_url`, an SQLite file `database` in `dir`, port 0.
fn settings(redis_url: &str, dir: &tempfile::TempDir, database: &str) -> ServiceSettings {
    ServiceSettings {
        redis_url: redis_url.into(),
        database_url: format!("sqlite://{}/{database}", dir.path().display()).into(),
        ..ServiceSettings::new(0)
    }
}

/// Waits until `/ready` on `port` answers 200.
async fn wait_ready(port: u16) {
    let url = format!("http://127.0.0.1:{port}/ready");
    let start = Instant::now();
    loop {
        let get = url.clone();
        let ok = tokio::task::spawn_blocking(move || ureq::get(&get).call().is_ok())
            .await
            .unwrap();
        if ok {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{url} not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_builds_on_a_free_port_and_stops_on_its_token() {
    let redis = RedisServer::start();
    let mail = MailDev::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();

    let services: Vec<Service> = vec![
        campaign_service::build(campaign_service::config::Config {
            service: settings(&url, &dir, "campaigns.db"),
            ..Default::default()
        })
        .await
        .unwrap(),
        user_service::build(user_service::config::Config {
            service: settings(&url, &dir, "users.db"),
            seed_users: 10,
            ..Default::default()
        })
        .await
        .unwrap(),
        notification_service::build(notification_service::config::Config {
            service: settings(&url, &dir, "notifications.db"),
            ..Default::default()
        })
        .await
        .unwrap(),
        email_service::build(email_service::config::Config {
            service: settings(&url, &dir, "email.db"),
            smtp_port: mail.smtp_port(),
            ..Default::default()
        })
        .await
        .unwrap(),
    ];

    let shutdown = CancellationToken::new();
    let mut running = Vec::new();
    for service in services {
        let port = service.port();
        running.push(tokio::spawn(service.run(shutdown.clone())));
        wait_ready(port).await;
    }

    let asked = Instant::now();
    shutdown.cancel();
    for service in running {
        tokio::time::timeout(Duration::from_secs(8), service)
            .await
            .expect("stopped within seconds")
            .unwrap()
            .unwrap();
    }
    println!("all four stopped {:?} after the token", asked.elapsed());
}
