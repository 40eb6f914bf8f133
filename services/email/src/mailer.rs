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

//!
//! Every phase is bounded, so that a send always ends well within its
//! ledger lease: waiting for a pooled connection, opening one (TCP,
//! greeting, EHLO, STARTTLS, AUTH), each command, the message itself, and
//! the `QUIT` that ends a connection after a failure. A send that fails
//! thus returns within about twice `SMTP_TIMEOUT_MS`, whatever the server
//! does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::EmailRequested;
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::Message;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::{Config, TlsMode};
use crate::dkim::{Dkim, DkimRecord};
use crate::list_headers::{CommsTest, ListUnsubscribe, ListUnsubscribePost};

/// Why a send did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the server was unreachable, timed out before the
    /// message was handed over, or answered 4xx.
    #[error("transient: {0}")]
    Transient(String),
    /// Worth retrying, slower: the recipient's domain asks the sender to
    /// slow down (a 4xx to `RCPT TO` or to the message, with an enhanced
    /// status 4.7.x, or saying "too many" or "rate limit"): its domain
    /// alone is paced down ([`crate::limits`]).
    #[error("throttled: {0}")]
    Throttled(String),
    /// The message went out but no reply came (a timeout or a dropped
    /// connection after the final `.`): the server may have accepted it.
    /// Sending it again may deliver it twice (with the same `Message-ID`).
    #[error("uncertain: {0}")]
    Uncertain(String),
    /// Will never succeed for this recipient: a 5xx reply to its
    /// transaction or an unusable message.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The server refused the recipient's address for good (a 5xx to
    /// `RCPT TO`): a hard bounce, which suppresses the address.
    #[error("recipient refused: {0}")]
    RecipientRefused(String),
    /// The server refused the connection or our sender for good (a 5xx
    /// greeting, AUTH refused, a 5xx to `MAIL FROM` such as `530`
    /// authentication required or `550`/`553` sender refused): nothing
    /// about this recipient, and no other send will fare better until an
    /// operator acts.
    #[error("connection refused for good: {0}")]
    Connection(String),
}

/// The SMTP client: a bounded pool of open connections to one server.
pub struct Mailer {
    host: String,
    port: u16,
    tls: TlsMode,
    credentials: Option<Credentials>,
    from: Mailbox,
    hello: ClientId,
    /// Connections open and not in use.
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    /// One permit per connection that may be open at once.
    slots: Semaphore,
    /// Longest that waiting for a pooled connection, opening one (TCP,
    /// greeting, EHLO, STARTTLS, AUTH), one command, or the transfer of a
    /// message and its reply may take (`SMTP_TIMEOUT_MS`).
    timeout: Duration,
    /// Signs every message with the domain's DKIM key, when one is set
    /// ([`crate::dkim`]).
    dkim: Option<Arc<Dkim>>,
}

