//! What a service does when what it needs is missing, and when it is told
//! to stop.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::{service_command, wait_ready};
use testkit::{free_port, MailDev, OpenBao, RedisServer};

/// Runs `command` to its end; returns its exit success and standard error.
fn run(command: &mut std::process::Command) -> (bool, String) {
    let output = command.output().expect("run service");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The single line a failed start prints (logs go to standard output).
fn error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, not: {stderr}");
    lines[0]
}

#[test]
fn a_missing_redis_is_named_in_one_line_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis://:hunter2@127.0.0.1:{}", free_port());
    let (ok, stderr) = run(service_command("user-service")
        .env("REDIS_URL", &url)
        .env("DATA_DIR", dir.path())
        .env("USER_PORT", free_port().to_string()));
    assert!(!ok);
    let line = error_line(&stderr);
    assert!(
        line.starts_with("user-service: cannot connect to Redis at redis://:***@127.0.0.1:"),
        "{line}"
    );
    assert!(!line.contains("hunter2"), "{line}");
}

#[test]
fn a_missing_smtp_server_and_a_taken_port_are_named_in_one_line() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let (ok, stderr) = run(service_command("email-service")
        .env("REDIS_URL", redis.url())
        .env("DATA_DIR", dir.path())
        .env("SMTP_PORT", smtp_port.to_string())
        .env("EMAIL_PORT", free_port().to_string()));
    assert!(!ok);
    let line = error_line(&stderr);
    assert!(
        line.starts_with(&format!(
            "email-service: cannot reach the SMTP server at 127.0.0.1:{smtp_port}"
        )),
        "{line}"
    );
    let (first, second) = (free_port(), free_port());
    let (ok, stderr) = run(service_command("email-service")
        .env("REDIS_URL", redis.url())
        .env("DATA_DIR", dir.path())
        .env(
            "EMAIL_RELAYS",
            format!("smtp://127.0.0.1:{first}?name=ses, smtp://127.0.0.1:{second}?name=backup"),
        )
        .env("EMAIL_PORT", free_port().to_string()));
    assert!(!ok);
    let line = error_line(&stderr);
    assert!(
        line.starts_with(
            "email-service: cannot reach any SMTP relay: relay unusable: cannot connect to relay ses"
        ) && line.contains(&format!("relay backup (127.0.0.1:{second})")),
        "{line}"
    );

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (ok, stderr) = run(service_command("notification-service")
        .env("REDIS_URL", redis.url())
        .env("DATA_DIR", dir.path())
        .env("NOTIFICATION_PORT", port.to_string()));
    assert!(!ok);
    assert_eq!(
        error_line(&stderr),
        format!("notification-service: port {port} is already in use; set NOTIFICATION_PORT to another port")
    );
}

#[test]
fn a_dkim_key_that_is_not_one_is_named_in_one_line_before_any_server_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens at REDIS_URL nor at the SMTP port: the setting is
    // named first.
    let (ok, stderr) = run(service_command("email-service")
        .env("REDIS_URL", format!("redis://127.0.0.1:{}", free_port()))
        .env("SMTP_PORT", free_port().to_string())
        .env("DATA_DIR", dir.path())
        .env("EMAIL_PORT", free_port().to_string())
        .env("EMAIL_DKIM_SELECTOR", "2026")
        .env(
            "EMAIL_DKIM_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3QtYS1rZXk=\n-----END PRIVATE KEY-----\n",
        ));
    assert!(!ok);
    let line = error_line(&stderr);
    assert!(
        line.starts_with(
            "email-service: EMAIL_DKIM_PRIVATE_KEY (dkim_private_key) is not an RSA or Ed25519 \
             private key in PEM"
        ),
        "{line}"
    );
    assert!(!line.contains("c2VjcmV0"), "the key is never shown: {line}");
}

