//! Which environment a service runs in, `dev` or `prod`: a module of its
//! own because both the configuration ([`crate::config`]) and the Vault
//! path of its secrets ([`crate::vault`]) depend on it, and the
//! configuration reads Vault; neither imports the other for it.

use serde::{Deserialize, Serialize};

/// The environment a service runs in, `dev` or `prod` (`APP_ENV`).
///
/// It is read once, at the edge: from the environment for the choice of
/// file and Vault path ([`AppEnv::from_env`]), and as a configuration
/// value by serde, so that a service holds an `AppEnv`, never a string it
/// would have to check again. A value other than `dev` or `prod` stops
/// the start with a message naming both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum AppEnv {
    /// Local development: demo endpoints open.
    #[default]
    Dev,
    /// Production: write endpoints need a token.
    Prod,
}

/// A value of `APP_ENV` that is neither `dev` nor `prod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAppEnv(String);

impl std::fmt::Display for UnknownAppEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "APP_ENV must be `dev` or `prod`, not `{}`", self.0)
    }
}

impl std::error::Error for UnknownAppEnv {}

impl AppEnv {
    /// Reads `APP_ENV` (default `dev`).
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(std::env::var("APP_ENV").unwrap_or_default().parse()?)
    }

    /// `dev` or `prod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Prod => "prod",
        }
    }
}

/// `dev` (or empty, as an unset `APP_ENV` is) or `prod`.
impl std::str::FromStr for AppEnv {
    type Err = UnknownAppEnv;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "" | "dev" => Ok(Self::Dev),
            "prod" => Ok(Self::Prod),
            other => Err(UnknownAppEnv(other.to_string())),
        }
    }
}

/// How serde reads it (see [`AppEnv`]'s `try_from`).
impl TryFrom<String> for AppEnv {
    type Error = UnknownAppEnv;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

/// How serde writes it: the name it is read back from.
impl From<AppEnv> for &'static str {
    fn from(env: AppEnv) -> Self {
        env.as_str()
    }
}
