//! The SMTP relays email-service sends through, read from its settings:
//! `EMAIL_RELAYS` (Vault key `relays`), a list of relay URLs separated by
//! commas or spaces,
//!
//! ```text
//! smtp://[user[:password]@]host[:port][?name=…&tls=none|starttls&pool=N&rate=N&weight=N]
//! ```
//!
//! (user and password percent-encoded: a `,` in a password is `%2C`);
//! without it, the one relay of `SMTP_HOST`, `SMTP_PORT`, `SMTP_USER`,
//! `SMTP_PASSWORD`, `SMTP_TLS` and `SMTP_POOL`. Each relay has a name (its
//! `host:port` unless given), its own pool, its own rate (emails a second,
//! every instance together; none unless given) and a weight: the share of
//! the mail it takes while every relay is up. A weight of 0 makes a
//! standby, used only while the others are down. A list that cannot be
//! read, or with no relay of weight above 0, stops the start with one line
//! naming `EMAIL_RELAYS` (never its passwords).

use lettre::transport::smtp::authentication::Credentials;
use percent_encoding::percent_decode_str;
use secrecy::ExposeSecret;

use crate::config::{Config, TlsMode};

/// One relay, as its settings describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaySettings {
    /// How the figures and the logs name it.
    pub name: String,
    /// Its host name or address.
    pub host: String,
    /// Its SMTP port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: TlsMode,
    /// Its login, if it asks for one.
    pub credentials: Option<Credentials>,
    /// Most connections open to it at once for campaigns' emails.
    pub pool: u32,
    /// Connections to it kept for transactional messages, beyond `pool`
    /// (`EMAIL_RESERVED_CONNECTIONS`).
    pub reserved: u32,
    /// Emails a second through it, every instance together; `None`: as
    /// fast as it takes them (under the shared limits).
    pub per_second: Option<f64>,
    /// Its share of the mail while every relay is up; 0: a standby.
    pub weight: u32,
}

