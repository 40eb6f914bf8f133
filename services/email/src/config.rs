//! email-service's configuration (see `servicekit::config` for the layers).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use servicekit::config::{empty_secret, ServiceConfig, ServiceSettings};
use servicekit::streams::StreamSettings;

use crate::dkim::DkimSettings;

/// Everything email-service reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Port, Redis, database, workers (`EMAIL_PORT`, `REDIS_URL`,
    /// `EMAIL_DATABASE_URL`, ...).
    #[serde(flatten)]
    pub service: ServiceSettings,
    /// SMTP server host (`SMTP_HOST`).
    pub smtp_host: String,
    /// SMTP server port (`SMTP_PORT`).
    pub smtp_port: u16,
    /// SMTP user (`SMTP_USER`); no authentication when empty.
    pub smtp_user: String,
    /// SMTP password (`SMTP_PASSWORD`).
    #[serde(skip_serializing, default = "empty_secret")]
    pub smtp_password: SecretString,
    /// How the connection to the SMTP server is secured (`SMTP_TLS`).
    pub smtp_tls: TlsMode,
    /// Whether the SMTP login may cross a connection without TLS
    /// (`SMTP_ALLOW_PLAINTEXT_AUTH`, false): without it, a login with
    /// `SMTP_TLS=none` stops the start. Only for a test server on
    /// loopback, such as the stacks' MailDev, which offers no TLS.
    pub smtp_allow_plaintext_auth: bool,
    /// Most connections open to the SMTP server at once (`SMTP_POOL`).
    pub smtp_pool: u32,
    /// Connections to each relay kept for transactional messages beyond
    /// its pool (`EMAIL_RESERVED_CONNECTIONS`, 2): a message never waits
    /// for a campaign's sends to free one.
    pub reserved_connections: u32,
    /// The sender address (`MAIL_FROM`).
    pub mail_from: String,
    /// How long a send's ledger lease lasts unless renewed; it is renewed
    /// while the send runs, so this is how soon the sends of a dead
    /// instance can be taken over (`EMAIL_LEASE_MS`).
    pub lease_ms: i64,
    /// Longest any one SMTP step may take: waiting for a pooled
    /// connection, opening one, one command, a message and its reply
    /// (`SMTP_TIMEOUT_MS`).
    pub smtp_timeout_ms: u64,
    /// Emails a second, every instance together (`EMAIL_SEND_RATE`); 0:
    /// no rate. A fraction for less than one a second.
    pub send_rate: f64,
    /// How many may go at once after a quiet spell (`EMAIL_SEND_BURST`);
    /// 0: a second's worth of the rate.
    pub send_burst: u32,
    /// Emails in any rolling hour, every instance together
    /// (`EMAIL_SEND_PER_HOUR`); 0: no quota.
    pub send_per_hour: u64,
    /// Emails in any rolling day, every instance together
    /// (`EMAIL_SEND_PER_DAY`); 0: no quota.
    pub send_per_day: u64,
    /// Emails a second to each receiving domain, every instance together
    /// (`EMAIL_DOMAIN_RATE`); 0: none.
    pub domain_rate: f64,
    /// Most sends in flight at once to each receiving domain, per
    /// instance (`EMAIL_DOMAIN_CONNECTIONS`); 0: none.
    pub domain_connections: u32,
    /// Limits of some domains instead (`EMAIL_DOMAIN_LIMITS`:
    /// `gmail.com=20/s,outlook.com=300/m,gmail.com=2 connections`; `/s`,
    /// `/m` or `/h`).
    pub domain_limits: String,
    /// The SMTP relays to send through, with their pools, rates and
    /// weights (`EMAIL_RELAYS`, Vault key `relays`: it holds their
    /// passwords; see [`crate::relay_list`]); empty: the one relay of the
    /// `SMTP_*` settings.
    #[serde(skip_serializing, default = "empty_secret")]
    pub relays: SecretString,
    /// DKIM signing: key, selector, domain, algorithm (`EMAIL_DKIM_*`,
    /// Vault keys `dkim_*`; see [`crate::dkim`]). Off without a key.
    #[serde(flatten)]
    pub dkim: DkimSettings,
}

/// How email-service secures its SMTP connections (`SMTP_TLS`): read as
/// this enum when the configuration is loaded, so that a value other than
/// `none` or `starttls` stops the start with a message naming both, and
/// the mailer never looks at a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP, for local test servers.
    #[default]
    None,
    /// Plain SMTP upgraded with `STARTTLS` before any credentials or mail
    /// are sent.
    StartTls,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: ServiceSettings {
                streams: StreamSettings {
                    max_deliveries: 8,
                    concurrency: 256,
                    read_batch: 64,
                    ..StreamSettings::default()
                },
                ..ServiceSettings::new(8084)
            },
            smtp_host: "127.0.0.1".into(),
            smtp_port: 2500,
            smtp_user: String::new(),
            smtp_password: empty_secret(),
            smtp_tls: TlsMode::None,
            smtp_allow_plaintext_auth: false,
            smtp_pool: 16,
            reserved_connections: 2,
            mail_from: "comms <comms@example.com>".into(),
            lease_ms: 60_000,
            smtp_timeout_ms: 30_000,
            send_rate: 0.0,
            send_burst: 0,
            send_per_hour: 0,
            send_per_day: 0,
            domain_rate: 0.0,
            domain_connections: 0,
            domain_limits: String::new(),
            relays: empty_secret(),
            dkim: DkimSettings::default(),
        }
    }
}

/// Where [`servicekit::config::load_service`] finds this configuration.
impl ServiceConfig for Config {
    const NAME: &'static str = "email-service";
    const PREFIX: &'static str = "EMAIL_";
    const OWN_ENV: &'static [&'static str] = &[
        "smtp_host",
        "smtp_port",
        "smtp_user",
        "smtp_password",
        "smtp_tls",
        "smtp_allow_plaintext_auth",
        "smtp_pool",
        "mail_from",
        "smtp_timeout_ms",
    ];
    const DATABASE_FILE: &'static str = "email.db";

    /// The SMTP password: a published example one stops a prod start.
    fn secrets(&self) -> Vec<(&'static str, &SecretString)> {
        vec![("SMTP_PASSWORD", &self.smtp_password)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_tls_is_none_or_starttls_and_anything_else_names_both() {
        let read = |value: &str| serde_json::from_value::<TlsMode>(serde_json::json!(value));
        assert_eq!(read("none").unwrap(), TlsMode::None);
        assert_eq!(read("starttls").unwrap(), TlsMode::StartTls);
        let error = read("tls").unwrap_err().to_string();
        assert!(
            error.contains("`none`") && error.contains("`starttls`"),
            "{error}"
        );
    }
}
