//! DKIM signing, checked from outside: emails that MailDev received, signed
//! with RSA and with Ed25519 keys that `openssl` made, verify with dkimpy
//! (a verifier that shares nothing with comms) given the record that
//! email-service serves at `GET /api/v1/dkim` instead of DNS; a changed
//! email does not. Settings that cannot sign stop the start with the
//! setting named and the key never shown.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use contracts::EMAILS;
use email_service::config::Config;
use email_service::dkim::{Dkim, DkimAlgorithm, DkimRecord, DkimSettings};
use email_service::mailer::Mailer;
use eventstore::{Envelope, Publisher, RedisTarget};
use secrecy::SecretString;
use serde_json::Value;
use servicekit::config::ServiceSettings;
use testkit::{MailDev, RedisServer};
use tokio_util::sync::CancellationToken;

use common::email;

/// A private key that `openssl genpkey` makes with `options`, as PEM.
fn openssl_key(options: &[&str]) -> String {
    let output = Command::new("openssl")
        .arg("genpkey")
        .args(options)
        .output()
        .expect("openssl (./test.sh installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn rsa_key(bits: u32) -> String {
    openssl_key(&[
        "-algorithm",
        "RSA",
        "-pkeyopt",
        &format!("rsa_keygen_bits:{bits}"),
    ])
}

fn ed25519_key() -> String {
    openssl_key(&["-algorithm", "ed25519"])
}

/// `pem` (PKCS#8) as PKCS#1, `BEGIN RSA PRIVATE KEY`.
fn traditional(pem: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["pkey", "-traditional"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout).unwrap()
}

fn settings(key: &str, selector: &str, domain: &str) -> DkimSettings {
    DkimSettings {
        dkim_private_key: SecretString::from(key.to_string()),
        dkim_selector: selector.into(),
        dkim_domain: domain.into(),
        dkim_algorithm: None,
    }
}

/// What dkimpy says of `message`, with `record` as the only DNS.
fn dkimpy(message: &[u8], record: &DkimRecord) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("../../tools/dkimpy/bin/python");
    assert!(
        python.exists(),
        "{} is missing; run ./test.sh, which installs dkimpy from PyPI",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(root.join("tests/dkim/verify.py"))
        .args([&record.name, &record.txt])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let output = child.wait_with_output().unwrap();
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// Every email MailDev holds, each as the bytes it received.
fn received(server: &MailDev) -> Vec<Vec<u8>> {
    let list: Vec<Value> = ureq::get(&format!("{}/email", server.api_url()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    list.iter()
        .map(|email| {
            let id = email["id"].as_str().unwrap();
            let mut raw = Vec::new();
            ureq::get(&format!("{}/email/{id}/source", server.api_url()))
                .call()
                .unwrap()
                .into_reader()
                .read_to_end(&mut raw)
                .unwrap();
            raw
        })
        .collect()
}

/// Asserts that dkimpy verifies `message` against `record`, signed with
/// `algorithm`, relaxed/relaxed, over the headers that matter.
fn assert_verifies(message: &[u8], record: &DkimRecord, algorithm: &str) {
    let verdict = dkimpy(message, record);
    assert_eq!(
        verdict["valid"],
        true,
        "{verdict}\n{}",
        String::from_utf8_lossy(message)
    );
    assert_eq!(verdict["a"], algorithm, "{verdict}");
    assert_eq!(verdict["c"], "relaxed/relaxed", "{verdict}");
    assert_eq!(verdict["d"], record.domain.as_str(), "{verdict}");
    assert_eq!(verdict["s"], record.selector.as_str(), "{verdict}");
    let signed: Vec<&str> = verdict["h"].as_str().unwrap().split(':').collect();
    for header in [
        "from",
        "subject",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(signed.contains(&header), "{header} signed: {verdict}");
    }
}

#[tokio::test]
async fn emails_signed_with_either_algorithm_verify_with_dkimpy_and_a_changed_one_does_not() {
    for (key, algorithm) in [(rsa_key(2048), "rsa-sha256"), (ed25519_key(), "ed25519-sha256")] {
        let server = MailDev::start();
        let mailer = Mailer::new(&Config {
            smtp_port: server.smtp_port(),
            dkim: settings(&key, "comms2026", "example.com"),
            ..Config::default()
        })
        .unwrap();
        let mut html = email("n-html");
        html.html = Some("<p>Hi <b>Ada</b></p>".into());
        let mut test_send = email("n-test");
        test_send.test = true;
        test_send.unsubscribe_url = None;
        test_send.to_name = "Ада Лавлейс, \"the Enchantress\"".into();
        test_send.subject = "Ünïcödé subject that is long enough to be folded by the encoder \
                             of the header, more than seventy-eight characters"
            .into();
        for request in [email("n-plain"), html, test_send] {
            mailer.send(&request, 0, &|| true).await.unwrap();
        }
        let record = mailer.dkim_record().unwrap().clone();
        let messages = received(&server);
        assert_eq!(messages.len(), 3);
        for message in &messages {
            let text = String::from_utf8_lossy(message);
            if text.contains("n-test@comms") {
                // No unsubscribe headers: the signature says they were absent.
                assert_eq!(dkimpy(message, &record)["valid"], true, "{algorithm}: {text}");
            } else {
                assert_verifies(message, &record, algorithm);
            }
            let forged = text.replacen("Subject: ", "Subject: Urgent: ", 1);
            assert_eq!(
                dkimpy(forged.as_bytes(), &record)["valid"],
                false,
                "{algorithm}: a changed subject fails"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn email_service_serves_the_record_its_emails_verify_against() {
    let redis = RedisServer::start();
    let server = MailDev::start();
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/email.db", dir.path().display());
    let service = email_service::build(Config {
        service: ServiceSettings::on(&redis.url(), &database),
        smtp_port: server.smtp_port(),
        mail_from: "comms <news@mail.example.org>".into(),
        dkim: settings(&traditional(&rsa_key(2048)), "s1", ""),
        ..Config::default()
    })
    .await
    .unwrap();
    let port = service.port();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run(shutdown.clone()));

    let url = format!("http://127.0.0.1:{port}/api/v1/dkim");
    let record: DkimRecord =
        tokio::task::spawn_blocking(move || ureq::get(&url).call().unwrap().into_json().unwrap())
            .await
            .unwrap();
    assert_eq!(record.domain, "mail.example.org", "MAIL_FROM's domain signs");
    assert_eq!(record.name, "s1._domainkey.mail.example.org");
    assert!(record.txt.starts_with("v=DKIM1; k=rsa; p=MII"), "{}", record.txt);

    let link = RedisTarget::parse(&redis.url()).unwrap().shared().await.unwrap();
    let publisher = Publisher::new(link);
    for id in ["n-1", "n-2"] {
        publisher
            .publish(EMAILS, &Envelope::new(&email(id)).unwrap())
            .await
            .unwrap();
    }
    let started = Instant::now();
    let messages = loop {
        let messages = tokio::task::block_in_place(|| received(&server));
        if messages.len() == 2 || started.elapsed() > Duration::from_secs(20) {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(messages.len(), 2, "both emails sent");
    for message in &messages {
        assert_verifies(message, &record, "rsa-sha256");
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_key_nothing_is_signed_and_the_route_says_what_to_set() {
    let redis = RedisServer::start();
    let server = MailDev::start();
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/email.db", dir.path().display());
    let service = email_service::build(Config {
        service: ServiceSettings::on(&redis.url(), &database),
        smtp_port: server.smtp_port(),
        ..Config::default()
    })
    .await
    .unwrap();
    let url = format!("http://127.0.0.1:{}/api/v1/dkim", service.port());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run(shutdown.clone()));
    let (status, body) = tokio::task::spawn_blocking(move || match ureq::get(&url).call() {
        Err(ureq::Error::Status(status, response)) => (status, response.into_json::<Value>().unwrap()),
        other => panic!("a 404, not {other:?}"),
    })
    .await
    .unwrap();
    assert_eq!(status, 404);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("EMAIL_DKIM_PRIVATE_KEY") && error.contains("EMAIL_DKIM_SELECTOR"),
        "{error}"
    );
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let mailer = Mailer::new(&Config {
        smtp_port: server.smtp_port(),
        ..Config::default()
    })
    .unwrap();
    mailer.send(&email("n-unsigned"), 0, &|| true).await.unwrap();
    let message = String::from_utf8(received(&server).remove(0)).unwrap();
    assert!(!message.contains("DKIM-Signature"), "{message}");
}

#[test]
fn settings_that_cannot_sign_name_the_setting_and_never_the_key() {
    let rsa = rsa_key(2048);
    let ed25519 = ed25519_key();
    let error = |settings: DkimSettings| {
        let error = Dkim::from_settings(&settings, "example.com")
            .expect_err("refused")
            .to_string();
        assert!(!error.contains('\n'), "one line: {error}");
        for secret in [&rsa, &ed25519] {
            let body = secret.lines().nth(1).unwrap();
            assert!(!error.contains(body), "the key is never shown: {error}");
        }
        error
    };

    let not_a_key = error(settings("comms-dev-key", "s", ""));
    assert!(not_a_key.starts_with("EMAIL_DKIM_PRIVATE_KEY"), "{not_a_key}");
    assert!(not_a_key.contains("found no PEM block"), "{not_a_key}");
    let ec = openssl_key(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let ec = error(settings(
        &ec.replace("BEGIN PRIVATE", "BEGIN EC PRIVATE"),
        "s",
        "",
    ));
    assert!(ec.contains("`BEGIN EC PRIVATE KEY`"), "{ec}");
    let truncated = error(settings(&rsa[..rsa.len() / 2], "s", ""));
    assert!(truncated.starts_with("EMAIL_DKIM_PRIVATE_KEY"), "{truncated}");

    let mut mismatch = settings(&rsa, "s", "");
    mismatch.dkim_algorithm = Some(DkimAlgorithm::Ed25519Sha256);
    let mismatch = error(mismatch);
    assert!(
        mismatch.contains("EMAIL_DKIM_ALGORITHM (dkim_algorithm) is ed25519-sha256")
            && mismatch.contains("an RSA key"),
        "{mismatch}"
    );
    let mut mismatch = settings(&ed25519, "s", "");
    mismatch.dkim_algorithm = Some(DkimAlgorithm::RsaSha256);
    assert!(error(mismatch).contains("an Ed25519 key"));
    let short = error(settings(&rsa_key(512), "s", ""));
    assert!(short.contains("512 bits"), "{short}");

    assert!(error(settings(&rsa, "", "")).starts_with("EMAIL_DKIM_SELECTOR"));
    for selector in ["comms_2026", "-comms", "a..b", "comms 1"] {
        let bad = error(settings(&rsa, selector, ""));
        assert!(
            bad.starts_with("EMAIL_DKIM_SELECTOR (dkim_selector) is not a DNS name"),
            "{bad}"
        );
    }
    for domain in ["localhost", "example..com", "exämple.com", "example.com-"] {
        let bad = error(settings(&rsa, "s", domain));
        assert!(
            bad.starts_with("EMAIL_DKIM_DOMAIN (dkim_domain"),
            "{domain}: {bad}"
        );
    }

    // A value read as a string: the algorithm names both choices.
    let read = |value: &str| serde_json::from_value::<DkimAlgorithm>(serde_json::json!(value));
    assert_eq!(read("ed25519").unwrap(), DkimAlgorithm::Ed25519Sha256);
    assert_eq!(read("rsa-sha256").unwrap(), DkimAlgorithm::RsaSha256);
    let bad = read("rsa-sha1").unwrap_err().to_string();
    assert!(
        bad.contains("`rsa-sha256`") && bad.contains("`ed25519-sha256`"),
        "{bad}"
    );
}

#[test]
fn keys_as_openssl_writes_them_sign_and_give_their_record() {
    assert!(Dkim::from_settings(&settings("", "s", "x"), "example.com")
        .unwrap()
        .is_none());

    let ed25519 = Dkim::from_settings(&settings(&ed25519_key(), "s", ""), "example.com")
        .unwrap()
        .unwrap();
    let record = ed25519.record();
    assert_eq!(
        (record.domain.as_str(), record.name.as_str()),
        ("example.com", "s._domainkey.example.com")
    );
    let txt = record.txt.strip_prefix("v=DKIM1; k=ed25519; p=").unwrap();
    assert_eq!(txt.len(), 44, "32 bytes in base64: {txt}");

    // PKCS#1 as well as PKCS#8; and a PEM on one line with `\n` for its
    // line breaks, as an environment variable may carry it.
    let pkcs8 = rsa_key(2048);
    let one_line = pkcs8.trim_end().replace('\n', "\\n");
    let records: Vec<DkimRecord> = [traditional(&pkcs8), pkcs8, one_line]
        .iter()
        .map(|pem| {
            Dkim::from_settings(&settings(pem, "s", "news.example.com"), "example.com")
                .unwrap()
                .unwrap()
                .record()
                .clone()
        })
        .collect();
    assert!(
        records[0].txt.starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"),
        "{}",
        records[0].txt
    );
    assert!(records.iter().all(|record| *record == records[0]));

    // A selector of digits alone, as the layers read it: a number.
    let read: DkimSettings =
        serde_json::from_value(serde_json::json!({"dkim_selector": 20_260_101})).unwrap();
    assert_eq!(read.dkim_selector, "20260101");
}
