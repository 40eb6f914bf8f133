//! user-service's configuration (see `servicekit::config` for the layers).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use servicekit::app_env::AppEnv;
use servicekit::config::{empty_secret, ServiceConfig, ServiceSettings};

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
    /// Entries the streams behind an expansion may hold before it waits
    /// for them to drain (`EXPANSION_BACKLOG`): the bound on what a
    /// campaign occupies in Redis, whatever its audience.
    pub expansion_backlog: u64,
    /// How long an expansion's lease outlives its last renewal
    /// (`USER_EXPANSION_LEASE_MS`): how soon another instance resumes the
    /// expansion of one that died.
    pub expansion_lease_ms: u64,
    /// `dev` or `prod` (`APP_ENV`).
    pub app_env: AppEnv,
    /// The bearer token that reading users needs (`API_TOKEN`); required
    /// in `prod`.
    #[serde(skip_serializing, default = "empty_secret")]
    pub api_token: SecretString,
    /// Where browsers reach campaign-service and its dashboard
    /// (`PUBLIC_URL`, default `http://localhost:8080`): pages of that
    /// origin may read this service's API (the dashboard shows the
    /// suppression list), as those of `ALLOWED_ORIGINS` may.
    pub public_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: ServiceSettings::new(8082),
            seed_users: 100_000,
            page_size: 1_000,
            expansion_backlog: 10_000,
            expansion_lease_ms: 60_000,
            app_env: AppEnv::Dev,
            api_token: empty_secret(),
            public_url: "http://localhost:8080".into(),
        }
    }
}

/// Where [`servicekit::config::load_service`] finds this configuration.
impl ServiceConfig for Config {
    const NAME: &'static str = "user-service";
    const PREFIX: &'static str = "USER_";
    const OWN_ENV: &'static [&'static str] = &[
        "seed_users",
        "expansion_backlog",
        "app_env",
        "api_token",
        "public_url",
    ];
    const DATABASE_FILE: &'static str = "users.db";
}
