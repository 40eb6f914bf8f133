//! user-service's configuration (see `servicekit::config` for the layers).

use serde::{Deserialize, Serialize};
use servicekit::streams::{StreamSettings, STREAM_ENV};

/// Everything user-service reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    /// HTTP port (`USER_PORT`).
    pub port: u16,
    /// The event store (`REDIS_URL`).
    pub redis_url: String,
    /// Its database (`USER_DATABASE_URL`); an SQLite file under `DATA_DIR`
    /// when empty.
    pub database_url: String,
    /// Where SQLite files go (`DATA_DIR`).
    pub data_dir: String,
    /// How many users to seed at start (`SEED_USERS`); 0 seeds none.
    pub seed_users: i64,
    /// Users per page when expanding an audience.
    pub page_size: i64,
    /// Stream worker tuning.
    #[serde(flatten)]
    pub streams: StreamSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8082,
            redis_url: "redis://127.0.0.1:6379".into(),
            database_url: String::new(),
            data_dir: "data".into(),
            seed_users: 100_000,
            page_size: 1_000,
            streams: StreamSettings::default(),
        }
    }
}

impl Config {
    /// Loads the configuration.
    pub fn load() -> anyhow::Result<Self> {
        let mut shared = vec!["redis_url", "data_dir", "seed_users"];
        shared.extend(STREAM_ENV);
        let mut config: Self = servicekit::config::load("user-service", &Self::default(), &shared, "USER_")?;
        if config.database_url.is_empty() {
            let env = servicekit::config::AppEnv::from_env()?;
            config.database_url = format!("sqlite://{}/{}/users.db", config.data_dir, env.as_str());
        }
        Ok(config)
    }
}
