//! campaign-service's configuration (see `servicekit::config` for the layers).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use servicekit::config::{empty_secret, AppEnv, ServiceConfig, ServiceSettings};

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
    /// How long a campaign may wait for its audience before it is announced
    /// again, in ms (`CAMPAIGN_REANNOUNCE_MS`); also how often stalled
    /// campaigns are looked for.
    pub reannounce_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: ServiceSettings::new(8080),
            app_env: AppEnv::Dev,
            api_token: empty_secret(),
            reannounce_ms: 30_000,
        }
    }
}

impl ServiceConfig for Config {
    fn settings_mut(&mut self) -> &mut ServiceSettings {
        &mut self.service
    }
}

impl Config {
    /// Loads the configuration.
    pub async fn load() -> anyhow::Result<Self> {
        servicekit::config::load_service(
            "campaign-service",
            "CAMPAIGN_",
            &Self::default(),
            &["app_env", "api_token"],
            "campaigns.db",
        )
        .await
    }
}
