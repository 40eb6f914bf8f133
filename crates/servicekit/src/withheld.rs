//! Configuration errors without the values that caused them.

use figment::error::{Actual, Kind};

/// figment's errors quote the value that did not fit (`found unsigned int
/// `12345678``), and the value may be a secret: `API_TOKEN=12345678` is
/// read as a number, which a token is not. Each error is told with the
/// kind of its value only; the key and the layer it came from stay.
pub(crate) fn without_values(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|mut error| {
            error.kind = match error.kind {
                Kind::InvalidType(actual, expected) => Kind::InvalidType(withheld(&actual), expected),
                Kind::InvalidValue(actual, expected) => Kind::InvalidValue(withheld(&actual), expected),
                Kind::Unsupported(actual) => Kind::Unsupported(withheld(&actual)),
                Kind::UnsupportedKey(actual, needed) => Kind::UnsupportedKey(withheld(&actual), needed),
                Kind::UnknownVariant(_, expected) => Kind::Message(format!(
                    "unknown variant (value withheld), expected one of {expected:?}"
                )),
                other => other,
            };
            error.to_string()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `actual`'s kind without its value: "a string (value withheld)".
fn withheld(actual: &Actual) -> Actual {
    let kind = match actual {
        Actual::Bool(_) => "a bool",
        Actual::Unsigned(_) => "an unsigned int",
        Actual::Signed(_) => "a signed int",
        Actual::Float(_) => "a float",
        Actual::Char(_) => "a char",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Other(_) => "a value",
        shape => return shape.clone(),
    };
    Actual::Other(format!("{kind} (value withheld)"))
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Serialize};

    use crate::config::{empty_secret, load, VaultSecrets};

    #[derive(Debug, Serialize, Deserialize)]
    struct WithSecret {
        port: u16,
        #[serde(skip_serializing, default = "empty_secret")]
        api_token: SecretString,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test-jail signature
    fn a_value_that_does_not_fit_is_named_by_its_key_never_shown() {
        figment::Jail::expect_with(|jail| {
            let defaults = WithSecret {
                port: 1,
                api_token: empty_secret(),
            };
            let none = VaultSecrets::new();
            let load_secret = || load("demo-service", &defaults, &none, &["api_token"], "DEMO_");
            jail.set_env("API_TOKEN", "12345678");
            let error = load_secret().unwrap_err().to_string();
            assert!(!error.contains("12345678"), "the token is shown: {error}");
            assert!(error.contains("\"API_TOKEN\""), "the key is not named: {error}");
            assert!(error.contains("an unsigned int (value withheld)"), "{error}");

            jail.set_env("API_TOKEN", "a-token");
            jail.set_env("DEMO_PORT", "s3cr3t");
            let error = load_secret().unwrap_err().to_string();
            assert!(!error.contains("s3cr3t"), "the value is shown: {error}");
            assert!(
                error.contains("key \"PORT\" in `DEMO_`") && error.contains("a string (value withheld)"),
                "{error}"
            );

            jail.set_env("DEMO_PORT", "2500");
            assert_eq!(load_secret().unwrap().api_token.expose_secret(), "a-token");
            Ok(())
        });
    }
}
