//! The four services built in-process the way their binaries build them
//! (`build(config)`, then `run(shutdown)`), on free ports, sharing one
//! Redis: each answers its readiness path on the port it picked, and one
//! token stops them all within seconds.

use std::time::{Duration, Instant};

use e2e::wait_ready;
use servicekit::config::ServiceSettings;
use servicekit::service::Service;
use testkit::{MailDev, RedisServer};
use tokio_util::sync::CancellationToken;

/// Settings on `redis_url`, an SQLite file `database` in `dir`, port 0.
fn settings(redis_url: &str, dir: &tempfile::TempDir, database: &str) -> ServiceSettings {
    ServiceSettings::on(
        redis_url,
        &format!("sqlite://{}/{database}", dir.path().display()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_builds_on_a_free_port_and_stops_on_its_token() {
    let redis = RedisServer::start();
    let mail = MailDev::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();

    let services: Vec<(&str, Service)> = vec![
        (
            "campaign-service",
            campaign_service::build(campaign_service::config::Config {
                service: settings(&url, &dir, "campaigns.db"),
                ..Default::default()
            })
            .await
            .unwrap(),
        ),
        (
            "user-service",
            user_service::build(user_service::config::Config {
                service: settings(&url, &dir, "users.db"),
                seed_users: 10,
                ..Default::default()
            })
            .await
            .unwrap(),
        ),
        (
            "notification-service",
            notification_service::build(notification_service::config::Config {
                service: settings(&url, &dir, "notifications.db"),
                ..Default::default()
            })
            .await
            .unwrap(),
        ),
        (
            "email-service",
            email_service::build(email_service::config::Config {
                service: settings(&url, &dir, "email.db"),
                smtp_port: mail.smtp_port(),
                ..Default::default()
            })
            .await
            .unwrap(),
        ),
    ];

    let shutdown = CancellationToken::new();
    let mut running = Vec::new();
    for (name, service) in services {
        let port = service.port();
        let task = tokio::spawn(service.run(shutdown.clone()));
        // The wait blocks: block_in_place hands this worker's tasks to
        // another thread meanwhile.
        tokio::task::block_in_place(|| {
            wait_ready(name, name, port, Duration::from_secs(30), || !task.is_finished())
        })
        .unwrap_or_else(|not_ready| panic!("{not_ready}"));
        running.push(task);
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
