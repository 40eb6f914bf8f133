//! How a send ends, against real SMTP servers: accepted; uncertain when the
//! message went out and no reply came in time; a connection-level refusal
//! (AUTH) kept apart from a recipient's; transient when nobody answers.

use std::time::Duration;

use contracts::EmailRequested;
use email_service::config::Config;
use email_service::mailer::{Mailer, SendError};
use testkit::{free_port, MailDev, SlowSmtp};

fn email(id: &str) -> EmailRequested {
    EmailRequested {
        notification_id: id.into(),
        campaign_id: "c".into(),
        to_email: "ada@example.com".into(),
        to_name: "Ada".into(),
        subject: "Hello".into(),
        body: "Hi Ada".into(),
    }
}

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
