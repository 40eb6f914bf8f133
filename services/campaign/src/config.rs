//! campaign-service's configuration (see `servicekit::config`).

use serde::{Deserialize, Serialize};
use servicekit::streams::{StreamSettings, STREAM_ENV};

/// Everything campaign-service reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    /// HTTP port (`CAMPAIGN_PORT`).
    pub port: u16,
    /// The event store (`REDIS_URL`).
    pub redis_url: String,
    /// Its database (`CAMPAIGN_DATABASE_URL`); an SQLite file under
    /// `DATA_DIR` when empty.
    pub database_url: String,
    /// Where SQLite files go (`DATA_DIR`).
    pub data_dir: String,
    /// `dev` or `prod` (`APP_ENV`).
    pub app_env: String,
    /// The bearer token of the write endpoints (`API_TOKEN`); required in
    /// `prod`.
    pub api_token: String,
    /// Stream worker tuning.
    #[serde(flatten)]
    pub streams: StreamSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            redis_url: "redis://127.0.0.1:6379".into(),
            database_url: String::new(),
            data_dir: "data".into(),
            app_env: "dev".into(),
            api_token: String::new(),
            streams: StreamSettings::default(),
        }
    }
}

impl Config {
    /// Loads the configuration.
    pub fn load() -> anyhow::Result<Self> {
        let mut shared = vec!["redis_url", "data_dir", "app_env", "api_token"];
        shared.extend(STREAM_ENV);
        let mut config: Self =
            servicekit::config::load("campaign-service", &Self::default(), &shared, "CAMPAIGN_")?;
        if config.database_url.is_empty() {
            let env = servicekit::config::AppEnv::from_env()?;
            config.database_url = format!("sqlite://{}/{}/campaigns.db", config.data_dir, env.as_str());
        }
        Ok(config)
    }
}
