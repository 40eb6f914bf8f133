//! Signatures as the Standard Webhooks specification writes them
//! (<https://www.standardwebhooks.com>), so that a receiver verifies them
//! with its libraries or a few lines of its own (docs/webhooks.md).
//!
//! An endpoint's secret is `whsec_` and the base64 of 24 to 64 random
//! bytes; each POST carries `webhook-id`, `webhook-timestamp` (seconds
//! since the Unix epoch) and `webhook-signature`: `v1,` and the base64 of
//! HMAC-SHA256, keyed with the secret's bytes, of
//! `<webhook-id>.<webhook-timestamp>.<body>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every secret starts with.
const PREFIX: &str = "whsec_";

/// A new secret: 32 random bytes.
pub fn new_secret() -> String {
    format!("{PREFIX}{}", STANDARD.encode(rand::random::<[u8; 32]>()))
}

/// The key of `secret` if it is one: `whsec_` and the base64 of 24 to 64
/// bytes; otherwise why not.
pub fn key_of(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix(PREFIX)
        .ok_or_else(|| format!("a secret starts with `{PREFIX}`"))?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| format!("a secret is `{PREFIX}` and base64"))?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!("a secret's key is 24 to 64 bytes, not {}", key.len()));
    }
    Ok(key)
}

/// The `webhook-signature` of `body` sent as `id` at `timestamp`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_matches_the_specifications_example() {
        // The example of the Standard Webhooks specification.
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_new_secret_is_one_and_a_malformed_one_is_refused() {
        assert_eq!(key_of(&new_secret()).unwrap().len(), 32);
        assert_ne!(new_secret(), new_secret());
        for bad in ["secret", "whsec_!!", "whsec_c2hvcnQ="] {
            assert!(key_of(bad).is_err(), "{bad}");
        }
    }
}