impl Mailer {
    /// A mailer for the server in `config`; no connection is opened yet.
    /// A login over a connection without TLS is refused unless
    /// `SMTP_ALLOW_PLAINTEXT_AUTH` allows it: the password would cross the
    /// network in clear.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        if !config.smtp_user.is_empty()
            && config.smtp_tls == TlsMode::None
            && !config.smtp_allow_plaintext_auth
        {
            anyhow::bail!(
                "SMTP_USER is set but SMTP_TLS is none: the SMTP password would cross the \
                 network in clear; set SMTP_TLS=starttls, or SMTP_ALLOW_PLAINTEXT_AUTH=true \
                 for a test server on loopback"
            );
        }
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|error| anyhow::anyhow!("MAIL_FROM is not an address: {error}"))?;
        let dkim = Dkim::from_settings(&config.dkim, from.email.domain())?.map(Arc::new);
        Ok(Self {
            host: config.smtp_host.clone(),
            port: config.smtp_port,
            tls: config.smtp_tls,
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
            timeout: Duration::from_millis(config.smtp_timeout_ms.max(1)),
            dkim,
        })
    }

    /// The DNS record of the DKIM key this mailer signs with, if any.
    pub fn dkim_record(&self) -> Option<&DkimRecord> {
        self.dkim.as_deref().map(Dkim::record)
    }

    /// Opens one connection (kept for later sends), to check at start that
    /// the server answers.
    pub async fn check(&self) -> anyhow::Result<()> {
        let connection = self
            .open_bounded()
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        self.idle.lock().expect("idle connections").push(connection);
        Ok(())
    }

    /// Sends `email` with the stable `Message-ID` `<notification id@comms>`,
    /// so a receiver can drop the one duplicate no client can rule out:
    /// `multipart/alternative` (text, then HTML) when it has an HTML body,
    /// a single `text/plain` part otherwise; DKIM-signed when a key is set.
    /// `held` says whether the send's ledger lease is still valid: it is
    /// asked just before `DATA`, and a send whose lease is not stops there
    /// (transient: nothing was handed over), so that no message goes out
    /// without a lease.
    pub async fn send(
        &self,
        email: &EmailRequested,
        held: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), SendError> {
        let mut message = self.message(email)?;
        if let Some(dkim) = &self.dkim {
            message = dkim
                .sign(message)
                .await
                .map_err(|error| SendError::Transient(format!("DKIM signing failed: {error}")))?;
        }
        let envelope = message.envelope().clone();
        let bytes = message.formatted();
        let timeout = self.timeout;
        let _slot = tokio::time::timeout(timeout, self.slots.acquire())
            .await
            .map_err(|_| SendError::Transient(format!("no SMTP connection free within {timeout:?}")))?
            .expect("the pool is never closed");
        let pooled = self.idle.lock().expect("idle connections").pop();
        let mut connection = match pooled {
            Some(connection) if !connection.has_broken() => connection,
            _ => self.open_bounded().await?,
        };
        match transfer(&mut connection, &envelope, &bytes, timeout, held).await {
            Ok(()) => {
                self.idle.lock().expect("idle connections").push(connection);
                Ok(())
            }
            // After a refusal the transaction state is unclear: start
            // afresh. The `QUIT` is bounded too: a server silent since the
            // message would never answer it; past the timeout the socket
            // is simply dropped.
            Err(error) => {
                let _ = tokio::time::timeout(timeout, connection.abort()).await;
                Err(error)
            }
        }
    }

    fn message(&self, email: &EmailRequested) -> Result<Message, SendError> {
        // Built from its parts, never parsed from a formatted string: lettre
        // quotes or encodes the name (commas, `@`, `;`, `\`, quotes, any
        // script) as the header needs.
        let address = email.to_email.parse().map_err(|error| {
            SendError::Permanent(format!("invalid recipient {}: {error}", email.to_email))
        })?;
        // A header cannot carry a line break (lettre's formatting of the
        // name fails on one): whatever reached here, controls become spaces.
        let name = email
            .to_name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>();
        let name = Some(name).filter(|name| !name.trim().is_empty());
        let to = Mailbox::new(name, address);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .message_id(Some(message_id(&email.notification_id)));
        if let Some(url) = &email.unsubscribe_url {
            builder = builder
                .header(ListUnsubscribe::new(url, email.unsubscribe_mailto.as_deref()))
                .header(ListUnsubscribePost);
        }
        if email.test {
            builder = builder.header(CommsTest);
        }
        let built = match &email.html {
            // Text first, HTML last: a client shows the last part it can
            // (RFC 2046 §5.1.4), and one without HTML the text.
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                email.body.clone(),
                html.clone(),
            )),
            None => builder.header(ContentType::TEXT_PLAIN).body(email.body.clone()),
        };
        built.map_err(|error| SendError::Permanent(format!("cannot build the message: {error}")))
    }

    /// [`Mailer::open`] bounded by the SMTP timeout.
    async fn open_bounded(&self) -> Result<AsyncSmtpConnection, SendError> {
        tokio::time::timeout(self.timeout, self.open())
            .await
            .map_err(|_| self.transient("timed out opening a connection to", &"no answer"))?
    }

    /// A new connection: TCP with `TCP_NODELAY`, EHLO, then STARTTLS and
    /// AUTH when configured.
    /// A 5xx here is about the server or our account, never a recipient:
    /// it is a [`SendError::Connection`].
    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| self.transient("cannot connect to", &error))?;
        stream
            .set_nodelay(true)
            .map_err(|error| self.transient("cannot configure the socket to", &error))?;
        let refused = |error: lettre::transport::smtp::Error| match classify(error) {
            SendError::Permanent(detail) => {
                SendError::Connection(format!("{}:{}: {detail}", self.host, self.port))
            }
            other => other,
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(refused)?;
        if self.tls == TlsMode::StartTls {
            let tls = TlsParameters::new(self.host.clone())
                .map_err(|error| SendError::Connection(error.to_string()))?;
            connection.starttls(tls, &self.hello).await.map_err(refused)?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(refused)?;
        }
        Ok(connection)
    }

    fn transient(&self, what: &str, error: &dyn std::fmt::Display) -> SendError {
        SendError::Transient(format!("{what} {}:{}: {error}", self.host, self.port))
    }
}

