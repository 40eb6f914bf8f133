//! user-service's configuration (see `servicekit::config` for the layers).

use serde::{Deserialize, Serialize};
use servicekit::config::{ServiceConfig, ServiceSettings};

/// Everything user-service reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Port, Redis, database, workers (`USER_PORT`, `REDIS_URL`,
    /// `USER_DATABASE_URL`, ...).
    #[serde(flatten)]
    pub service: ServiceSettings,
    /// How many users to seed at start (`SEED_USERS`); 0 seeds none.
    pub seed_users: i64,
    /// Users per page when expanding an audience.
    pub page_size: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: ServiceSettings::new(8082),
            seed_users: 100_000,
            page_size: 1_000,
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
    pub fn load() -> anyhow::Result<Self> {
        servicekit::config::load_service(
            "user-service",
            "USER_",
            &Self::default(),
            &["seed_users"],
            "users.db",
        )
    }
}
