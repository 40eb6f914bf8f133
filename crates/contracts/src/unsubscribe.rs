//! The token of an unsubscribe link (`List-Unsubscribe`, RFC 8058): it
//! names a user and a campaign, never the address, and is signed with
//! HMAC-SHA256 under a key each environment keeps in Vault
//! (`unsubscribe_key`). notification-service signs one per email;
//! campaign-service, which serves the link, verifies it without a lookup.
//!
//! Format: `<user id>.<campaign id>.<expiry, seconds since the epoch>.<MAC>`,
//! the MAC in unpadded base64url: only URL-safe characters, so the token
//! is one path segment as it is.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a link works: a recipient may unsubscribe from an email a
/// year old; mail providers ask only that it work for some days.
pub const VALIDITY_SECS: i64 = 400 * 24 * 60 * 60;

/// Shortest key accepted: 32 bytes, the size of the MAC.
pub const MIN_KEY_LEN: usize = 32;

/// The key dev uses when none is set: published here, so worthless as a
/// secret, and refused in prod like every published example.
pub const DEV_KEY: &str = "comms-dev-unsubscribe-key-published-in-its-source";

/// The key of an environment: `secret`, or, empty, [`DEV_KEY`] in dev and
/// an error in prod (which must keep one of its own in Vault).
pub fn key_for(prod: bool, secret: &str) -> Result<TokenKey, String> {
    match (secret.is_empty(), prod) {
        (true, true) => Err(
            "UNSUBSCRIBE_KEY (unsubscribe_key in Vault) is required with APP_ENV=prod: \
             it signs every unsubscribe link"
                .into(),
        ),
        (true, false) => TokenKey::new(DEV_KEY),
        (false, _) => TokenKey::new(secret),
    }
}

/// What a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The recipient.
    pub user_id: i64,
    /// The campaign whose email carried the link.
    pub campaign_id: String,
}

/// Why a token was refused. None of them says which part was wrong beyond
/// what a user can act on: a forged token learns nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not four parts of the right shape.
    #[error("this unsubscribe link is malformed (was it cut by a line break?)")]
    Malformed,
    /// Past its expiry.
    #[error("this unsubscribe link has expired")]
    Expired,
    /// The signature does not match: altered, or not ours.
    #[error("this unsubscribe link is not valid")]
    Forged,
}

/// Signs and verifies tokens under one key.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// The key of `secret`; an error, which never shows it, when it is
    /// shorter than [`MIN_KEY_LEN`].
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_KEY_LEN {
            return Err(format!(
                "unsubscribe_key must be at least {MIN_KEY_LEN} characters (it has {})",
                secret.len()
            ));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    fn mac(&self, signed: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(signed.as_bytes());
        mac
    }

    /// A token for `user_id` in `campaign_id`, valid until `now_secs` +
    /// [`VALIDITY_SECS`].
    pub fn sign(&self, user_id: i64, campaign_id: &str, now_secs: i64) -> String {
        let signed = format!("{user_id}.{campaign_id}.{}", now_secs + VALIDITY_SECS);
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&signed).finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// What `token` names, if it is ours, unaltered and not expired at
    /// `now_secs` (the MAC compared in constant time).
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Unsubscribe, TokenError> {
        let mut parts = token.rsplitn(2, '.');
        let (Some(tag), Some(signed)) = (parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let fields: Vec<&str> = signed.split('.').collect();
        let [user_id, campaign_id, expiry] = fields[..] else {
            return Err(TokenError::Malformed);
        };
        let (Ok(user_id), Ok(expiry), Ok(tag)) = (
            user_id.parse::<i64>(),
            expiry.parse::<i64>(),
            URL_SAFE_NO_PAD.decode(tag),
        ) else {
            return Err(TokenError::Malformed);
        };
        if campaign_id.is_empty()
            || !campaign_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(TokenError::Malformed);
        }
        self.mac(signed)
            .verify_slice(&tag)
            .map_err(|_| TokenError::Forged)?;
        if now_secs > expiry {
            return Err(TokenError::Expired);
        }
        Ok(Unsubscribe {
            user_id,
            campaign_id: campaign_id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMPAIGN: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

    fn key(secret: &str) -> TokenKey {
        TokenKey::new(secret).unwrap()
    }

    #[test]
    fn a_signed_token_names_its_user_and_campaign() {
        let key = key("k".repeat(32).as_str());
        let token = key.sign(42, CAMPAIGN, 1_000);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{token}"
        );
        assert_eq!(
            key.verify(&token, 1_000),
            Ok(Unsubscribe {
                user_id: 42,
                campaign_id: CAMPAIGN.into()
            })
        );
    }

    #[test]
    fn an_altered_a_foreign_or_an_old_token_is_refused() {
        let key_a = key("a".repeat(32).as_str());
        let token = key_a.sign(42, CAMPAIGN, 1_000);
        let other_user = token.replacen("42.", "43.", 1);
        assert_eq!(key_a.verify(&other_user, 1_000), Err(TokenError::Forged));
        assert_eq!(
            key("b".repeat(32).as_str()).verify(&token, 1_000),
            Err(TokenError::Forged)
        );
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert!(key_a.verify(&flipped, 1_000).is_err());
        assert_eq!(
            key_a.verify(&token, 1_000 + VALIDITY_SECS + 1),
            Err(TokenError::Expired)
        );
        for malformed in [
            "",
            "x",
            "42.c.1",
            "a.c.1.AAAA",
            "42..1.AAAA",
            "42.c.x.AAAA",
            "42.c/d.1.AAAA",
            "42.c.1.!!",
        ] {
            assert_eq!(
                key_a.verify(malformed, 1_000),
                Err(TokenError::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn dev_has_a_key_of_its_own_and_prod_needs_one() {
        assert!(key_for(false, "").is_ok());
        assert!(key_for(true, "").unwrap_err().contains("UNSUBSCRIBE_KEY"));
        assert!(key_for(true, &"p".repeat(40)).is_ok());
    }

    #[test]
    fn a_short_key_is_refused_without_showing_it() {
        let error = TokenKey::new("secret-value").unwrap_err();
        assert!(!error.contains("secret-value"), "{error}");
    }
}
