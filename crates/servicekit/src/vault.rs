//! Secrets from Vault (or OpenBao, which speaks the same HTTP API): one
//! layer of a service's configuration.
//!
//! When `VAULT_ADDR` and `VAULT_TOKEN` are set, a service reads the KV v2
//! secret `secret/comms/<APP_ENV>/<service>` (`VAULT_MOUNT` moves the
//! mount) at start. Its keys are the service's configuration keys
//! (`redis_url`, `database_url`, `smtp_password`, `api_token`, …). Any
//! failure — Vault unreachable, the token refused, no secret at the path —
//! stops the start with one line naming the address and the path, never
//! the token: a service never runs half-configured.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::app_env::AppEnv;

/// The KV v2 mount the secrets live under unless `VAULT_MOUNT` says
/// otherwise.
pub const DEFAULT_MOUNT: &str = "secret";

/// Where a service's secrets are, and the token that may read them.
pub struct VaultSource {
    addr: String,
    token: SecretString,
    mount: String,
    path: String,
}

impl std::fmt::Debug for VaultSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSource")
            .field("addr", &self.addr)
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

impl VaultSource {
    /// The source for `service` in `env`, when `VAULT_ADDR` is set; `None`
    /// when it is not (the service then runs on its files and environment).
    /// `VAULT_ADDR` without `VAULT_TOKEN` is an error, not a silent
    /// fallback.
    pub fn from_env(env: AppEnv, service: &str) -> anyhow::Result<Option<Self>> {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let Some(addr) = non_empty("VAULT_ADDR") else {
            return Ok(None);
        };
        let token = non_empty("VAULT_TOKEN")
            .ok_or_else(|| anyhow::anyhow!("VAULT_ADDR is set ({addr}) but VAULT_TOKEN is not"))?;
        let mount = non_empty("VAULT_MOUNT").unwrap_or_else(|| DEFAULT_MOUNT.into());
        Ok(Some(Self::new(&addr, token.into(), &mount, env, service)))
    }

    /// The source of `service`'s secrets in `env` on the Vault at `addr`.
    pub fn new(addr: &str, token: SecretString, mount: &str, env: AppEnv, service: &str) -> Self {
        Self {
            addr: addr.trim_end_matches('/').to_string(),
            token,
            mount: mount.to_string(),
            path: secret_path(env, service),
        }
    }

    /// `<mount>/<path>`, as operators write it (`secret/comms/dev/user-service`).
    pub fn location(&self) -> String {
        format!("{}/{}", self.mount, self.path)
    }

    /// Reads the secret's keys and values. The error names the address
    /// and the path, and what went wrong.
    pub async fn read(&self) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
        let context = || format!("Vault at {} ({})", self.addr, self.location());
        // reqwest's TLS (for an https:// Vault) takes the process's crypto
        // provider; the services use ring throughout.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = VaultClientSettingsBuilder::default()
            .address(&self.addr)
            .token(self.token.expose_secret())
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|error| anyhow::anyhow!("{}: invalid settings: {error}", context()))?;
        let client = VaultClient::new(settings)
            .map_err(|error| anyhow::anyhow!("{}: {}", context(), describe(&error)))?;
        vaultrs::kv2::read(&client, &self.mount, &self.path)
            .await
            .map_err(|error| anyhow::anyhow!("cannot read secrets from {}: {}", context(), describe(&error)))
    }
}

/// The path of `service`'s secret in `env`, under the mount.
pub fn secret_path(env: AppEnv, service: &str) -> String {
    format!("comms/{}/{service}", env.as_str())
}

/// What went wrong, in words an operator acts on. vaultrs' own messages
/// can carry the request URL, never the token.
fn describe(error: &ClientError) -> String {
    match error {
        ClientError::APIError { code: 404, .. } => "no secret at this path".into(),
        ClientError::APIError { code: 403, .. } => "permission denied (is VAULT_TOKEN right?)".into(),
        ClientError::APIError { code, errors } if errors.is_empty() => format!("Vault answered {code}"),
        ClientError::APIError { code, errors } => format!("Vault answered {code}: {}", errors.join("; ")),
        ClientError::RestClientError { source } => {
            let mut cause: &dyn std::error::Error = source;
            while let Some(next) = cause.source() {
                cause = next;
            }
            format!("unreachable ({cause})")
        }
        other => other.to_string(),
    }
}
