//! The example secrets that comms publishes, refused in `prod`.
//!
//! The docs, `scripts/vault-seed.sh`, `compose.yaml` and the config files
//! show example values (an API token, an SMTP password, a database
//! password in a URL) so that dev and the examples run as written. Anyone
//! can read them, so a prod service holding one is as open as one holding
//! none: in `prod` a service refuses to start when its API token, its SMTP
//! password or the password in its Redis or database URL is one of them,
//! with one line naming the setting, never its value. `./start.sh` makes
//! random ones for its prod stack.

use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};

use crate::app_env::AppEnv;

/// Every example value comms's files publish as a secret: the prod token
/// and SMTP password that `scripts/vault-seed.sh` used to seed, the
/// database passwords of its examples and of `compose.yaml`'s default
/// (`comms`, `secret`), the dev servers' root token, and dev's unsubscribe
/// key.
pub const EXAMPLE_SECRETS: &[&str] = &[
    "comms-prod-example-token",
    "comms-smtp-example",
    "comms",
    "secret",
    "0000",
    // contracts::unsubscribe::DEV_KEY, dev's unsubscribe key.
    "comms-dev-unsubscribe-key-published-in-its-source",
];

/// Fails in `prod` when a secret of `secrets` is an example value: each is
/// the name an operator sets it by (`API_TOKEN`, `REDIS_URL`, ...) and its
/// value. A value with a scheme (`redis://user:password@host`) is judged
/// by the password of its URL; an empty value, or a URL without a
/// password, is not an example. `dev` accepts anything.
pub fn refuse_examples(env: AppEnv, secrets: &[(&str, &SecretString)]) -> anyhow::Result<()> {
    if env != AppEnv::Prod {
        return Ok(());
    }
    for (name, value) in secrets {
        let value = value.expose_secret();
        let (what, secret) = if value.contains("://") {
            match url_password(value) {
                Some(password) => (format!("the password in {name}"), password),
                None => continue,
            }
        } else {
            (name.to_string(), value.to_string())
        };
        if is_example(&secret) {
            anyhow::bail!(
                "refusing to start with APP_ENV=prod: {what} is a published example value; \
                 set a secret of your own (./start.sh makes random ones for its prod stack)"
            );
        }
    }
    Ok(())
}

/// Whether `secret` is one of [`EXAMPLE_SECRETS`] (in any case, around any
/// spaces).
pub fn is_example(secret: &str) -> bool {
    let secret = secret.trim();
    EXAMPLE_SECRETS
        .iter()
        .any(|example| example.eq_ignore_ascii_case(secret))
}

/// The password in a URL's user information (`scheme://user:password@host/...`),
/// percent-decoded; `None` without one, or for what is not a URL.
fn url_password(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let password = parsed.password()?;
    Some(percent_decode_str(password).decode_utf8_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(env: AppEnv, name: &str, value: &str) -> Result<(), String> {
        refuse_examples(env, &[(name, &value.to_string().into())]).map_err(|error| error.to_string())
    }

    #[test]
    fn prod_refuses_each_published_example_and_names_the_setting_not_the_value() {
        let errors: Vec<String> = EXAMPLE_SECRETS
            .iter()
            .map(|example| check(AppEnv::Prod, "API_TOKEN", example).unwrap_err())
            .collect();
        let error = &errors[0];
        assert!(
            error.contains("API_TOKEN is a published example value"),
            "{error}"
        );
        assert!(!error.contains('\n'), "one line: {error}");
        assert!(
            errors.iter().all(|other| other == error),
            "the same line whatever the value, so it shows none: {errors:?}"
        );
        let error = check(AppEnv::Prod, "SMTP_PASSWORD", " Comms-SMTP-Example ").unwrap_err();
        assert!(error.contains("SMTP_PASSWORD"), "{error}");
    }

    #[test]
    fn urls_are_judged_by_their_password() {
        let refused = [
            "postgres://comms:comms@127.0.0.1:5433/users",
            "postgres://comms:secret@postgres:5432/{db}_prod",
            "redis://user-service:%63omms@127.0.0.1:6380/0",
            "rediss://:comms@redis:6379",
        ];
        for url in refused {
            let error = check(AppEnv::Prod, "USER_DATABASE_URL", url).unwrap_err();
            assert!(
                error.contains("the password in USER_DATABASE_URL"),
                "{url}: {error}"
            );
            assert!(!error.contains(url), "{error}");
        }
        let accepted = [
            "postgres://comms:Zq81kLr0aPw3@127.0.0.1:5433/users",
            "redis://127.0.0.1:6379",
            "redis://comms@127.0.0.1:6379",
            "sqlite://data/prod/users.db",
            // "comms" as a user name, a host or a database is no password.
            "postgres://comms:x9Yt@comms:5432/comms",
        ];
        for url in accepted {
            assert_eq!(check(AppEnv::Prod, "DATABASE_URL", url), Ok(()), "{url}");
        }
    }

    #[test]
    fn dev_and_empty_values_and_secrets_of_ones_own_pass() {
        assert_eq!(
            check(AppEnv::Dev, "API_TOKEN", "comms-prod-example-token"),
            Ok(())
        );
        assert_eq!(check(AppEnv::Prod, "API_TOKEN", ""), Ok(()));
        assert_eq!(
            check(AppEnv::Prod, "API_TOKEN", "comms-prod-example-token2"),
            Ok(())
        );
        assert_eq!(check(AppEnv::Prod, "API_TOKEN", "4fJ2oQ"), Ok(()));
    }

    #[test]
    fn passwords_are_percent_decoded() {
        assert_eq!(url_password("redis://u:a%40b%3Ac@h:1").as_deref(), Some("a@b:c"));
        assert_eq!(url_password("redis://u:p%zz@h").as_deref(), Some("p%zz"));
        assert_eq!(url_password("redis://h:1/u:p@x"), None, "past the authority");
        assert_eq!(url_password("redis://u@h"), None);
    }
}
