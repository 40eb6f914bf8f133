//! Sending one email over SMTP with lettre, through a pool of reused
//! connections, and telling transient failures from permanent ones.
//!
//! The pool is ours rather than lettre's `AsyncSmtpTransport` pool for two
//! reasons measured in `bench/campaign.sh`: lettre's sockets leave Nagle's
//! algorithm on, so the small end-of-data write of every message waited for
//! the server's delayed ACK (about 40 ms per email); and its pool bounds idle
//! connections, not open ones, so busy senders opened and closed connections
//! all the time. Here each connection is a `TcpStream` with `TCP_NODELAY`,
//! handed to lettre's SMTP client, and at most `SMTP_POOL` are open at once.

use secrecy::ExposeSecret;
use std::sync::Mutex;
use std::time::Duration;

use contracts::EmailRequested;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::Config;

/// Longest a connection attempt or one message may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a send did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the server was unreachable, timed out, or answered 4xx.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed: a 5xx reply or an unusable message.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// The SMTP client: a bounded pool of open connections to one server.
pub struct Mailer {
    host: String,
    port: u16,
    starttls: bool,
    credentials: Option<Credentials>,
    from: Mailbox,
    hello: ClientId,
    /// Connections open and not in use.
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    /// One permit per connection that may be open at once.
    slots: Semaphore,
}

impl Mailer {
    /// A mailer for the server in `config`; no connection is opened yet.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let starttls = match config.smtp_tls.as_str() {
            "none" => false,
            "starttls" => true,
            other => anyhow::bail!("SMTP_TLS must be `none` or `starttls`, not `{other}`"),
        };
        let from = config
            .mail_from
            .parse()
            .map_err(|error| anyhow::anyhow!("MAIL_FROM is not an address: {error}"))?;
        Ok(Self {
            host: config.smtp_host.clone(),
            port: config.smtp_port,
            starttls,
            credentials: (!config.smtp_user.is_empty()).then(|| {
                Credentials::new(
                    config.smtp_user.clone(),
                    config.smtp_password.expose_secret().to_string(),
                )
            }),
            from,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(config.smtp_pool.max(1) as usize),
        })
    }

    /// Opens one connection (kept for later sends), to check at start that
    /// the server answers.
    pub async fn check(&self) -> anyhow::Result<()> {
        let connection = self.open().await.map_err(|error| anyhow::anyhow!("{error}"))?;
        self.idle.lock().expect("idle connections").push(connection);
        Ok(())
    }

    /// Sends `email` with the stable `Message-ID` `<notification id@comms>`,
    /// so a receiver can drop the one duplicate no client can rule out.
    pub async fn send(&self, email: &EmailRequested) -> Result<(), SendError> {
        let message = self.message(email)?;
        let envelope = message.envelope().clone();
        let bytes = message.formatted();
        let _slot = self.slots.acquire().await.expect("the pool is never closed");
        let pooled = self.idle.lock().expect("idle connections").pop();
        let mut connection = match pooled {
            Some(connection) if !connection.has_broken() => connection,
            _ => self.open().await?,
        };
        let sent = tokio::time::timeout(SMTP_TIMEOUT, connection.send(&envelope, &bytes)).await;
        match sent {
            Ok(Ok(_)) => {
                self.idle.lock().expect("idle connections").push(connection);
                Ok(())
            }
            // After a refusal the transaction state is unclear: start afresh.
            Ok(Err(error)) => {
                connection.abort().await;
                Err(classify(error))
            }
            Err(_) => Err(SendError::Transient(format!("no answer within {SMTP_TIMEOUT:?}"))),
        }
    }

    fn message(&self, email: &EmailRequested) -> Result<Message, SendError> {
        let to: Mailbox = format!(
            "{} <{}>",
            email.to_name.replace(['<', '>', '"'], ""),
            email.to_email
        )
        .parse()
        .map_err(|error| SendError::Permanent(format!("invalid recipient {}: {error}", email.to_email)))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .message_id(Some(message_id(&email.notification_id)))
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|error| SendError::Permanent(format!("cannot build the message: {error}")))
    }

    /// A new connection: TCP with `TCP_NODELAY`, EHLO, then STARTTLS and
    /// AUTH when configured.
    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let transient = |what: &str, error: &dyn std::fmt::Display| {
            SendError::Transient(format!("{what} {}:{}: {error}", self.host, self.port))
        };
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let stream = tokio::time::timeout(SMTP_TIMEOUT, connect)
            .await
            .map_err(|_| transient("timed out connecting to", &"no answer"))?
            .map_err(|error| transient("cannot connect to", &error))?;
        stream
            .set_nodelay(true)
            .map_err(|error| transient("cannot configure the socket to", &error))?;
        let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(classify)?;
        if self.starttls {
            let tls = TlsParameters::new(self.host.clone())
                .map_err(|error| SendError::Permanent(error.to_string()))?;
            connection.starttls(tls, &self.hello).await.map_err(classify)?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(connection)
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
