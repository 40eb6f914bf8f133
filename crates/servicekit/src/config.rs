//! Layered configuration, lowest to highest precedence:
//!
//! 1. the service's built-in defaults;
//! 2. `config/<APP_ENV>.toml`: its `[default]` table, then the table named
//!    after the service (e.g. `[user-service]`);
//! 3. shared environment variables (`REDIS_URL`, `DATA_DIR`, …, each
//!    service names the ones it reads);
//! 4. the service's own prefixed variables (`USER_PORT`,
//!    `USER_DATABASE_URL`, …).
//!
//! `APP_ENV` is `dev` (the default) or `prod`; `CONFIG_DIR` moves the
//! `config/` directory.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The environment a service runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Local development: demo endpoints open.
    Dev,
    /// Production: write endpoints need a token.
    Prod,
}

impl AppEnv {
    /// Reads `APP_ENV` (default `dev`).
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(&std::env::var("APP_ENV").unwrap_or_default())
    }

    /// `dev` (or empty) or `prod`.
    pub fn parse(value: &str) -> anyhow::Result<Self> {
        match value {
            "" | "dev" => Ok(Self::Dev),
            "prod" => Ok(Self::Prod),
            other => anyhow::bail!("APP_ENV must be `dev` or `prod`, not `{other}`"),
        }
    }

    /// `dev` or `prod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Prod => "prod",
        }
    }
}

/// Loads a service's configuration from the layers above.
///
/// `shared_env` lists the unprefixed variables the service reads (as
/// lowercase keys, e.g. `"redis_url"`); `prefix` is its own (e.g. `"USER_"`).
pub fn load<T: DeserializeOwned + Serialize>(
    service: &str,
    defaults: &T,
    shared_env: &[&str],
    prefix: &str,
) -> anyhow::Result<T> {
    let env = AppEnv::from_env()?;
    let dir = std::env::var("CONFIG_DIR").unwrap_or_else(|_| "config".into());
    let file = format!("{dir}/{}.toml", env.as_str());
    Figment::from(Serialized::defaults(defaults))
        .merge(Toml::file(&file).nested())
        .select(service)
        .merge(Env::raw().only(shared_env).global())
        .merge(Env::prefixed(prefix).global())
        .extract()
        .map_err(|error| anyhow::anyhow!("invalid configuration ({file} and environment): {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Demo {
        port: u16,
        redis_url: String,
        greeting: String,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test-jail signature
    fn file_then_shared_env_then_prefixed_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_dir("config")?;
            jail.create_file(
                "config/dev.toml",
                r#"
                [default]
                redis_url = "redis://from-file-default"
                greeting = "file default"
                [demo-service]
                greeting = "file service"
                port = 9001
                "#,
            )?;
            let defaults = Demo {
                port: 1,
                redis_url: "redis://built-in".into(),
                greeting: "built-in".into(),
            };
            let loaded = load("demo-service", &defaults, &["redis_url"], "DEMO_").unwrap();
            assert_eq!(loaded.port, 9001);
            assert_eq!(loaded.greeting, "file service");
            assert_eq!(loaded.redis_url, "redis://from-file-default");

            jail.set_env("REDIS_URL", "redis://from-env");
            jail.set_env("DEMO_PORT", "9002");
            let loaded = load("demo-service", &defaults, &["redis_url"], "DEMO_").unwrap();
            assert_eq!(
                (loaded.port, loaded.redis_url.as_str()),
                (9002, "redis://from-env")
            );

            jail.set_env("APP_ENV", "prod");
            let loaded = load("demo-service", &defaults, &["redis_url"], "DEMO_").unwrap();
            assert_eq!(
                loaded.greeting, "built-in",
                "prod reads config/prod.toml, absent here"
            );

            jail.set_env("APP_ENV", "staging");
            assert!(load("demo-service", &defaults, &[], "DEMO_").is_err());
            Ok(())
        });
    }
}