/// One mail transaction on an open connection, each step bounded by
/// `timeout`. Up to `DATA`'s `354` nothing can have been delivered,
/// so a failure is transient or permanent as the server says (a 5xx to
/// `MAIL FROM` is about our sender, not the recipient: a
/// [`SendError::Connection`]); once the
/// message is out, a missing reply is [`SendError::Uncertain`]. (lettre's
/// `AsyncSmtpConnection::send` runs the same steps, with the same SMTPUTF8
/// and 8BITMIME checks, as one future: it can be bounded only as a whole,
/// and its error does not say whether the message had gone out.) `held`
/// is asked before `DATA`: without a valid lease the transaction stops
/// there, transient.
async fn transfer(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
    timeout: Duration,
    held: &(dyn Fn() -> bool + Sync),
) -> Result<(), SendError> {
    let mut options = Vec::new();
    if envelope
        .to()
        .iter()
        .any(|to| !AsRef::<str>::as_ref(to).is_ascii())
        || envelope
            .from()
            .is_some_and(|from| !AsRef::<str>::as_ref(from).is_ascii())
    {
        if !connection.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SendError::Permanent(
                "the address needs SMTPUTF8, which the server lacks".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !connection.server_info().supports_feature(Extension::EightBitMime) {
            return Err(SendError::Permanent(
                "the message needs 8BITMIME, which the server lacks".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    bounded(
        "MAIL FROM",
        timeout,
        connection.command(Mail::new(envelope.from().cloned(), options)),
    )
    .await
    .map_err(|error| match error {
        SendError::Permanent(detail) => SendError::Connection(format!("MAIL FROM refused: {detail}")),
        other => other,
    })?;
    for to in envelope.to() {
        bounded(
            "RCPT TO",
            timeout,
            connection.command(Rcpt::new(to.clone(), Vec::new())),
        )
        .await
        .map_err(|error| match error {
            SendError::Permanent(detail) => SendError::RecipientRefused(detail),
            other => throttled_or(other),
        })?;
    }
    if !held() {
        return Err(SendError::Transient(
            "the send lease was lost before DATA; nothing was handed over".into(),
        ));
    }
    bounded("DATA", timeout, connection.command(Data)).await?;
    match tokio::time::timeout(timeout, connection.message(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) if error.is_permanent() || error.is_transient() => Err(throttled_or(classify(error))),
        Ok(Err(error)) => Err(SendError::Uncertain(format!(
            "no reply after the message: {error}"
        ))),
        Err(_) => Err(SendError::Uncertain(format!(
            "no reply within {timeout:?} after the message"
        ))),
    }
}

/// One command, bounded by `timeout`.
async fn bounded(
    what: &str,
    timeout: Duration,
    command: impl std::future::Future<
        Output = Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
    >,
) -> Result<(), SendError> {
    match tokio::time::timeout(timeout, command).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(classify(error)),
        Err(_) => Err(SendError::Transient(format!(
            "no reply to {what} within {timeout:?}"
        ))),
    }
}

/// The `Message-ID` of a notification's email.
pub fn message_id(notification_id: &str) -> String {
    format!("<{notification_id}@comms>")
}

/// `error`, or [`SendError::Throttled`] when it is a 4xx that asks to slow
/// down: an enhanced status 4.7.x (Gmail's `421 4.7.0 Try again later`,
/// Outlook's `451 4.7.650 ... temporarily rate limited`) or words saying
/// so. A 4xx about something else (`451 4.3.2`, a server shutting down)
/// stays transient.
fn throttled_or(error: SendError) -> SendError {
    match error {
        SendError::Transient(detail) => {
            let text = detail.to_ascii_lowercase();
            let throttling = [
                "): 4.7.",
                " 4.7.",
                "too many",
                "rate limit",
                "throttl",
                "slow down",
            ]
            .iter()
            .any(|sign| text.contains(sign));
            if throttling {
                SendError::Throttled(detail)
            } else {
                SendError::Transient(detail)
            }
        }
        other => other,
    }
}

fn classify(error: lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Transient(error.to_string())
    }
}
