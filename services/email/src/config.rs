//! email-service's configuration (see `servicekit::config`).

use serde::{Deserialize, Serialize};
use servicekit::streams::{StreamSettings, STREAM_ENV};

/// Everything email-service reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    /// HTTP port (`EMAIL_PORT`).
    pub port: u16,
    /// The event store (`REDIS_URL`).
    pub redis_url: String,
    /// The send ledger's database (`EMAIL_DATABASE_URL`); an SQLite file
    /// under `DATA_DIR` when empty.
    pub database_url: String,
    /// Where SQLite files go (`DATA_DIR`).
    pub data_dir: String,
    /// SMTP server host (`SMTP_HOST`).
    pub smtp_host: String,
    /// SMTP server port (`SMTP_PORT`).
    pub smtp_port: u16,
    /// SMTP user (`SMTP_USER`); no authentication when empty.
    pub smtp_user: String,
    /// SMTP password (`SMTP_PASSWORD`).
    pub smtp_password: String,
    /// `none` (plain, for local test servers) or `starttls` (`SMTP_TLS`).
    pub smtp_tls: String,
    /// Connections kept open to the SMTP server (`SMTP_POOL`).
    pub smtp_pool: u32,
    /// The sender address (`MAIL_FROM`).
    pub mail_from: String,
    /// How long a send may hold its ledger lease before another instance
    /// may take it over.
    pub lease_ms: i64,
    /// Stream worker tuning.
    #[serde(flatten)]
    pub streams: StreamSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8084,
            redis_url: "redis://127.0.0.1:6379".into(),
            database_url: String::new(),
            data_dir: "data".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 2500,
            smtp_user: String::new(),
            smtp_password: String::new(),
            smtp_tls: "none".into(),
            smtp_pool: 16,
            mail_from: "comms <comms@example.com>".into(),
            lease_ms: 60_000,
            streams: StreamSettings {
                max_deliveries: 8,
                concurrency: 32,
                ..StreamSettings::default()
            },
        }
    }
}

impl Config {
    /// Loads the configuration.
    pub fn load() -> anyhow::Result<Self> {
        let mut shared = vec![
            "redis_url",
            "data_dir",
            "smtp_host",
            "smtp_port",
            "smtp_user",
            "smtp_password",
            "smtp_tls",
            "smtp_pool",
            "mail_from",
        ];
        shared.extend(STREAM_ENV);
        let mut config: Self =
            servicekit::config::load("email-service", &Self::default(), &shared, "EMAIL_")?;
        if config.database_url.is_empty() {
            let env = servicekit::config::AppEnv::from_env()?;
            config.database_url = format!("sqlite://{}/{}/email.db", config.data_dir, env.as_str());
        }
        Ok(config)
    }
}
