//! notification-service's configuration (see `servicekit::config` for the layers).

use serde::{Deserialize, Serialize};
use servicekit::config::{ServiceConfig, ServiceSettings};

/// Everything notification-service reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Port, Redis, database, workers (`NOTIFICATION_PORT`, `REDIS_URL`,
    /// `NOTIFICATION_DATABASE_URL`, ...).
    #[serde(flatten)]
    pub service: ServiceSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: ServiceSettings::new(8083),
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
            "notification-service",
            "NOTIFICATION_",
            &Self::default(),
            &[],
            "notifications.db",
        )
        .await
    }
}
