//! Layered configuration, lowest to highest precedence:
//!
//! 1. the service's built-in defaults;
//! 2. `config/<APP_ENV>.toml`: its `[default]` table, then the table named
//!    after the service (e.g. `[user-service]`);
//! 3. the service's secret in Vault, `secret/comms/<APP_ENV>/<service>`,
//!    when `VAULT_ADDR` and `VAULT_TOKEN` are set (see [`crate::vault`]);
//! 4. shared environment variables (`REDIS_URL`, `DATA_DIR`, …, each
//!    service names the ones it reads);
//! 5. the service's own prefixed variables (`USER_PORT`,
//!    `USER_DATABASE_URL`, …).
//!
//! `APP_ENV` is `dev` (the default) or `prod`; `CONFIG_DIR` moves the
//! `config/` directory. The environment overrides Vault so that one
//! setting can be changed for one run without writing to Vault.
//!
//! Secret values (URLs that carry passwords, SMTP passwords, API tokens)
//! are [`SecretString`]s: their `Debug` is redacted, and they are exposed
//! only where they are used.

use std::collections::BTreeMap;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::app_env::AppEnv;
use crate::examples::refuse_examples;
use crate::http::capacity::Capacity;
use crate::http::SiteSettings;
use crate::streams::{StreamSettings, STREAM_ENV};
use crate::vault::VaultSource;
use crate::withheld::without_values;

/// Keys and values a service read from Vault.
pub type VaultSecrets = BTreeMap<String, serde_json::Value>;

/// Loads a service's configuration from the layers above, `vault` being
/// what its Vault secret holds (empty without Vault).
///
/// `shared_env` lists the unprefixed variables the service reads (as
/// lowercase keys, e.g. `"redis_url"`); `prefix` is its own (e.g. `"USER_"`).
/// Strings that a numeric setting needs as numbers (Vault keeps strings:
/// `smtp_port = "2500"`) are read as numbers.
pub fn load<T: DeserializeOwned + Serialize>(
    service: &str,
    defaults: &T,
    vault: &VaultSecrets,
    shared_env: &[&str],
    prefix: &str,
) -> anyhow::Result<T> {
    Layers::new(AppEnv::from_env()?, service, defaults, vault, shared_env, prefix).extract()
}

/// The layers of one service's configuration, merged in their order of
/// precedence, and the file among them (for error messages).
struct Layers {
    figment: Figment,
    file: String,
}

impl Layers {
    fn new<T: Serialize>(
        env: AppEnv,
        service: &str,
        defaults: &T,
        vault: &VaultSecrets,
        shared_env: &[&str],
        prefix: &str,
    ) -> Self {
        let dir = std::env::var("CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let file = format!("{dir}/{}.toml", env.as_str());
        let figment = Figment::from(Serialized::defaults(defaults))
            .merge(Toml::file(&file).nested())
            .select(service)
            .merge(Serialized::globals(vault))
            .merge(Env::raw().only(shared_env).global())
            .merge(Env::prefixed(prefix).global());
        Self { figment, file }
    }

    /// What the layers say, as a `T`. An error names the key and where
    /// its value came from, never the value (see [`without_values`]).
    fn extract<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        self.figment.extract_lossy().map_err(|error| {
            anyhow::anyhow!(
                "invalid configuration ({}, Vault and environment): {}",
                self.file,
                without_values(error)
            )
        })
    }
}

/// Reads `service`'s secret from Vault when `VAULT_ADDR` is set; nothing
/// otherwise. Logs the path and the keys it found, never their values.
pub async fn read_vault(service: &str) -> anyhow::Result<VaultSecrets> {
    let Some(source) = VaultSource::from_env(AppEnv::from_env()?, service)? else {
        return Ok(VaultSecrets::new());
    };
    let secrets = source.read().await?;
    let keys: Vec<&str> = secrets.keys().map(String::as_str).collect();
    tracing::info!(path = %source.location(), keys = %keys.join(","), "secrets read from Vault");
    Ok(secrets)
}

/// What every service reads: where it listens, its event store, its
/// database and how its stream workers are tuned. A service's own
/// configuration flattens this in beside its own settings.
///
/// The two URLs are secrets (they carry passwords); they take no part in
/// the serialized defaults, and their defaults come from serde instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceSettings {
    /// Address to listen on.
    pub host: String,
    /// HTTP port (`<PREFIX>PORT`, e.g. `USER_PORT`).
    pub port: u16,
    /// The event store (`REDIS_URL`).
    #[serde(skip_serializing, default = "default_redis_url")]
    pub redis_url: SecretString,
    /// The service's database (`<PREFIX>DATABASE_URL`); an SQLite file
    /// under `DATA_DIR/<APP_ENV>/` when empty.
    #[serde(skip_serializing, default = "empty_secret")]
    pub database_url: SecretString,
    /// Where SQLite files go (`DATA_DIR`).
    pub data_dir: String,
    /// Stream worker tuning.
    #[serde(flatten)]
    pub streams: StreamSettings,
    /// How many partitions the per-recipient streams are split into
    /// (`STREAM_PARTITIONS`, see `contracts::Streams`): more than 1 spreads
    /// them over the masters of a Redis Cluster. Every service of a
    /// deployment must be given the same count; one given another refuses
    /// to start.
    #[serde(default = "one_partition")]
    pub stream_partitions: u32,
    /// How many requests and event streams it serves at once
    /// (`<PREFIX>MAX_REQUESTS`, `<PREFIX>MAX_STREAMS`).
    #[serde(flatten, default)]
    pub capacity: Capacity,
    /// The host names and origins its HTTP callers may use besides its own
    /// (`ALLOWED_HOSTS`, `ALLOWED_ORIGINS`; see [`crate::http::Site`]).
    #[serde(flatten)]
    pub site: SiteSettings,
}

