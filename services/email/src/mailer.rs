//! Sending one email over SMTP with lettre, through a pool of reused
//! connections, and telling transient failures from permanent ones.

use std::time::Duration;

use contracts::EmailRequested;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;

/// Why a send did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the server was unreachable or answered 4xx.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed: a 5xx reply or an unusable message.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// The SMTP client.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for the server in `config`.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let builder = match config.smtp_tls.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.smtp_host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.smtp_host)?,
            other => anyhow::bail!("SMTP_TLS must be `none` or `starttls`, not `{other}`"),
        };
        let mut builder = builder
            .port(config.smtp_port)
            .timeout(Some(Duration::from_secs(10)))
            .pool_config(PoolConfig::new().max_size(config.smtp_pool));
        if !config.smtp_user.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.smtp_user.clone(),
                config.smtp_password.clone(),
            ));
        }
        let from = config
            .mail_from
            .parse()
            .map_err(|error| anyhow::anyhow!("MAIL_FROM is not an address: {error}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Checks that the SMTP server answers (used at start and by `/ready`).
    pub async fn check(&self) -> anyhow::Result<()> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => anyhow::bail!("the SMTP server did not answer"),
            Err(error) => Err(error.into()),
        }
    }

    /// Sends `email` with the stable `Message-ID` `<notification id@comms>`,
    /// so a receiver can drop the one duplicate no client can rule out.
    pub async fn send(&self, email: &EmailRequested) -> Result<(), SendError> {
        let to: Mailbox = format!(
            "{} <{}>",
            email.to_name.replace(['<', '>', '"'], ""),
            email.to_email
        )
        .parse()
        .map_err(|error| SendError::Permanent(format!("invalid recipient {}: {error}", email.to_email)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .message_id(Some(message_id(&email.notification_id)))
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|error| SendError::Permanent(format!("cannot build the message: {error}")))?;
        self.transport.send(message).await.map(|_| ()).map_err(classify)
    }
}

/// The `Message-ID` of a notification's email.
pub fn message_id(notification_id: &str) -> String {
    format!("<{notification_id}@comms>")
}

fn classify(error: lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Transient(error.to_string())
    }
}
