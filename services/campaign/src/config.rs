//! campaign-service's configuration (see `servicekit::config` for the layers).

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use servicekit::app_env::AppEnv;
use servicekit::config::{empty_secret, ServiceConfig, ServiceSettings};

/// Everything campaign-service reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Port, Redis, database, workers (`CAMPAIGN_PORT`, `REDIS_URL`,
    /// `CAMPAIGN_DATABASE_URL`, ...).
    #[serde(flatten)]
    pub service: ServiceSettings,
    /// `dev` or `prod` (`APP_ENV`).
    pub app_env: AppEnv,
    /// The bearer token of the write endpoints and of personal data
    /// (`API_TOKEN`); required in `prod`.
    #[serde(skip_serializing, default = "empty_secret")]
    pub api_token: SecretString,
    /// The key that verifies the unsubscribe links campaign-service serves
    /// (`UNSUBSCRIBE_KEY`, at least 32 characters; notification-service,
    /// which signs them, holds the same); dev has a published one, prod
    /// must keep its own in Vault.
    #[serde(skip_serializing, default = "empty_secret")]
    pub unsubscribe_key: SecretString,
    /// How long a campaign may wait for its audience before it is announced
    /// again, in ms (`CAMPAIGN_REANNOUNCE_MS`); also how often stalled
    /// campaigns are looked for.
    pub reannounce_ms: u64,
    /// Campaigns that may be in progress (expanding or sending) at once
    /// (`CAMPAIGN_MAX_IN_PROGRESS`); a creation past it gets a 429. It
    /// bounds what campaigns hold in Redis (docs/architecture.md).
    pub max_in_progress: u64,
    /// Where browsers reach user-service's API (`USER_SERVICE_URL`,
    /// default `http://localhost:8082`): the dashboard reads the
    /// suppression list there (user-service lets the pages of `PUBLIC_URL`
    /// read it).
    pub user_service_url: String,
    /// Where browsers reach notification-service's API
    /// (`NOTIFICATION_SERVICE_URL`, default `http://localhost:8083`): the
    /// dashboard downloads a campaign's export there (notification-service
    /// lets the pages of `PUBLIC_URL` read it).
    pub notification_service_url: String,
    /// The wait after a webhook endpoint's first failure, in ms
    /// (`CAMPAIGN_WEBHOOK_RETRY_BASE_MS`); it doubles with each failure in
    /// a row.
    pub webhook_retry_base_ms: u64,
    /// The longest wait between two tries of an endpoint, in ms
    /// (`CAMPAIGN_WEBHOOK_RETRY_MAX_MS`).
    pub webhook_retry_max_ms: u64,
    /// How long a webhook event is tried before it is dead, in ms
    /// (`CAMPAIGN_WEBHOOK_RETRY_FOR_MS`; 8 hours).
    pub webhook_retry_for_ms: u64,
    /// How long a webhook POST may take, in ms
    /// (`CAMPAIGN_WEBHOOK_TIMEOUT_MS`).
    pub webhook_timeout_ms: u64,
    /// Whether webhook URLs may go to link-local addresses and cloud
    /// metadata servers (`CAMPAIGN_WEBHOOK_ALLOW_LINK_LOCAL`; never by
    /// default).
    pub webhook_allow_link_local: bool,
}

impl Config {
    /// The webhooks' settings.
    pub fn webhooks(&self) -> crate::webhooks::Settings {
        crate::webhooks::Settings {
            retry_base: Duration::from_millis(self.webhook_retry_base_ms),
            retry_max: Duration::from_millis(self.webhook_retry_max_ms),
            retry_for: Duration::from_millis(self.webhook_retry_for_ms),
            timeout: Duration::from_millis(self.webhook_timeout_ms),
            allow_link_local: self.webhook_allow_link_local,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: ServiceSettings::new(8080),
            app_env: AppEnv::Dev,
            api_token: empty_secret(),
            unsubscribe_key: empty_secret(),
            reannounce_ms: 30_000,
            max_in_progress: 50,
            user_service_url: "http://localhost:8082".into(),
            notification_service_url: "http://localhost:8083".into(),
            webhook_retry_base_ms: 5_000,
            webhook_retry_max_ms: 30 * 60_000,
            webhook_retry_for_ms: 8 * 3_600_000,
            webhook_timeout_ms: 10_000,
            webhook_allow_link_local: false,
        }
    }
}

/// Where [`servicekit::config::load_service`] finds this configuration.
impl ServiceConfig for Config {
    const NAME: &'static str = "campaign-service";
    const PREFIX: &'static str = "CAMPAIGN_";
    const OWN_ENV: &'static [&'static str] = &[
        "app_env",
        "api_token",
        "unsubscribe_key",
        "user_service_url",
        "notification_service_url",
    ];
    const DATABASE_FILE: &'static str = "campaigns.db";

    /// The unsubscribe key: dev's published one stops a prod start.
    fn secrets(&self) -> Vec<(&'static str, &SecretString)> {
        vec![("UNSUBSCRIBE_KEY", &self.unsubscribe_key)]
    }
}