#[test]
fn a_send_limit_that_is_not_one_is_named_in_one_line_before_any_server_is_asked() {
    for (variable, value, said) in [
        (
            "EMAIL_SEND_RATE",
            "fast",
            "expected f64 for key \"SEND_RATE\" in `EMAIL_`",
        ),
        (
            "EMAIL_SEND_RATE",
            "-5",
            "email-service: EMAIL_SEND_RATE must be a number",
        ),
        ("EMAIL_SEND_PER_DAY", "-1", "for key \"SEND_PER_DAY\" in `EMAIL_`"),
        (
            "EMAIL_DOMAIN_RATE",
            "-1",
            "email-service: EMAIL_DOMAIN_RATE must be a number",
        ),
        (
            "EMAIL_DOMAIN_LIMITS",
            "gmail..com=20/s",
            "email-service: EMAIL_DOMAIN_LIMITS: `gmail..com=20/s` names no domain",
        ),
        (
            "EMAIL_DOMAIN_LIMITS",
            "gmail.com=20",
            "email-service: EMAIL_DOMAIN_LIMITS: `gmail.com=20` has no unit",
        ),
        (
            "EMAIL_RELAYS",
            "smtp://a.example?weight=0",
            "email-service: EMAIL_RELAYS: no relay has a weight above 0",
        ),
        (
            "EMAIL_RELAYS",
            "smtp://a.example, smtp://ses:hunter2@b.example:587?pool=lots",
            "email-service: EMAIL_RELAYS: relay 2 has pool=lots",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (ok, stderr) = run(service_command("email-service")
            .env("REDIS_URL", format!("redis://127.0.0.1:{}", free_port()))
            .env("SMTP_PORT", free_port().to_string())
            .env("DATA_DIR", dir.path())
            .env("EMAIL_PORT", free_port().to_string())
            .env(variable, value));
        assert!(!ok, "{variable}={value} started");
        let line = error_line(&stderr);
        assert!(line.contains(said), "{variable}={value}: {line}");
        assert!(!line.contains("hunter2"), "a password is never shown: {line}");
    }
}

#[test]
fn sigterm_stops_every_service_within_seconds() {
    let redis = RedisServer::start();
    let mail = MailDev::start();
    let dir = tempfile::tempdir().unwrap();
    for service in e2e::service_names() {
        let port = free_port();
        let port_variable = e2e::port_variable(service);
        let mut child = service_command(service)
            .env("REDIS_URL", redis.url())
            .env("DATA_DIR", dir.path())
            .env("SEED_USERS", "100")
            .env("SMTP_PORT", mail.smtp_port().to_string())
            .env(port_variable, port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if let Err(not_ready) = wait_ready(service, service, port, Duration::from_secs(30), || {
            matches!(child.try_wait(), Ok(None))
        }) {
            panic!("{not_ready}");
        }
        let asked = Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = loop {
            if let Some(exit) = child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(8),
                "{service} still running 8 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "{service} exited with {exit}");
        println!("{service} stopped {:?} after SIGTERM", asked.elapsed());
    }
}

#[test]
fn a_vault_problem_is_named_in_one_line_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let vault = OpenBao::start("right-token-9f2c");
    let start = |addr: &str, token: &str| {
        run(service_command("notification-service")
            .env("VAULT_ADDR", addr)
            .env("VAULT_TOKEN", token)
            .env("DATA_DIR", dir.path())
            .env("NOTIFICATION_PORT", free_port().to_string()))
    };
    let path = "(secret/comms/dev/notification-service)";

    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let (ok, stderr) = start(&unreachable, "right-token-9f2c");
    assert!(!ok);
    let line = error_line(&stderr);
    assert!(
        line.starts_with(&format!(
            "notification-service: cannot read secrets from Vault at {unreachable} {path}: unreachable"
        )),
        "{line}"
    );

    let (ok, stderr) = start(&vault.addr(), "wrong-token-4b1d");
    assert!(!ok);
    let line = error_line(&stderr);
    assert!(
        line.contains(&format!("Vault at {} {path}: permission denied", vault.addr())),
        "{line}"
    );
    assert!(!line.contains("wrong-token-4b1d"), "{line}");

    let (ok, stderr) = start(&vault.addr(), "right-token-9f2c");
    assert!(!ok, "no secret for the service: it must not run half-configured");
    let line = error_line(&stderr);
    assert!(
        line.contains(&format!("{path}: no secret at this path")),
        "{line}"
    );
    assert!(!line.contains("right-token-9f2c"), "{line}");

    let (ok, stderr) = run(service_command("notification-service").env("VAULT_ADDR", vault.addr()));
    assert!(!ok);
    assert!(error_line(&stderr).contains("VAULT_TOKEN is not"), "{stderr}");
}

/// Starts user-service until it is ready (then stops it) or exits; true
/// when it got ready.
fn user_service_gets_ready(command: &mut std::process::Command) -> bool {
    let port = free_port();
    let mut child = command
        .env("USER_PORT", port.to_string())
        .env("SEED_USERS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_ready(
        "user-service",
        "user-service",
        port,
        Duration::from_secs(30),
        || matches!(child.try_wait(), Ok(None)),
    )
    .is_ok();
    let _ = child.kill();
    let _ = child.wait();
    ready
}

#[test]
fn configuration_layers_file_then_vault_then_environment() {
    let redis = RedisServer::start();
    let vault = OpenBao::start("0000");
    let dir = tempfile::tempdir().unwrap();
    let dead = |what: &str| format!("redis://{what}@127.0.0.1:{}", free_port());
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("prod.toml"),
        format!("[default]\nredis_url = \"{}\"\n", dead("file")),
    )
    .unwrap();
    let user_service = || {
        let mut command = service_command("user-service");
        command
            .env("APP_ENV", "prod")
            .env("API_TOKEN", "t")
            .env("CONFIG_DIR", &config_dir)
            .env("DATA_DIR", dir.path());
        command
    };
    assert!(
        !user_service_gets_ready(&mut user_service()),
        "the file names a dead Redis"
    );

    vault.put("secret/comms/prod/user-service", &[("redis_url", &redis.url())]);
    let with_vault = || {
        let mut command = user_service();
        command.env("VAULT_ADDR", vault.addr()).env("VAULT_TOKEN", "0000");
        command
    };
    assert!(
        user_service_gets_ready(&mut with_vault()),
        "Vault overrides the file"
    );
    assert!(
        !user_service_gets_ready(with_vault().env("REDIS_URL", dead("env"))),
        "the environment overrides Vault"
    );

    vault.put("secret/comms/dev/user-service", &[("redis_url", &dead("dev"))]);
    assert!(
        user_service_gets_ready(&mut with_vault()),
        "prod reads prod's secret, not dev's"
    );
}
