//! Where Redis is and how the event store talks to it.
//!
//! `redis://` and `rediss://` (TLS) URLs are accepted, with an optional user
//! and password. The URL is kept only inside the client; what is printed is
//! [`RedisTarget`]'s `Display`, which shows the password as `***`.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::AsyncConnectionConfig;

use crate::error::{Error, Result};

/// How long a command may take before the connection is considered broken.
/// Large pipelines (thousands of `XADD`s) need far more than the client's
/// default of half a second.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A parsed Redis location: cheap to clone, safe to print.
#[derive(Clone)]
pub struct RedisTarget {
    client: redis::Client,
    redacted: String,
}

impl RedisTarget {
    /// Parses `redis://[user][:password@]host[:port][/db]` or `rediss://…`.
    pub fn parse(url: &str) -> Result<Self> {
        let redacted = redact(url);
        let client = redis::Client::open(url).map_err(|e| Error::InvalidUrl {
            url: redacted.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self { client, redacted })
    }

    /// A self-healing shared connection for ordinary commands: it reconnects
    /// on its own after Redis drops or restarts.
    pub async fn shared(&self) -> Result<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(2);
        self.client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|source| self.connect_error(source))
    }

    /// A connection of its own, for commands that block the connection on the
    /// server side (`XREADGROUP … BLOCK`). `block` is added to the response
    /// timeout so a long block is not mistaken for a dead server.
    pub async fn dedicated(&self, block: Duration) -> Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT + block))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| self.connect_error(source))
    }

    fn connect_error(&self, source: redis::RedisError) -> Error {
        Error::Connect {
            target: self.redacted.clone(),
            source,
        }
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisTarget").field(&self.redacted).finish()
    }
}

/// The URL with its password (if any) replaced by `***`; unparsable input is
/// hidden entirely, since it may be a password pasted in the wrong place.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_the_password_and_keeps_the_rest() {
        assert_eq!(
            redact("redis://:s3cret@localhost:6380/2"),
            "redis://:***@localhost:6380/2"
        );
        assert_eq!(
            redact("rediss://app:s3cret@cache.example:6380"),
            "rediss://app:***@cache.example:6380"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("s3cret"), "<unparsable URL>");
    }

    #[test]
    fn an_invalid_url_is_refused_without_echoing_the_password() {
        let err = RedisTarget::parse("http://:s3cret@localhost").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn tls_urls_are_accepted() {
        let target = RedisTarget::parse("rediss://:s3cret@localhost:6380").unwrap();
        assert_eq!(target.to_string(), "rediss://:***@localhost:6380");
    }
}
