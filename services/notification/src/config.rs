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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: ServiceSettings::new(8083),
            app_env: AppEnv::Dev,
            api_token: empty_secret(),
        }
    }
}

/// Where [`servicekit::config::load_service`] finds this configuration.
impl ServiceConfig for Config {
    const NAME: &'static str = "notification-service";
    const PREFIX: &'static str = "NOTIFICATION_";
    const OWN_ENV: &'static [&'static str] = &["app_env", "api_token"];
    const DATABASE_FILE: &'static str = "notifications.db";
}
