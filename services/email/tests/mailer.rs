//! How a send ends, against real SMTP servers: accepted; uncertain when the
//! message went out and no reply came in time, and within about twice the
//! SMTP timeout even when the server never speaks again; a connection-level
//! refusal (a 5xx greeting, AUTH, a 5xx to `MAIL FROM`) kept apart from a
//! recipient's; transient when nobody answers.

mod common;

use std::time::{Duration, Instant};

use email_service::config::Config;
use email_service::mailer::{Mailer, SendError};
use testkit::{free_port, Answer, MailDev, SlowSmtp};

use common::email;

fn mailer(port: u16, timeout_ms: u64, auth: Option<(&str, &str)>) -> Mailer {
    let mut config = Config {
        smtp_port: port,
        smtp_timeout_ms: timeout_ms,
        ..Config::default()
    };
    if let Some((user, password)) = auth {
        config.smtp_user = user.into();
        config.smtp_password = password.to_string().into();
    }
    Mailer::new(&config).unwrap()
}

#[tokio::test]
async fn no_reply_after_the_message_is_an_uncertain_send() {
    let server = SlowSmtp::start(Duration::from_millis(1_500));
    let result = mailer(server.port(), 300, None).send(&email("n-1")).await;
    assert!(matches!(result, Err(SendError::Uncertain(_))), "{result:?}");
    assert_eq!(
        server.message_ids(),
        vec!["<n-1@comms>"],
        "the server did take it: resending it is a duplicate"
    );

    let prompt = SlowSmtp::start(Duration::ZERO);
    mailer(prompt.port(), 300, None)
        .send(&email("n-2"))
        .await
        .unwrap();
    assert_eq!(prompt.message_ids(), vec!["<n-2@comms>"]);
}

#[tokio::test]
async fn a_refused_login_is_about_the_connection_not_the_recipient() {
    let server = MailDev::start_with_auth(Some(("comms", "right")));
    let refused = mailer(server.smtp_port(), 5_000, Some(("comms", "wrong")))
        .send(&email("n-3"))
        .await;
    assert!(matches!(refused, Err(SendError::Connection(_))), "{refused:?}");
    mailer(server.smtp_port(), 5_000, Some(("comms", "right")))
        .send(&email("n-4"))
        .await
        .unwrap();
}

#[tokio::test]
async fn nobody_listening_is_transient() {
    let result = mailer(free_port(), 1_000, None).send(&email("n-5")).await;
    assert!(matches!(result, Err(SendError::Transient(_))), "{result:?}");
}

#[tokio::test]
async fn a_server_silent_after_the_message_cannot_hold_a_send() {
    let server = SlowSmtp::answering(Answer::Silent);
    let started = Instant::now();
    // The outer bound only turns a hang into a failure.
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        mailer(server.port(), 500, None).send(&email("n-6")),
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
    let checked = tokio::time::timeout(Duration::from_secs(10), mailer(port, 500, None).check())
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
    let result = mailer(server.port(), 1_000, None).send(&email("n-7")).await;
    assert!(matches!(result, Err(SendError::Connection(_))), "{result:?}");
    assert!(mailer(server.port(), 1_000, None).check().await.is_err());
}

#[tokio::test]
async fn a_refused_sender_is_about_the_connection_not_the_recipient() {
    for code in [530, 550, 553] {
        let server = SlowSmtp::answering(Answer::RefuseSender(code));
        let result = mailer(server.port(), 1_000, None).send(&email("n-8")).await;
        match result {
            Err(SendError::Connection(detail)) => {
                assert!(detail.contains(&code.to_string()), "{detail}");
            }
            other => panic!("{code} to MAIL FROM: {other:?}"),
        }
        assert!(server.message_ids().is_empty());
    }
}
