//! A whole comms stack for a test: a private `redis-server` (or Redis
//! Cluster) and MailDev on free ports, and the binaries of the services of
//! `stack.list` (built by `cargo build --bins` in the same profile as the
//! tests) as real processes that a test can SIGKILL and restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::ready::{http_ready, wait_while_running, NotReady};
use testkit::{free_port, MailDev, Persistence, RedisServer};

mod event_store;
mod exactly_once;
pub mod mailbox;
pub mod manifest;
mod redis_cli;
pub mod reports;
mod stores;
pub mod timing;
pub mod webhooks;

pub use event_store::EventStore;
pub use manifest::service_names;

/// Waits until `service` (one instance of it, called `name` in the error)
/// answers its readiness path (`stack.list`'s) on `port`, for at most
/// `timeout`, and only while `running` says that what serves it (its
/// process, or its task) still runs. The one wait of the end-to-end tests:
/// [`Stack`] waits so for the processes it starts, the in-process tests
/// for their tasks. It is `testkit::ready`'s loop, so its errors are
/// `testkit::ready`'s, in the same words as `scripts/ready.sh`'s.
pub fn wait_ready(
    service: &str,
    name: &str,
    port: u16,
    timeout: Duration,
    running: impl FnMut() -> bool,
) -> Result<(), NotReady> {
    let url = format!("http://127.0.0.1:{port}{}", manifest::service(service).ready_path);
    wait_while_running(name, timeout, running, || http_ready(&url))
}

/// The progress of a completed campaign of `total` recipients, each of
/// whose email was sent: what most scenarios end in.
pub fn all_sent(total: u64) -> Value {
    serde_json::json!({ "total": total, "sent": total, "failed": 0, "dead_lettered": 0, "suppressed": 0, "cancelled": 0, "pending": 0 })
}

/// How the services learn where Redis and the SMTP server are.
pub enum Wiring {
    /// From environment variables (`REDIS_URL`, `SMTP_HOST`, `SMTP_PORT`).
    Environment,
    /// Only from their secrets in Vault: the services get `VAULT_ADDR` and
    /// `VAULT_TOKEN`, and no address of Redis or SMTP.
    Vault {
        /// `VAULT_ADDR`.
        addr: String,
        /// `VAULT_TOKEN`.
        token: String,
    },
}

/// A running stack.
pub struct Stack {
    /// The event store.
    pub redis: EventStore,
    /// The SMTP server.
    pub mail: MailDev,
    dir: tempfile::TempDir,
    ports: BTreeMap<&'static str, u16>,
    users: u64,
    env: Vec<(String, String)>,
    wiring: Wiring,
    processes: BTreeMap<&'static str, Child>,
    /// Further instances of services, beside those in `processes`, by
    /// port.
    extra_instances: BTreeMap<u16, Child>,
}

impl Stack {
    /// Starts everything, with `users` seeded users, and waits until each
    /// service is ready.
    pub fn start(users: u64) -> Self {
        Self::start_with(users, Vec::new())
    }

    /// Like [`Stack::start`], with extra environment for the services
    /// (e.g. database URLs).
    pub fn start_with(users: u64, env: Vec<(String, String)>) -> Self {
        Self::start_on(
            users,
            RedisServer::start_with(Persistence::AofEverySec, None),
            MailDev::start(),
            Wiring::Environment,
            env,
        )
    }

    /// Starts the services on the given servers, wired as `wiring` says,
    /// with extra environment `env`.
    pub fn start_on(
        users: u64,
        redis: impl Into<EventStore>,
        mail: MailDev,
        wiring: Wiring,
        env: Vec<(String, String)>,
    ) -> Self {
        let mut stack = Self {
            redis: redis.into(),
            mail,
            dir: tempfile::tempdir().expect("temporary directory"),
            ports: service_names().map(|name| (name, free_port())).collect(),
            users,
            env,
            wiring,
            processes: BTreeMap::new(),
            extra_instances: BTreeMap::new(),
        };
        for name in service_names() {
            stack.start_service(name);
        }
        stack
    }

    /// The HTTP port of `service`.
    pub fn port(&self, service: &str) -> u16 {
        self.ports[service]
    }

    /// Starts `service` and waits until its readiness path answers 200.
    pub fn start_service(&mut self, service: &'static str) {
        let mut child = self.spawn(service, self.port(service), &[]);
        self.wait_ready(service, service, &mut child, self.port(service));
        self.processes.insert(service, child);
    }

    /// Starts one more instance of `service`, on a port of its own, in the
    /// same consumer group and on the same database; waits until it is
    /// ready and returns its port.
    pub fn start_extra_instance(&mut self, service: &'static str) -> u16 {
        self.start_extra_instance_with(service, &[])
    }

