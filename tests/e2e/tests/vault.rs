//! Secrets from Vault: a stack whose services learn where Redis, their
//! database and the SMTP relay are, and their passwords (the relay's in
//! its URL) and API token,
//! only from a real OpenBao; a campaign runs through it, its emails
//! signed with the DKIM key from Vault, and no secret value shows in any
//! log line or HTTP answer.

use std::time::Duration;

use contracts::notification_id;
use e2e::{service_names, Stack, Wiring};
use serde_json::json;
use testkit::{MailDev, OpenBao, Persistence, Postgres, RedisServer};

const USERS: u64 = 200;

/// A value no log line would hold by chance.
fn secret(what: &str) -> String {
    format!("{what}-{}-x7Qz", std::process::id())
}

/// An Ed25519 private key that openssl makes, as PEM.
fn dkim_key() -> String {
    let output = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519"])
        .output()
        .expect("openssl (./test.sh installs it)");
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

/// The body of `GET path` on `service`, as text, after asserting its 200.
fn text(stack: &Stack, service: &str, path: &str) -> String {
    let response = ureq::get(&format!("http://127.0.0.1:{}{path}", stack.port(service)))
        .call()
        .unwrap_or_else(|e| panic!("GET {path} on {service}: {e}"));
    assert_eq!(response.status(), 200, "GET {path} on {service}");
    response.into_string().expect("a text body")
}

#[test]
fn the_services_take_their_secrets_from_vault_and_never_show_them() {
    let redis_password = secret("redis-pass");
    let smtp_password = secret("smtp-pass");
    let database_password = secret("db-pass");
    let api_token = secret("api-token");
    let vault_token = secret("vault-token");
    let dkim_key = dkim_key();
    // The key's base64 line: what would show if the key did.
    let dkim_secret = dkim_key.lines().nth(1).unwrap().to_string();

    let redis = RedisServer::start_with(Persistence::AofEverySec, Some(&redis_password));
    let mail = MailDev::start_with_auth(Some(("comms", &smtp_password)));
    let postgres = Postgres::start();
    // The test cluster trusts loopback, so any password is accepted; it is
    // still a secret that must never be shown.
    let campaigns_db =
        postgres
            .database("campaigns")
            .replacen("postgres@", &format!("postgres:{database_password}@"), 1);
    let vault = OpenBao::start(&vault_token);
    let redis_url = redis.url();
    let relays = format!(
        "smtp://comms:{smtp_password}@127.0.0.1:{}?name=maildev",
        mail.smtp_port()
    );
    for service in service_names() {
        let mut pairs = vec![("redis_url", redis_url.as_str())];
        match service {
            "email-service" => pairs.extend([
                // The relay, with its login, as one URL (EMAIL_RELAYS).
                ("relays", relays.as_str()),
                // MailDev offers no TLS: the login crosses loopback in clear.
                ("smtp_allow_plaintext_auth", "true"),
                ("dkim_private_key", dkim_key.as_str()),
                ("dkim_selector", "vault"),
            ]),
            "campaign-service" => {
                pairs.extend([("api_token", api_token.as_str()), ("database_url", &campaigns_db)])
            }
            "user-service" | "notification-service" => pairs.push(("api_token", api_token.as_str())),
            _ => {}
        }
        vault.put(&format!("secret/comms/dev/{service}"), &pairs);
    }

    let stack = Stack::start_on(
        USERS,
        redis,
        mail,
        Wiring::Vault {
            addr: vault.addr(),
            token: vault_token.clone(),
        },
        // Every library's debug lines too: none may carry a secret.
        vec![("RUST_LOG".into(), "debug".into())],
    );
    let body = json!({ "name": "vault", "subject": "Hi {{ name }}", "body": "For {{ email }}" });
    let (status, refused) = stack.call("POST", "campaign-service", "/api/v1/campaigns", None, Some(&body));
    assert_eq!(status, 401, "the API token from Vault guards writes: {refused}");
    let (status, _) = stack.call("GET", "user-service", "/api/v1/users", None, None);
    assert_eq!(status, 401, "and the users' personal data");
    let (status, page) = stack.call("GET", "user-service", "/api/v1/users", Some(&api_token), None);
    assert_eq!(status, 200, "{page}");

    let (status, campaign) = stack.call(
        "POST",
        "campaign-service",
        "/api/v1/campaigns",
        Some(&api_token),
        Some(&body),
    );
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap();
    let done = stack.wait_completed(id, Duration::from_secs(90));
    assert_eq!(done["progress"]["sent"], USERS, "{done}");
    assert_eq!(
        stack.emails().len() as u64,
        USERS,
        "every email went through the SMTP server that needs the password from Vault"
    );
    let record = stack.get("email-service", "/api/v1/dkim");
    assert_eq!(record["name"], "vault._domainkey.example.com", "{record}");
    assert!(
        record["txt"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=ed25519; p="),
        "{record}"
    );
    for email in stack.emails() {
        let signature = email["headers"]["dkim-signature"].as_str().unwrap_or_default();
        let signature = signature.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            signature.contains("d=example.com; s=vault;"),
            "signed with the key from Vault: {}",
            email["headers"]
        );
    }
    let one = format!("/api/v1/notifications/{}", notification_id(id, 1));
    let (status, _) = stack.call("GET", "notification-service", &one, None, None);
    assert_eq!(status, 401, "a notification holds its recipient's address");
    let (status, notification) = stack.call("GET", "notification-service", &one, Some(&api_token), None);
    assert_eq!(status, 200, "{notification}");
    assert_eq!(notification["status"], "sent", "{notification}");

    let secrets = [
        &redis_password,
        &smtp_password,
        &database_password,
        &api_token,
        &vault_token,
        &dkim_secret,
    ];
    let mut answers: Vec<(String, String)> = [&refused, &page, &campaign, &done, &notification]
        .iter()
        .map(|body| ("an answer above".to_string(), body.to_string()))
        .collect();
    for service in service_names() {
        let mut paths = vec!["/health", "/ready", "/metrics", "/api-docs/openapi.json"];
        if service == "campaign-service" {
            paths.push("/api/v1/streams");
        }
        if service == "email-service" {
            paths.push("/api/v1/dkim");
        }
        for path in paths {
            answers.push((format!("GET {path} on {service}"), text(&stack, service, path)));
        }
    }
    for (what, body) in &answers {
        for secret in secrets {
            assert!(!body.contains(secret.as_str()), "{what} shows a secret: {body}");
        }
    }

    for service in service_names() {
        let log = stack.log(service);
        assert!(
            log.contains("secrets read from Vault") && log.contains(&format!("secret/comms/dev/{service}")),
            "{service} names where its secrets came from:\n{log}"
        );
        for line in log.lines() {
            for secret in secrets {
                assert!(
                    !line.contains(secret.as_str()),
                    "{service} logged a secret: {line}"
                );
            }
        }
    }
}
