//! How a send ends, against real SMTP servers: accepted; uncertain when the
//! message went out and no reply came in time, and within about twice the
//! SMTP timeout even when the server never speaks again; a connection-level
//! refusal (a 5xx greeting, AUTH, a 5xx to `MAIL FROM`) kept apart from a
//! recipient's; the relay's fault when nobody answers or the server
//! speaks no SMTP. A login never crosses a
//! connection without TLS unless that is allowed.

mod common;

use std::time::{Duration, Instant};

use email_service::config::{Config, TlsMode};
use email_service::mailer::{Mailer, SendError};
use testkit::{free_port, Answer, MailDev, SlowSmtp};

use common::email;

fn config(port: u16, timeout_ms: u64, auth: Option<(&str, &str)>) -> Config {
    let mut config = Config {
        smtp_port: port,
        smtp_timeout_ms: timeout_ms,
        ..Config::default()
    };
    if let Some((user, password)) = auth {
        config.smtp_user = user.into();
        config.smtp_password = password.to_string().into();
        // MailDev offers no TLS; these tests log in over loopback.
        config.smtp_allow_plaintext_auth = true;
    }
    config
}

fn mailer(port: u16, timeout_ms: u64, auth: Option<(&str, &str)>) -> Mailer {
    Mailer::new(&config(port, timeout_ms, auth)).unwrap()
}

#[tokio::test]
async fn no_reply_after_the_message_is_an_uncertain_send() {
    let server = SlowSmtp::start(Duration::from_millis(1_500));
    let result = mailer(server.port(), 300, None)
        .send(&email("n-1"), 0, &|| true)
        .await;
    assert!(matches!(result, Err(SendError::Uncertain(_))), "{result:?}");
    assert_eq!(
        server.message_ids(),
        vec!["<n-1@comms>"],
        "the server did take it: resending it is a duplicate"
    );

    let prompt = SlowSmtp::start(Duration::ZERO);
    mailer(prompt.port(), 300, None)
        .send(&email("n-2"), 0, &|| true)
        .await
        .unwrap();
    assert_eq!(prompt.message_ids(), vec!["<n-2@comms>"]);
}