    /// Like [`Stack::start_extra_instance`], with environment `env` for
    /// this instance alone (e.g. a skewed clock through `faketime`).
    pub fn start_extra_instance_with(&mut self, service: &'static str, env: &[(&str, &str)]) -> u16 {
        let port = free_port();
        let mut child = self.spawn(service, port, env);
        self.wait_ready(service, &format!("{service} (extra instance)"), &mut child, port);
        self.extra_instances.insert(port, child);
        port
    }

    /// SIGKILLs the extra instance listening on `port`, as a crash would.
    pub fn kill_extra_instance(&mut self, port: u16) {
        let mut child = self
            .extra_instances
            .remove(&port)
            .expect("an extra instance on that port");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// Waits ([`wait_ready`]) until the instance `child` of `service`
    /// answers 200 on `port`; panics with the services' log tails if it
    /// exits or takes over a minute.
    fn wait_ready(&self, service: &str, name: &str, child: &mut Child, port: u16) {
        wait_ready(service, name, port, Duration::from_secs(60), || {
            matches!(child.try_wait(), Ok(None))
        })
        .unwrap_or_else(|error| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{error}\n{}", self.log_tails())
        });
    }

    /// Spawns `service` listening on `port`, logging to its log file, with
    /// `extra` environment beside the stack's.
    fn spawn(&self, service: &'static str, port: u16, extra: &[(&str, &str)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{service}.log")))
            .expect("service log");
        let port_variable = port_variable(service);
        let mut command = Command::new(binary(service));
        command.env_clear();
        match &self.wiring {
            Wiring::Environment => command
                .env("REDIS_URL", self.redis.url())
                .env("SMTP_HOST", "127.0.0.1")
                .env("SMTP_PORT", self.mail.smtp_port().to_string()),
            Wiring::Vault { addr, token } => command.env("VAULT_ADDR", addr).env("VAULT_TOKEN", token),
        };
        command
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CONFIG_DIR", self.dir.path().join("no-config"))
            .env("DATA_DIR", self.dir.path().join("data"))
            .env("SEED_USERS", self.users.to_string())
            .env("CLAIM_IDLE_MS", "1500")
            // A restarted instance is a new consumer: a killed user-service's
            // expansion resumes once its lease runs out.
            .env("USER_EXPANSION_LEASE_MS", "5000")
            .env("RUST_LOG", "info")
            .env(port_variable, port.to_string())
            // The dashboard, opened at 127.0.0.1, reads user-service's list.
            .env(
                "PUBLIC_URL",
                format!("http://127.0.0.1:{}", self.port("campaign-service")),
            )
            .env(
                "USER_SERVICE_URL",
                format!("http://127.0.0.1:{}", self.port("user-service")),
            )
            .env(
                "NOTIFICATION_SERVICE_URL",
                format!("http://127.0.0.1:{}", self.port("notification-service")),
            )
            .envs(self.env.iter().cloned())
            .envs(extra.iter().copied())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {service} ({e}); build it with `cargo build --bins`"))
    }

