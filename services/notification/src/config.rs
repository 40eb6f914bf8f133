//! notification-service's configuration (see `servicekit::config` for the layers).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use servicekit::app_env::AppEnv;
use servicekit::config::{empty_secret, ServiceConfig, ServiceSettings};

/// Everything notification-service reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Port, Redis, database, workers (`NOTIFICATION_PORT`, `REDIS_URL`,
    /// `NOTIFICATION_DATABASE_URL`, ...).
    #[serde(flatten)]
    pub service: ServiceSettings,
    /// `dev` or `prod` (`APP_ENV`).
    pub app_env: AppEnv,
    /// The bearer token that reading a notification (it holds the
    /// recipient's address) needs (`API_TOKEN`); required in `prod`.
    #[serde(skip_serializing, default = "empty_secret")]
    pub api_token: SecretString,
    /// The key that signs each email's unsubscribe link
    /// (`UNSUBSCRIBE_KEY`, at least 32 characters; campaign-service, which
    /// serves the link, holds the same); dev has a published one, prod
    /// must keep its own in Vault.
    #[serde(skip_serializing, default = "empty_secret")]
    pub unsubscribe_key: SecretString,
    /// Where recipients reach campaign-service, on which unsubscribe links
    /// are built (`PUBLIC_URL`, default `http://localhost:8080`).
    pub public_url: String,
    /// An address that unsubscribes by email too, offered beside the link
    /// in `List-Unsubscribe` (`UNSUBSCRIBE_MAILTO`; unset: none).
    pub unsubscribe_mailto: Option<String>,
    /// The window every expansion shares (`EXPANSION_BACKLOG`, as
    /// user-service reads it): resends publish their pages under it too.
    pub expansion_backlog: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: ServiceSettings::new(8083),
            app_env: AppEnv::Dev,
            api_token: empty_secret(),
            unsubscribe_key: empty_secret(),
            public_url: "http://localhost:8080".into(),
            unsubscribe_mailto: None,
            expansion_backlog: 10_000,
        }
    }
}

/// Where [`servicekit::config::load_service`] finds this configuration.
impl ServiceConfig for Config {
    const NAME: &'static str = "notification-service";
    const PREFIX: &'static str = "NOTIFICATION_";
    const OWN_ENV: &'static [&'static str] = &[
        "app_env",
        "api_token",
        "unsubscribe_key",
        "public_url",
        "unsubscribe_mailto",
        "expansion_backlog",
    ];
    const DATABASE_FILE: &'static str = "notifications.db";

    fn secrets(&self) -> Vec<(&'static str, &SecretString)> {
        vec![("UNSUBSCRIBE_KEY", &self.unsubscribe_key)]
    }
}
