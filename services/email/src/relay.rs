//! One SMTP relay: a bounded pool of open connections to it, and the mail
//! transaction that hands it one message, telling transient failures from
//! permanent ones, and the relay's own faults from the recipient's.
//!
//! The pool is ours rather than lettre's `AsyncSmtpTransport` pool for two
//! reasons measured in `bench/campaign.sh`: lettre's sockets leave Nagle's
//! algorithm on, so the small end-of-data write of every message waited for
//! the server's delayed ACK (about 40 ms per email); and its pool bounds idle
//! connections, not open ones, so busy senders opened and closed connections
//! all the time. Here each connection is a `TcpStream` with `TCP_NODELAY`,
//! handed to lettre's SMTP client, and at most the relay's pool size are
//! open at once.
//!
//! Every phase is bounded, so that a send always ends well within its
//! ledger lease: waiting for a pooled connection, opening one (TCP,
//! greeting, EHLO, STARTTLS, AUTH), each command, the message itself, and
//! the `QUIT` that ends a connection after a failure. A send that fails
//! thus returns within about twice `SMTP_TIMEOUT_MS`, whatever the server
//! does.

use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::TlsMode;
use crate::mailer::SendError;
use crate::relay_list::RelaySettings;

/// One relay and its pool of connections.
pub struct Relay {
    settings: RelaySettings,
    hello: ClientId,
    /// Connections open and not in use.
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    /// One permit per connection that may be open at once.
    slots: Semaphore,
    /// One permit per connection kept for transactional messages.
    reserved: Semaphore,
    /// Longest that waiting for a pooled connection, opening one, one
    /// command, or the transfer of a message and its reply may take.
    timeout: Duration,
}

impl Relay {
    /// The relay `settings` describe, each SMTP step bounded by
    /// `timeout`; no connection is opened yet.
    pub fn new(settings: RelaySettings, timeout: Duration) -> Self {
        Self {
            slots: Semaphore::new(settings.pool.max(1) as usize),
            reserved: Semaphore::new(settings.reserved as usize),
            settings,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            timeout,
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &RelaySettings {
        &self.settings
    }

    /// Opens one connection (kept for later sends), to check that the
    /// relay answers.
    pub async fn check(&self) -> Result<(), SendError> {
        let connection = self.open_bounded().await?;
        self.idle.lock().expect("idle connections").push(connection);
        Ok(())
    }

    /// Hands `message` to the relay for `envelope`'s recipients over a
    /// pooled connection; a `priority` one (a transactional message) also
    /// over one of the connections kept for them, whichever is free first.
    /// `held` is asked just before `DATA`: without a valid lease the
    /// transaction stops there (transient: nothing was handed over).
    pub async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        priority: bool,
        held: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), SendError> {
        let timeout = self.timeout;
        let place = async {
            if priority {
                tokio::select! {
                    biased;
                    slot = self.reserved.acquire() => slot,
                    slot = self.slots.acquire() => slot,
                }
            } else {
                self.slots.acquire().await
            }
        };
        let _slot = tokio::time::timeout(timeout, place)
            .await
            .map_err(|_| SendError::Transient(format!("no SMTP connection free within {timeout:?}")))?
            .expect("the pool is never closed");
        let pooled = self.idle.lock().expect("idle connections").pop();
        let (mut connection, reused) = match pooled {
            Some(connection) if !connection.has_broken() => (connection, true),
            _ => (self.open_bounded().await?, false),
        };
        let mut result = transfer(&mut connection, envelope, message, timeout, held).await;
        // A pooled connection the server has closed meanwhile (an idle
        // timeout) fails at its first command, dropped or answered `421`
        // (closing the channel; MailDev's `421 Timeout - closing
        // connection`): that says nothing about the relay, nor the
        // recipient, until a new connection fails too.
        if reused && result.as_ref().is_err_and(closed_meanwhile) {
            let _ = tokio::time::timeout(timeout, connection.abort()).await;
            connection = self.open_bounded().await?;
            result = transfer(&mut connection, envelope, message, timeout, held).await;
        }
        match result {
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

    /// [`Relay::open`] bounded by the SMTP timeout.
    async fn open_bounded(&self) -> Result<AsyncSmtpConnection, SendError> {
        tokio::time::timeout(self.timeout, self.open())
            .await
            .map_err(|_| self.unusable("timed out opening a connection", &"no answer"))?
    }

    /// A new connection: TCP with `TCP_NODELAY`, EHLO, then STARTTLS and
    /// AUTH when configured. Whatever fails here is the relay's fault,
    /// never a recipient's: a 5xx is a [`SendError::Connection`], anything
    /// else (no connection, a 4xx, a reply that is not SMTP) a
    /// [`SendError::Relay`].
    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let settings = &self.settings;
        let stream = TcpStream::connect((settings.host.as_str(), settings.port))
            .await
            .map_err(|error| self.unusable("cannot connect", &error))?;
        stream
            .set_nodelay(true)
            .map_err(|error| self.unusable("cannot configure the socket", &error))?;
        let refused = |error: lettre::transport::smtp::Error| {
            if error.is_permanent() {
                SendError::Connection(format!("{}: {error}", settings.name))
            } else {
                self.unusable("cannot open a session", &error)
            }
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(refused)?;
        if settings.tls == TlsMode::StartTls {
            let tls = TlsParameters::new(settings.host.clone())
                .map_err(|error| SendError::Connection(error.to_string()))?;
            connection.starttls(tls, &self.hello).await.map_err(refused)?;
        }
        if let Some(credentials) = &settings.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(refused)?;
        }
        Ok(connection)
    }

    fn unusable(&self, what: &str, error: &dyn std::fmt::Display) -> SendError {
        let (name, address) = (&self.settings.name, self.settings.address());
        if *name == address {
            SendError::Relay(format!("{what} to {address}: {error}"))
        } else {
            SendError::Relay(format!("{what} to relay {name} ({address}): {error}"))
        }
    }
}

/// One mail transaction on an open connection, each step bounded by
/// `timeout`. Up to `DATA`'s `354` nothing can have been delivered,
/// so a failure is transient or permanent as the server says (a 5xx to
/// `MAIL FROM` is about our sender, not the recipient: a
/// [`SendError::Connection`]; a reply that is not SMTP is the relay's
/// fault: a [`SendError::Relay`]); once the message is out, a missing
/// reply is [`SendError::Uncertain`]. (lettre's
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

/// Whether `error` is what a pooled connection that the server closed
/// while it was idle answers: no SMTP reply at all, or a `421`.
fn closed_meanwhile(error: &SendError) -> bool {
    match error {
        SendError::Relay(_) => true,
        SendError::Transient(detail) => detail.contains("(421)"),
        _ => false,
    }
}

/// One command before the message, bounded by `timeout`.
async fn bounded(
    what: &str,
    timeout: Duration,
    command: impl std::future::Future<
        Output = Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
    >,
) -> Result<(), SendError> {
    match tokio::time::timeout(timeout, command).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) if error.is_permanent() || error.is_transient() => Err(classify(error)),
        // No reply that is SMTP (a dropped connection, garbage): the
        // relay's fault, before anything was handed over.
        Ok(Err(error)) => Err(SendError::Relay(format!("{what} failed: {error}"))),
        Err(_) => Err(SendError::Transient(format!(
            "no reply to {what} within {timeout:?}"
        ))),
    }
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