    /// SIGKILLs `service`, as a crash would.
    pub fn kill(&mut self, service: &str) {
        let mut child = self.processes.remove(service).expect("service is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// Sends SIGTERM to `service`, as an orderly stop does, and hands its
    /// process over for the caller to see how and when it exits.
    pub fn terminate(&mut self, service: &str) -> Child {
        let child = self.processes.remove(service).expect("service is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM to {service}");
        child
    }

    /// The value of the Prometheus sample `series` (name and labels, as
    /// `/metrics` of `service` prints them), or `None` if it is absent.
    pub fn metric(&self, service: &str, series: &str) -> Option<f64> {
        let text = ureq::get(&format!("http://127.0.0.1:{}/metrics", self.port(service)))
            .call()
            .unwrap_or_else(|e| panic!("GET /metrics on {service}: {e}"))
            .into_string()
            .expect("text body");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// GETs `path` from `service` and returns the JSON body.
    pub fn get(&self, service: &str, path: &str) -> Value {
        ureq::get(&format!("http://127.0.0.1:{}{path}", self.port(service)))
            .call()
            .unwrap_or_else(|e| panic!("GET {path} on {service}: {e}"))
            .into_json()
            .expect("JSON body")
    }

    /// The figures of `stream` in campaign-service's `/api/v1/streams`
    /// (a split stream's added up, its partitions inside).
    pub fn stream_figures(&self, stream: &str) -> Value {
        let streams = self.get("campaign-service", "/api/v1/streams");
        streams
            .as_array()
            .expect("a list of streams")
            .iter()
            .find(|figures| figures["stream"] == stream)
            .unwrap_or_else(|| panic!("{stream} is not listed: {streams}"))
            .clone()
    }

    /// Creates a campaign named `name` with these templates (asserting the
    /// 201); returns its id.
    pub fn create_campaign(&self, name: &str, subject: &str, body: &str) -> String {
        let request = serde_json::json!({ "name": name, "subject": subject, "body": body });
        let (status, campaign) = self.post("campaign-service", "/api/v1/campaigns", &request);
        assert_eq!(status, 201, "{campaign}");
        campaign["id"].as_str().expect("campaign id").to_string()
    }

    /// POSTs `body` to `path` on `service`; returns status and JSON body
    /// (error statuses included).
    pub fn post(&self, service: &str, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", service, path, None, Some(body))
    }

    /// Sends `method` to `path` on `service`, with `Authorization: Bearer
    /// <token>` when given; returns status and JSON body (error statuses
    /// included).
    pub fn call(
        &self,
        method: &str,
        service: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}{path}", self.port(service));
        let body = body.map(Value::to_string);
        let (status, text) = testkit::http::send(method, &url, token, body.as_deref());
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path} on {service}: not JSON: {text}"));
        (status, body)
    }

    /// Everything `service` has logged so far.
    pub fn log(&self, service: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{service}.log"))).unwrap_or_default()
    }

    /// Every email MailDev received.
    pub fn emails(&self) -> Vec<Value> {
        ureq::get(&format!("{}/email", self.mail.api_url()))
            .call()
            .expect("maildev API")
            .into_json()
            .expect("maildev JSON")
    }

    /// Puts user `id`'s address on the suppression list (reason
    /// `manual`) and waits until user-service lists it and has published
    /// the change on `comms:suppressions`; returns the address.
    pub fn suppress_user(&self, id: i64) -> String {
        let address = self.get("user-service", &format!("/api/v1/users/{id}"))["email"]
            .as_str()
            .expect("the user's address")
            .to_string();
        let changes = self.entries_added(contracts::consent::SUPPRESSIONS);
        let (status, body) = self.post(
            "user-service",
            "/api/v1/suppressions",
            &serde_json::json!({ "address": address }),
        );
        assert_eq!(status, 202, "{body}");
        self.wait_for("the suppression", Duration::from_secs(30), || {
            self.get("user-service", "/api/v1/suppressions")["suppressions"]
                .as_array()
                .is_some_and(|listed| listed.iter().any(|entry| entry["address"] == address.as_str()))
        });
        self.wait_for("the change published", Duration::from_secs(30), || {
            self.entries_added(contracts::consent::SUPPRESSIONS) > changes
        });
        address
    }

    /// Waits until `check` holds, for at most `timeout`; panics naming
    /// `what` with the services' log tails otherwise.
    pub fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn() -> bool) {
        let start = Instant::now();
        while !check() {
            assert!(
                start.elapsed() < timeout,
                "{what} not within {timeout:?}\n{}",
                self.log_tails()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls notification-service's per-campaign counts until they equal
    /// `expected`, and returns them (the last seen after `timeout`): its group
    /// reads the outcomes at its own pace, and after a crash its pending
    /// entries come back only when re-claimed, trailing campaign-service.
    pub fn notification_counts(&self, campaign_id: &str, expected: &Value, timeout: Duration) -> Value {
        let path = format!("/api/v1/campaigns/{campaign_id}/notifications");
        let start = Instant::now();
        loop {
            let counts = self.get("notification-service", &path);
            if &counts == expected || start.elapsed() > timeout {
                return counts;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls `campaign_id` until `completed`; panics with the services' log
    /// tails after `timeout`.
    pub fn wait_completed(&self, campaign_id: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let campaign = self.get("campaign-service", &format!("/api/v1/campaigns/{campaign_id}"));
            if campaign["status"] == "completed" {
                return campaign;
            }
            if start.elapsed() > timeout {
                panic!(
                    "campaign not completed after {timeout:?}: {campaign}\n{}",
                    self.log_tails()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of each service's log, for failure messages.
    pub fn log_tails(&self) -> String {
        service_names()
            .map(|service| {
                let log = self.log(service);
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!(
                    "--- {service}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for child in self
            .processes
            .values_mut()
            .chain(self.extra_instances.values_mut())
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The variable that sets `service`'s HTTP port (`USER_PORT`, ...; its
/// variable in `stack.list`).
pub fn port_variable(service: &str) -> &'static str {
    manifest::service(service).port_variable
}

/// A command running `service`'s binary with a clean environment (only
/// `PATH`, and no configuration file).
pub fn service_command(service: &str) -> Command {
    let mut command = Command::new(binary(service));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONFIG_DIR", "/nonexistent");
    command
}

/// The binary of `service` (`stack.list`'s), next to the test executable's
/// `deps/` folder.
fn binary(service: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir.join(manifest::service(service).binary)
}