#[tokio::test]
async fn a_refused_login_is_about_the_connection_not_the_recipient() {
    let server = MailDev::start_with_auth(Some(("comms", "right")));
    let refused = mailer(server.smtp_port(), 5_000, Some(("comms", "wrong")))
        .send(&email("n-3"), 0, &|| true)
        .await;
    assert!(matches!(refused, Err(SendError::Connection(_))), "{refused:?}");
    mailer(server.smtp_port(), 5_000, Some(("comms", "right")))
        .send(&email("n-4"), 0, &|| true)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_login_without_tls_needs_an_explicit_allowance() {
    let server = MailDev::start_with_auth(Some(("comms", "right")));
    let mut plaintext = config(server.smtp_port(), 5_000, Some(("comms", "right")));
    plaintext.smtp_allow_plaintext_auth = false;
    let error = Mailer::new(&plaintext)
        .err()
        .expect("a login in clear is refused");
    let error = error.to_string();
    assert!(
        error.contains("SMTP_TLS is none") && error.contains("SMTP_ALLOW_PLAINTEXT_AUTH=true"),
        "{error}"
    );
    assert!(!error.contains("right"), "the password is never shown: {error}");

    // STARTTLS asked of a server that offers none: the connection stops
    // before AUTH, and nothing is sent.
    plaintext.smtp_tls = TlsMode::StartTls;
    let refused = Mailer::new(&plaintext)
        .unwrap()
        .send(&email("n-tls"), 0, &|| true)
        .await;
    assert!(
        matches!(&refused, Err(error) if error.to_string().contains("STARTTLS")),
        "{refused:?}"
    );

    // Allowed explicitly, the same login over the same connection works.
    mailer(server.smtp_port(), 5_000, Some(("comms", "right")))
        .send(&email("n-clear"), 0, &|| true)
        .await
        .unwrap();
    let received: Vec<serde_json::Value> = ureq::get(&format!("{}/email", server.api_url()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let ids: Vec<&str> = received.iter().filter_map(|e| e["messageId"].as_str()).collect();
    assert_eq!(ids, vec!["n-clear@comms"], "only the allowed send went out");
}

/// Names that a mailbox formatted as a string could not carry: each
/// reaches a real server as the name it is, quoted or encoded as the
/// header needs.
#[tokio::test]
async fn any_display_name_reaches_the_server_as_it_is() {
    let server = MailDev::start();
    let names = [
        "Lovelace, Ada",
        "ada@home",
        "Ada; Countess",
        r"Ada \ Byron",
        r#"Ada "the Enchantress" <of numbers>"#,
        "Ада Лавлейс",
    ];
    let sender = mailer(server.smtp_port(), 5_000, None);
    for (i, name) in names.iter().enumerate() {
        let mut request = email(&format!("name-{i}"));
        request.to_name = (*name).to_string();
        sender
            .send(&request, 0, &|| true)
            .await
            .unwrap_or_else(|error| panic!("{name:?}: {error}"));
    }
    let received: Vec<serde_json::Value> = ureq::get(&format!("{}/email", server.api_url()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(received.len(), names.len());
    for (i, name) in names.iter().enumerate() {
        let message_id = format!("name-{i}@comms");
        let email = received
            .iter()
            .find(|email| email["messageId"].as_str() == Some(message_id.as_str()))
            .unwrap_or_else(|| panic!("{message_id} received: {received:?}"));
        assert_eq!(email["to"][0]["name"], *name, "{}", email["headers"]["to"]);
        assert_eq!(
            email["to"][0]["address"], "ada@example.com",
            "{}",
            email["headers"]["to"]
        );
    }
}

/// A name with a line break cannot go in a `To` header as it is (lettre's
/// formatting fails on it): it goes with spaces instead, and the handler
/// neither fails nor panics.
#[tokio::test]
async fn a_name_with_line_breaks_is_sent_with_spaces_in_their_place() {
    let server = MailDev::start();
    let mut request = email("name-breaks");
    request.to_name = "Ada,\r\nBcc: eve@example.com".to_string();
    mailer(server.smtp_port(), 5_000, None)
        .send(&request, 0, &|| true)
        .await
        .expect("sent");
    let received: Vec<serde_json::Value> = ureq::get(&format!("{}/email", server.api_url()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["to"][0]["name"], "Ada,  Bcc: eve@example.com");
    assert_eq!(received[0]["bcc"], serde_json::Value::Null, "{}", received[0]);
}

#[tokio::test]
async fn nobody_listening_is_the_relay_s_fault() {
    let result = mailer(free_port(), 1_000, None)
        .send(&email("n-5"), 0, &|| true)
        .await;
    assert!(
        matches!(&result, Err(SendError::Relay(detail)) if detail.contains("cannot connect")),
        "{result:?}"
    );
    assert!(result.unwrap_err().is_relay_fault());
}

/// A server on a free port that answers each session with `greeting`,
/// then `reply` to every line, until the client hangs up.
fn answering_garbage(greeting: &'static str, reply: &'static str) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let _ = writer.write_all(greeting.as_bytes());
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    let answer = if line.starts_with("EHLO") {
                        "250 ok\r\n"
                    } else {
                        reply
                    };
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_relay_answering_garbage_is_a_relay_failure_not_a_recipient_one() {
    for (greeting, reply) in [
        ("* OK IMAP4rev1 ready\r\n", "* BAD\r\n"),
        ("220 hello\r\n", "HTTP/1.1 400 Bad Request\r\n"),
    ] {
        let result = mailer(answering_garbage(greeting, reply), 1_000, None)
            .send(&email("n-garbage"), 0, &|| true)
            .await;
        match result {
            Err(error @ SendError::Relay(_)) => assert!(error.is_relay_fault()),
            other => panic!("{greeting:?} then {reply:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_server_silent_after_the_message_cannot_hold_a_send() {
    let server = SlowSmtp::answering(Answer::Silent);
    let started = Instant::now();
    // The outer bound only turns a hang into a failure.
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        mailer(server.port(), 500, None).send(&email("n-6"), 0, &|| true),
    )
    .await
    .expect("the send returns although the server never answers QUIT");
    let took = started.elapsed();
    assert!(matches!(result, Err(SendError::Uncertain(_))), "{result:?}");
    assert!(
        took < Duration::from_millis(1_500),
        "about twice the 500 ms timeout (the message, then QUIT), not {took:?}"
    );
    assert_eq!(server.message_ids(), vec!["<n-6@comms>"]);
}

#[tokio::test]
async fn the_start_check_gives_up_on_a_server_that_never_greets() {
    // Accepts connections (the kernel does) and never says a word.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mute.local_addr().unwrap().port();
    let started = Instant::now();
    let checked = tokio::time::timeout(Duration::from_secs(10), mailer(port, 500, None).relays().check())
        .await
        .expect("the check returns although no greeting comes");
    let took = started.elapsed();
    let error = checked.expect_err("no greeting is no server");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(took < Duration::from_millis(1_500), "{took:?}");
}

#[tokio::test]
async fn a_refused_greeting_is_about_the_connection_not_the_recipient() {
    let server = SlowSmtp::answering(Answer::Unavailable);
    let result = mailer(server.port(), 1_000, None)
        .send(&email("n-7"), 0, &|| true)
        .await;
    assert!(matches!(result, Err(SendError::Connection(_))), "{result:?}");
    assert!(mailer(server.port(), 1_000, None).relays().check().await.is_err());
}

#[tokio::test]
async fn a_refused_sender_is_about_the_connection_not_the_recipient() {
    for code in [530, 550, 553] {
        let server = SlowSmtp::answering(Answer::RefuseSender(code));
        let result = mailer(server.port(), 1_000, None)
            .send(&email("n-8"), 0, &|| true)
            .await;
        match result {
            Err(SendError::Connection(detail)) => {
                assert!(detail.contains(&code.to_string()), "{detail}");
            }
            other => panic!("{code} to MAIL FROM: {other:?}"),
        }
        assert!(server.message_ids().is_empty());
    }
}

/// The order in which the server got a campaign's email `a` (sent first,
/// holding the one pooled connection for `delay`), another `b` and a
/// transactional message `m` asked for after `b`, with `reserved`
/// connections kept for messages.
async fn order_with_reserved(reserved: u32) -> Vec<String> {
    let server = SlowSmtp::start(Duration::from_millis(600));
    let config = Config {
        smtp_pool: 1,
        reserved_connections: reserved,
        ..config(server.port(), 5_000, None)
    };
    let mailer = std::sync::Arc::new(Mailer::new(&config).unwrap());
    let send = |email: contracts::EmailRequested, after_ms: u64| {
        let mailer = mailer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            mailer.send(&email, 0, &|| true).await
        })
    };
    let mut message = email("m");
    message.campaign_id = contracts::MESSAGE_CAMPAIGN.into();
    let sends = [send(email("a"), 0), send(email("b"), 100), send(message, 200)];
    for sent in sends {
        sent.await.unwrap().unwrap();
    }
    server.message_ids()
}

#[tokio::test]
async fn a_message_goes_over_a_connection_kept_for_messages_while_campaigns_hold_the_pool() {
    assert_eq!(
        order_with_reserved(1).await,
        vec!["<a@comms>", "<m@comms>", "<b@comms>"],
        "the message did not wait for the campaign's connection"
    );
    assert_eq!(
        order_with_reserved(0).await,
        vec!["<a@comms>", "<b@comms>", "<m@comms>"],
        "with none kept, it waits its turn"
    );
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_with_a_421_is_replaced_not_failed() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    // The first session closes with `421` once `idle_timeout` is set, as
    // MailDev's does after its idle timeout; later sessions take mail.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let idle_timeout = Arc::new(AtomicBool::new(false));
    let received = Arc::new(Mutex::new(Vec::new()));
    let sessions = Arc::new(AtomicUsize::new(0));
    {
        let (idle_timeout, received) = (idle_timeout.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let first = sessions.fetch_add(1, Ordering::SeqCst) == 0;
                let (idle_timeout, received) = (idle_timeout.clone(), received.clone());
                std::thread::spawn(move || {
                    let accept = Answer::Accept {
                        mail_delay: Duration::ZERO,
                        reply_delay: Duration::ZERO,
                    };
                    let _ = testkit::serve_session(
                        stream.unwrap(),
                        || {
                            if first && idle_timeout.load(Ordering::SeqCst) {
                                Answer::Close
                            } else {
                                accept
                            }
                        },
                        |id| {
                            received.lock().unwrap().push(id.to_string());
                            Ok(())
                        },
                    );
                });
            }
        });
    }
    let mailer = mailer(port, 5_000, None);
    mailer.send(&email("n-5"), 0, &|| true).await.unwrap();
    idle_timeout.store(true, Ordering::SeqCst);
    let result = mailer.send(&email("n-6"), 0, &|| true).await;
    assert!(
        result.is_ok(),
        "a 421 from an idle pooled connection is not the send's: {result:?}"
    );
    assert_eq!(*received.lock().unwrap(), vec!["<n-5@comms>", "<n-6@comms>"]);
}