impl RelaySettings {
    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The relays `config` names: `EMAIL_RELAYS`' list, or the one relay of
/// the `SMTP_*` settings. An error is one line naming the setting and the
/// relay (by position, never by its password) and what is wrong.
pub fn relays(config: &Config) -> anyhow::Result<Vec<RelaySettings>> {
    let list = config.relays.expose_secret();
    let relays = if list.trim().is_empty() {
        vec![RelaySettings {
            name: format!("{}:{}", config.smtp_host, config.smtp_port),
            host: config.smtp_host.clone(),
            port: config.smtp_port,
            tls: config.smtp_tls,
            credentials: (!config.smtp_user.is_empty()).then(|| {
                Credentials::new(
                    config.smtp_user.clone(),
                    config.smtp_password.expose_secret().to_string(),
                )
            }),
            pool: config.smtp_pool,
            reserved: config.reserved_connections,
            per_second: None,
            weight: 1,
        }]
    } else {
        list.split([',', ' ', '\n', '\t'])
            .filter(|item| !item.is_empty())
            .enumerate()
            .map(|(at, item)| {
                parse(item, config).map_err(|why| anyhow::anyhow!("EMAIL_RELAYS: relay {} {why}", at + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    for (at, relay) in relays.iter().enumerate() {
        if relays[..at].iter().any(|other| other.name == relay.name) {
            anyhow::bail!("EMAIL_RELAYS: two relays are named `{}`", relay.name);
        }
        if relay.credentials.is_some() && relay.tls == TlsMode::None && !config.smtp_allow_plaintext_auth {
            let setting = if list.trim().is_empty() {
                "SMTP_USER is set but SMTP_TLS is none".to_string()
            } else {
                format!(
                    "EMAIL_RELAYS: relay `{}` has a login but no tls=starttls",
                    relay.name
                )
            };
            anyhow::bail!(
                "{setting}: the SMTP password would cross the network in clear; use STARTTLS, \
                 or SMTP_ALLOW_PLAINTEXT_AUTH=true for a test server on loopback"
            );
        }
    }
    if relays.iter().all(|relay| relay.weight == 0) {
        anyhow::bail!("EMAIL_RELAYS: no relay has a weight above 0: every one is a standby");
    }
    Ok(relays)
}

/// One relay URL; the error says what is wrong with it, without its
/// password.
fn parse(item: &str, config: &Config) -> Result<RelaySettings, String> {
    let url = url::Url::parse(item).map_err(|error| format!("is not a URL ({error})"))?;
    if url.scheme() != "smtp" {
        return Err(format!(
            "has the scheme `{}`; only `smtp://` (with `tls=starttls` to secure it)",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or("has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port().unwrap_or(25);
    let decode = |text: &str, what: &str| {
        percent_decode_str(text)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| format!("has a {what} that is not UTF-8 once decoded"))
    };
    let user = decode(url.username(), "user")?;
    let password = decode(url.password().unwrap_or(""), "password")?;
    let mut relay = RelaySettings {
        name: format!("{host}:{port}"),
        host,
        port,
        tls: config.smtp_tls,
        credentials: (!user.is_empty()).then(|| Credentials::new(user, password)),
        pool: config.smtp_pool,
        reserved: config.reserved_connections,
        per_second: None,
        weight: 1,
    };
    for (key, value) in url.query_pairs() {
        let number = |what: &str| {
            value
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite() && *number >= 0.0)
                .ok_or(format!("has {key}={value}, which is not {what}"))
        };
        match key.as_ref() {
            "name" if is_name(&value) => relay.name = value.into_owned(),
            "name" => {
                return Err(format!(
                    "has name={value}; a name is letters, digits, `.`, `-`, `_` and `:`"
                ))
            }
            "tls" => {
                relay.tls = match value.as_ref() {
                    "none" => TlsMode::None,
                    "starttls" => TlsMode::StartTls,
                    _ => return Err(format!("has tls={value}; it is `none` or `starttls`")),
                }
            }
            "pool" => relay.pool = whole(number("a number of connections")?, &key, &value)?.max(1),
            "weight" => relay.weight = whole(number("a whole number")?, &key, &value)?,
            "rate" => {
                relay.per_second = Some(number("a number of emails a second")?).filter(|rate| *rate > 0.0);
            }
            _ => {
                return Err(format!(
                    "has `{key}`, which is not one of name, tls, pool, rate, weight"
                ))
            }
        }
    }
    Ok(relay)
}

/// `number` as a whole count, or an error naming `key=value`.
fn whole(number: f64, key: &str, value: &str) -> Result<u32, String> {
    if number.fract() == 0.0 && number <= f64::from(u32::MAX) {
        Ok(number as u32)
    } else {
        Err(format!("has {key}={value}, which is not a whole number"))
    }
}

/// Whether `name` can name a relay in figures and Redis keys.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(list: &str) -> anyhow::Result<Vec<RelaySettings>> {
        let config = Config {
            relays: list.to_string().into(),
            ..Config::default()
        };
        relays(&config)
    }

    #[test]
    fn without_a_list_the_smtp_settings_are_the_one_relay() {
        let relays = with("").unwrap();
        assert_eq!(relays.len(), 1);
        assert_eq!(relays[0].name, "127.0.0.1:2500");
        assert_eq!(
            (relays[0].pool, relays[0].weight, relays[0].per_second),
            (16, 1, None)
        );
    }

    #[test]
    fn a_list_gives_each_relay_its_own_settings() {
        let relays = with(
            "smtp://AKIA%2C1:p%40ss%2Cword@email-smtp.eu-west-1.amazonaws.com:587?name=ses&tls=starttls&pool=10&rate=14&weight=3, \
             smtp://[::1]:2525?weight=0",
        )
        .unwrap();
        let ses = &relays[0];
        assert_eq!(ses.name, "ses");
        assert_eq!(ses.address(), "email-smtp.eu-west-1.amazonaws.com:587");
        assert_eq!(ses.tls, TlsMode::StartTls);
        assert_eq!(
            ses.credentials,
            Some(Credentials::new("AKIA,1".into(), "p@ss,word".into()))
        );
        assert_eq!((ses.pool, ses.per_second, ses.weight), (10, Some(14.0), 3));
        let standby = &relays[1];
        assert_eq!(
            (standby.name.as_str(), standby.host.as_str(), standby.port),
            ("::1:2525", "::1", 2525)
        );
        assert_eq!((standby.weight, standby.credentials.is_none()), (0, true));
    }

    #[test]
    fn a_bad_list_is_named_without_its_passwords() {
        for (list, why) in [
            ("mail.example.com", "relay 1 is not a URL"),
            ("smtps://a.example", "only `smtp://`"),
            ("smtp://a.example?tls=ssl", "tls=ssl"),
            ("smtp://a.example?pool=many", "pool=many"),
            ("smtp://a.example?weight=1.5", "weight=1.5"),
            ("smtp://a.example?rate=-3", "rate=-3"),
            ("smtp://a.example?colour=red", "`colour`"),
            ("smtp://a.example?name=a%20b", "has name=a b"),
            (
                "smtp://a.example, smtp://a.example",
                "two relays are named `a.example:25`",
            ),
            ("smtp://a.example?weight=0", "no relay has a weight above 0"),
            ("smtp://user:secret@a.example", "has a login but no tls=starttls"),
        ] {
            let error = with(list).unwrap_err().to_string();
            assert!(error.starts_with("EMAIL_RELAYS: "), "{error}");
            assert!(error.contains(why), "{list}: {error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }
}