impl ServiceSettings {
    /// Defaults for a service listening on `port`, on a local Redis.
    pub fn new(port: u16) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port,
            redis_url: default_redis_url(),
            database_url: empty_secret(),
            data_dir: "data".into(),
            streams: StreamSettings::default(),
            stream_partitions: one_partition(),
            capacity: Capacity::default(),
            site: SiteSettings::default(),
        }
    }

    /// Defaults for a service on this Redis and database, on port 0 (a
    /// free one, picked at build): how tests, and stacks run in one
    /// process, start a service beside the servers they started.
    pub fn on(redis_url: &str, database_url: &str) -> Self {
        Self {
            redis_url: redis_url.into(),
            database_url: database_url.into(),
            ..Self::new(0)
        }
    }
}

/// Streams whole: a single Redis needs no more.
fn one_partition() -> u32 {
    1
}

/// A Redis server on this machine's default port.
fn default_redis_url() -> SecretString {
    "redis://127.0.0.1:6379".into()
}

/// No value: the setting is unset.
pub fn empty_secret() -> SecretString {
    SecretString::default()
}

/// A service's configuration: a struct that flattens in the
/// [`ServiceSettings`] beside the service's own settings, its `Default`
/// the service's defaults, and these constants, which say where
/// [`load_service`] finds it. That is all a service writes: the layers,
/// Vault and the database default are [`load_service`]'s, the same for
/// every service.
pub trait ServiceConfig: Default + DeserializeOwned + Serialize {
    /// The service's name (`user-service`): the table of
    /// `config/<APP_ENV>.toml` it reads, and its Vault secret.
    const NAME: &'static str;
    /// The prefix of its own variables (`USER_`, for `USER_PORT`).
    const PREFIX: &'static str;
    /// The unprefixed variables it reads besides the shared ones, as
    /// lowercase keys (`"api_token"` for `API_TOKEN`).
    const OWN_ENV: &'static [&'static str];
    /// Its SQLite file under `DATA_DIR/<APP_ENV>/` when no database URL is
    /// given (`users.db`).
    const DATABASE_FILE: &'static str;

    /// Its own secrets besides the Redis and database URLs, each with the
    /// variable that sets it (`("SMTP_PASSWORD", &self.smtp_password)`):
    /// in `prod`, [`load_service`] refuses a published example value
    /// among them ([`crate::examples`]). None by default.
    fn secrets(&self) -> Vec<(&'static str, &SecretString)> {
        Vec::new()
    }
}

