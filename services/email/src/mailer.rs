//! Building each email (MIME, list headers, DKIM signature) and handing
//! it to the relay its send was given ([`crate::relays`]); and the kinds
//! of failure a send can end in, which decide what happens next.

use std::sync::Arc;
use std::time::Duration;

use contracts::EmailRequested;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

use crate::config::Config;
use crate::dkim::{Dkim, DkimRecord};
use crate::list_headers::{CommsTest, ListUnsubscribe, ListUnsubscribePost};
use crate::relays::Relays;

/// Why a send did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the server timed out before the message was
    /// handed over, or answered 4xx.
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
    /// Worth retrying, through another relay if one is up: the relay
    /// could not be used (no connection, its greeting, EHLO, STARTTLS or
    /// login failed for now, or it answered something that is not SMTP)
    /// and nothing was handed over.
    #[error("relay unusable: {0}")]
    Relay(String),
}

impl SendError {
    /// Whether the relay itself failed before anything was handed over,
    /// so that another relay may take the send at once.
    pub fn is_relay_fault(&self) -> bool {
        matches!(self, Self::Relay(_) | Self::Connection(_))
    }
}

/// The SMTP client: builds each message and sends it through the relay
/// its send was given.
pub struct Mailer {
    from: Mailbox,
    relays: Arc<Relays>,
    /// Signs every message with the domain's DKIM key, when one is set
    /// ([`crate::dkim`]).
    dkim: Option<Arc<Dkim>>,
}

impl Mailer {
    /// A mailer for the relays of `config` ([`crate::relay_list`]); no
    /// connection is opened yet. A relay list that is not one, or a login
    /// over a connection without TLS (unless `SMTP_ALLOW_PLAINTEXT_AUTH`
    /// allows it: the password would cross the network in clear), is
    /// refused.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let relays = crate::relay_list::relays(config)?;
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|error| anyhow::anyhow!("MAIL_FROM is not an address: {error}"))?;
        let dkim = Dkim::from_settings(&config.dkim, from.email.domain())?.map(Arc::new);
        let timeout = Duration::from_millis(config.smtp_timeout_ms.max(1));
        Ok(Self {
            from,
            relays: Arc::new(Relays::new(relays, timeout)),
            dkim,
        })
    }

    /// The relays it sends through.
    pub fn relays(&self) -> &Arc<Relays> {
        &self.relays
    }

    /// The DNS record of the DKIM key this mailer signs with, if any.
    pub fn dkim_record(&self) -> Option<&DkimRecord> {
        self.dkim.as_deref().map(Dkim::record)
    }

    /// Sends `email` with the stable `Message-ID` `<notification id@comms>`,
    /// so a receiver can drop the one duplicate no client can rule out:
    /// `multipart/alternative` (text, then HTML) when it has an HTML body,
    /// a single `text/plain` part otherwise; DKIM-signed when a key is set.
    /// `held` says whether the send's ledger lease is still valid: it is
    /// asked just before `DATA`, and a send whose lease is not stops there
    /// (transient: nothing was handed over), so that no message goes out
    /// without a lease. It goes through relay `relay`.
    pub async fn send(
        &self,
        email: &EmailRequested,
        relay: usize,
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
        let priority = email.campaign_id == contracts::MESSAGE_CAMPAIGN;
        self.relays
            .get(relay)
            .send(&envelope, &message.formatted(), priority, held)
            .await
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
}

/// The `Message-ID` of a notification's email.
pub fn message_id(notification_id: &str) -> String {
    format!("<{notification_id}@comms>")
}