/// Loads the configuration of a service (see [`load`], over its
/// `Default`, with its secret from Vault when one is configured). An empty
/// database URL becomes the SQLite file
/// `DATA_DIR/<APP_ENV>/<DATABASE_FILE>`: the shared settings are read
/// first, for `DATA_DIR`, and that URL is then the top layer. In `prod`, a
/// published example password in either URL, or in [`ServiceConfig::secrets`],
/// stops the start in one line ([`crate::examples::refuse_examples`]).
pub async fn load_service<T: ServiceConfig>() -> anyhow::Result<T> {
    let env = AppEnv::from_env()?;
    let mut shared = vec![
        "redis_url",
        "data_dir",
        "stream_partitions",
        "allowed_hosts",
        "allowed_origins",
    ];
    shared.extend(STREAM_ENV);
    shared.extend(T::OWN_ENV);
    let vault = read_vault(T::NAME).await?;
    let mut layers = Layers::new(env, T::NAME, &T::default(), &vault, &shared, T::PREFIX);
    let settings: ServiceSettings = layers.extract()?;
    let database_variable = format!("{}DATABASE_URL", T::PREFIX);
    refuse_examples(
        env,
        &[
            ("REDIS_URL", &settings.redis_url),
            (&database_variable, &settings.database_url),
        ],
    )?;
    if settings.database_url.expose_secret().is_empty() {
        let url = format!(
            "sqlite://{}/{}/{}",
            settings.data_dir,
            env.as_str(),
            T::DATABASE_FILE
        );
        layers.figment = layers.figment.merge(Serialized::global("database_url", url));
    }
    let config: T = layers.extract()?;
    refuse_examples(env, &config.secrets())?;
    Ok(config)
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

    /// Runs `future` to its end, in a test jail's synchronous closure.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test-jail signature
    fn file_then_vault_then_shared_env_then_prefixed_env() {
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
            let none = VaultSecrets::new();
            let loaded = load("demo-service", &defaults, &none, &["redis_url"], "DEMO_").unwrap();
            assert_eq!(loaded.port, 9001);
            assert_eq!(loaded.greeting, "file service");
            assert_eq!(loaded.redis_url, "redis://from-file-default");

            let vault: VaultSecrets = [
                ("redis_url".to_string(), serde_json::json!("redis://from-vault")),
                ("port".to_string(), serde_json::json!("9003")),
            ]
            .into();
            let loaded = load("demo-service", &defaults, &vault, &["redis_url"], "DEMO_").unwrap();
            assert_eq!(
                (loaded.port, loaded.redis_url.as_str(), loaded.greeting.as_str()),
                (9003, "redis://from-vault", "file service"),
                "Vault overrides the file, and its strings become numbers where needed"
            );

            jail.set_env("REDIS_URL", "redis://from-env");
            jail.set_env("DEMO_PORT", "9002");
            let loaded = load("demo-service", &defaults, &vault, &["redis_url"], "DEMO_").unwrap();
            assert_eq!(
                (loaded.port, loaded.redis_url.as_str()),
                (9002, "redis://from-env")
            );

            jail.set_env("APP_ENV", "prod");
            let loaded = load("demo-service", &defaults, &none, &["redis_url"], "DEMO_").unwrap();
            assert_eq!(
                loaded.greeting, "built-in",
                "prod reads config/prod.toml, absent here"
            );

            jail.set_env("APP_ENV", "staging");
            assert!(load("demo-service", &defaults, &none, &[], "DEMO_").is_err());
            Ok(())
        });
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct WithEnv {
        app_env: AppEnv,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test-jail signature
    fn the_environment_is_read_once_as_a_value_and_a_bad_one_names_the_good_ones() {
        figment::Jail::expect_with(|jail| {
            let defaults = WithEnv { app_env: AppEnv::Dev };
            let none = VaultSecrets::new();
            let load_env = || load("demo-service", &defaults, &none, &["app_env"], "DEMO_");
            assert_eq!(load_env().unwrap().app_env, AppEnv::Dev);
            jail.set_env("APP_ENV", "prod");
            assert_eq!(load_env().unwrap().app_env, AppEnv::Prod);

            jail.set_env("APP_ENV", "dev");
            let vault: VaultSecrets = [("app_env".to_string(), serde_json::json!("staging"))].into();
            let error = load("demo-service", &defaults, &vault, &[], "DEMO_")
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("APP_ENV must be `dev` or `prod`, not `staging`"),
                "{error}"
            );
            Ok(())
        });
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct DemoService {
        #[serde(flatten)]
        service: ServiceSettings,
        greeting: String,
    }

    impl Default for DemoService {
        fn default() -> Self {
            Self {
                service: ServiceSettings::new(9000),
                greeting: "hi".into(),
            }
        }
    }

    impl ServiceConfig for DemoService {
        const NAME: &'static str = "demo-service";
        const PREFIX: &'static str = "DEMO_";
        const OWN_ENV: &'static [&'static str] = &[];
        const DATABASE_FILE: &'static str = "demo.db";
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test-jail signature
    fn a_service_gets_an_sqlite_file_per_environment_unless_given_a_url() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DATA_DIR", "/var/lib/comms");
            jail.set_env("DEMO_PORT", "9100");
            jail.set_env("CLAIM_IDLE_MS", "1500");
            jail.set_env("ALLOWED_HOSTS", "comms.example.org,10.0.0.7");
            let config = block_on(load_service::<DemoService>()).unwrap();
            assert_eq!(config.service.site.allowed_hosts, "comms.example.org,10.0.0.7");
            assert_eq!(
                config.service.database_url.expose_secret(),
                "sqlite:///var/lib/comms/dev/demo.db"
            );
            assert_eq!(config.service.port, 9100);
            assert_eq!(config.service.streams.claim_idle_ms, 1500);
            assert_eq!(config.greeting, "hi");

            jail.set_env("DEMO_DATABASE_URL", "postgres://db/demo");
            let config = block_on(load_service::<DemoService>()).unwrap();
            assert_eq!(config.service.database_url.expose_secret(), "postgres://db/demo");
            assert!(
                !format!("{config:?}").contains("postgres://db/demo"),
                "secrets are redacted in Debug output"
            );

            jail.set_env("REDIS_URL", "redis://demo-service:comms@127.0.0.1:6380");
            assert!(
                block_on(load_service::<DemoService>()).is_ok(),
                "dev takes examples"
            );
            jail.set_env("APP_ENV", "prod");
            let error = block_on(load_service::<DemoService>()).unwrap_err().to_string();
            assert!(
                error.contains("the password in REDIS_URL is a published"),
                "{error}"
            );
            jail.set_env("REDIS_URL", "redis://demo-service:Hq4rT9@127.0.0.1:6380");
            jail.set_env("DEMO_DATABASE_URL", "postgres://comms:secret@db/demo");
            let error = block_on(load_service::<DemoService>()).unwrap_err().to_string();
            assert!(error.contains("the password in DEMO_DATABASE_URL"), "{error}");
            Ok(())
        });
    }
}
