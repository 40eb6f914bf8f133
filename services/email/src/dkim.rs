//! DKIM signing (RFC 6376) of every email email-service sends, and the DNS
//! TXT record that lets receivers check it.
//!
//! A receiver that finds a valid signature of the sender's domain
//! (`d=`) knows the email comes from whoever holds the domain's key and
//! was not changed on the way; DMARC asks for it, and the large mailbox
//! providers file unsigned bulk mail as spam or refuse it. The signing is
//! lettre's (`lettre::message::dkim`): RSA-SHA256 or Ed25519-SHA256
//! (RFC 8463), relaxed/relaxed canonicalisation, the headers of
//! [`SIGNED_HEADERS`]. This module reads the key (PEM, as `openssl`
//! writes it), checks every setting once at start, and gives lettre the
//! key in the form it takes.
//!
//! Signing is off while no key is set. With a key, a setting that cannot
//! work (a key that is not one, a key of the other algorithm, a malformed
//! selector or domain) stops the start, in one line naming the setting,
//! never the key.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::Message;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use servicekit::config::empty_secret;
use tokio::sync::Semaphore;
use tokio::task::JoinError;
use utoipa::ToSchema;

/// The headers each signature covers: who sent it, to whom, what about,
/// when, its identity, and its unsubscribe headers (which mailbox
/// providers act on, so a forger must not be able to change them).
/// A header an email lacks (`List-Unsubscribe` of a test send) is still
/// named: it is then signed as absent, so one added on the way breaks the
/// signature (RFC 6376 §5.4). `Content-Type` is left out: lettre writes
/// a multipart body's `Content-Type` with the body, where its signer
/// cannot see it as a header.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The shortest RSA key signed with: receivers ignore signatures of
/// shorter ones (RFC 8301 §3.2).
const MIN_RSA_BITS: usize = 1024;

/// email-service's DKIM settings, flattened into its configuration:
/// read like the others (Vault keys `dkim_*`, variables `EMAIL_DKIM_*`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DkimSettings {
    /// The private key, PEM: PKCS#8 (`BEGIN PRIVATE KEY`, RSA or Ed25519,
    /// as `openssl genpkey` writes it) or PKCS#1 (`BEGIN RSA PRIVATE
    /// KEY`). Signing is off while it is empty (`EMAIL_DKIM_PRIVATE_KEY`).
    #[serde(skip_serializing, default = "empty_secret")]
    pub dkim_private_key: SecretString,
    /// The selector: the record is published at
    /// `<selector>._domainkey.<domain>` (`EMAIL_DKIM_SELECTOR`); required
    /// with a key. Digits alone (`20260101`, a common choice) are read as
    /// the text they are.
    #[serde(deserialize_with = "text")]
    pub dkim_selector: String,
    /// The signing domain, `d=` (`EMAIL_DKIM_DOMAIN`); `MAIL_FROM`'s
    /// domain when empty, which is what DMARC aligns with.
    pub dkim_domain: String,
    /// The algorithm (`EMAIL_DKIM_ALGORITHM`, `rsa-sha256` or
    /// `ed25519-sha256`); the key's when unset. When set, a key of the
    /// other kind stops the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dkim_algorithm: Option<DkimAlgorithm>,
}

/// A string, or a number as its digits: the layers read a value of
/// digits alone (from a variable, or Vault) as a number.
fn text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Number(u64),
    }
    Ok(match Text::deserialize(deserializer)? {
        Text::Text(text) => text,
        Text::Number(number) => number.to_string(),
    })
}

/// A DKIM signing algorithm, as the `a=` tag names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DkimAlgorithm {
    /// RSA-SHA256: what every receiver checks.
    #[serde(rename = "rsa-sha256", alias = "rsa")]
    RsaSha256,
    /// Ed25519-SHA256 (RFC 8463): short keys and fast signing, checked by
    /// fewer receivers.
    #[serde(rename = "ed25519-sha256", alias = "ed25519")]
    Ed25519Sha256,
}

impl DkimAlgorithm {
    fn name(self) -> &'static str {
        match self {
            Self::RsaSha256 => "rsa-sha256",
            Self::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

/// Why the DKIM settings cannot sign; each message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// The key is not a private key comms can sign with.
    #[error(
        "EMAIL_DKIM_PRIVATE_KEY (dkim_private_key) is not an RSA or Ed25519 private key in \
         PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`): {0}"
    )]
    NotAKey(String),
    /// The key is of the other algorithm than the one set.
    #[error(
        "EMAIL_DKIM_ALGORITHM (dkim_algorithm) is {set}, but EMAIL_DKIM_PRIVATE_KEY \
         (dkim_private_key) is {found} key"
    )]
    Mismatch {
        /// The algorithm set.
        set: &'static str,
        /// What the key is ("an RSA", "an Ed25519").
        found: &'static str,
    },
    /// An RSA key too short for any receiver.
    #[error(
        "EMAIL_DKIM_PRIVATE_KEY (dkim_private_key) is an RSA key of {0} bits; receivers \
         ignore signatures of keys under 1024 bits (RFC 8301), use 2048"
    )]
    ShortKey(usize),
    /// A key without a selector.
    #[error("EMAIL_DKIM_SELECTOR (dkim_selector) must be set with EMAIL_DKIM_PRIVATE_KEY")]
    NoSelector,
    /// A selector or domain that is not a DNS name.
    #[error("{setting} is not a DNS name ({why})")]
    NotAName {
        /// The setting, as its variable and key name it.
        setting: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// The DNS TXT record that publishes the public key: the value `txt` at
/// `name` (`<selector>._domainkey.<domain>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "domain": "example.com",
    "selector": "comms",
    "name": "comms._domainkey.example.com",
    "txt": "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
}))]
pub struct DkimRecord {
    /// The signing domain, `d=` of every signature.
    pub domain: String,
    /// The selector, `s=` of every signature.
    pub selector: String,
    /// Where the record goes: `<selector>._domainkey.<domain>`.
    pub name: String,
    /// The TXT record's value: `v=DKIM1; k=rsa|ed25519; p=<public key>`.
    pub txt: String,
}

/// A signer of emails with one key, and the record of that key.
pub struct Dkim {
    /// lettre's signer: the key, selector, domain, headers and
    /// canonicalisation.
    config: DkimConfig,
    /// The key's algorithm, which decides where a signature is made.
    algorithm: DkimAlgorithm,
    /// One permit per core: RSA signatures beyond them wait here, rather
    /// than as more threads taking turns on the same cores.
    cores: Semaphore,
    /// What to publish in DNS.
    record: DkimRecord,
}

/// The record only: lettre's `Debug` of the signer would print the key.
impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dkim")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl Dkim {
    /// The signer that `settings` describe, `None` when they set no key;
    /// `default_domain` (`MAIL_FROM`'s) signs when they name no domain.
    pub fn from_settings(settings: &DkimSettings, default_domain: &str) -> Result<Option<Self>, DkimError> {
        let pem = settings.dkim_private_key.expose_secret().trim();
        if pem.is_empty() {
            return Ok(None);
        }
        let selector = settings.dkim_selector.trim();
        if selector.is_empty() {
            return Err(DkimError::NoSelector);
        }
        check_name("EMAIL_DKIM_SELECTOR (dkim_selector)", selector, 1)?;
        let domain = match settings.dkim_domain.trim() {
            "" => default_domain,
            domain => domain,
        };
        check_name(
            "EMAIL_DKIM_DOMAIN (dkim_domain, or MAIL_FROM's domain)",
            domain,
            2,
        )?;
        let key = PrivateKey::from_pem(pem)?;
        if let Some(set) = settings.dkim_algorithm {
            if set != key.algorithm() {
                return Err(DkimError::Mismatch {
                    set: set.name(),
                    found: key.kind(),
                });
            }
        }
        let record = DkimRecord {
            domain: domain.to_string(),
            selector: selector.to_string(),
            name: format!("{selector}._domainkey.{domain}"),
            txt: key.txt()?,
        };
        let config = DkimConfig::new(
            selector.to_string(),
            domain.to_string(),
            key.signing_key()?,
            SIGNED_HEADERS
                .iter()
                .map(|name| HeaderName::new_from_ascii_str(name))
                .collect(),
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        tracing::info!(
            domain,
            selector,
            algorithm = key.algorithm().name(),
            "DKIM signing on: GET /api/v1/dkim gives the record to publish"
        );
        Ok(Some(Self {
            config,
            algorithm: key.algorithm(),
            cores: Semaphore::new(std::thread::available_parallelism().map_or(1, usize::from)),
            record,
        }))
    }

    /// `message` with a `DKIM-Signature` header, its last change before it
    /// is formatted. An Ed25519 signature is made here: about 30 µs, less
    /// than handing it to another thread costs. An RSA-2048 one takes
    /// about 1.5 ms (`bench/campaign.sh`), which on email-service's one
    /// thread would stall every other send meanwhile: it is made on
    /// tokio's blocking threads, which spread over every core, at most one
    /// signature per core at a time. Fails only if the signer panicked.
    pub async fn sign(self: &Arc<Self>, mut message: Message) -> Result<Message, JoinError> {
        match self.algorithm {
            DkimAlgorithm::Ed25519Sha256 => {
                message.sign(&self.config);
                Ok(message)
            }
            DkimAlgorithm::RsaSha256 => {
                let _core = self.cores.acquire().await.expect("the semaphore is never closed");
                let signer = Arc::clone(self);
                tokio::task::spawn_blocking(move || {
                    message.sign(&signer.config);
                    message
                })
                .await
            }
        }
    }

    /// The DNS record that publishes this signer's public key.
    pub fn record(&self) -> &DkimRecord {
        &self.record
    }
}

/// A private key read from PEM.
enum PrivateKey {
    Rsa(RsaPrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl PrivateKey {
    /// Reads PKCS#8 (RSA or Ed25519) or PKCS#1 (RSA) PEM. A key written on
    /// one line with `\n` for its line breaks (as an environment variable
    /// may hold it) is read too.
    fn from_pem(pem: &str) -> Result<Self, DkimError> {
        let unfolded;
        let pem = if !pem.contains('\n') && pem.contains("\\n") {
            unfolded = pem.replace("\\n", "\n");
            unfolded.as_str()
        } else {
            pem
        };
        let key = if let Ok(key) = RsaPrivateKey::from_pkcs8_pem(pem) {
            Self::Rsa(key)
        } else if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            Self::Ed25519(key)
        } else if let Ok(key) = RsaPrivateKey::from_pkcs1_pem(pem) {
            Self::Rsa(key)
        } else {
            return Err(DkimError::NotAKey(pem_label(pem)));
        };
        if let Self::Rsa(key) = &key {
            let bits = key.size() * 8;
            if bits < MIN_RSA_BITS {
                return Err(DkimError::ShortKey(bits));
            }
        }
        Ok(key)
    }

    fn algorithm(&self) -> DkimAlgorithm {
        match self {
            Self::Rsa(_) => DkimAlgorithm::RsaSha256,
            Self::Ed25519(_) => DkimAlgorithm::Ed25519Sha256,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "an RSA",
            Self::Ed25519(_) => "an Ed25519",
        }
    }

    /// The TXT record's value: RSA's public key as DER
    /// SubjectPublicKeyInfo (RFC 6376 §3.6.1), Ed25519's as its 32 bytes
    /// (RFC 8463 §4), each in base64.
    fn txt(&self) -> Result<String, DkimError> {
        Ok(match self {
            Self::Rsa(key) => {
                let der = key
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(|error| DkimError::NotAKey(error.to_string()))?;
                format!("v=DKIM1; k=rsa; p={}", BASE64.encode(der.as_bytes()))
            }
            Self::Ed25519(key) => format!(
                "v=DKIM1; k=ed25519; p={}",
                BASE64.encode(key.verifying_key().to_bytes())
            ),
        })
    }

    /// The key as lettre takes it: PKCS#1 PEM for RSA, the base64 of its
    /// 32-byte seed for Ed25519.
    fn signing_key(&self) -> Result<DkimSigningKey, DkimError> {
        let not_a_key = |error: &dyn std::fmt::Display| DkimError::NotAKey(error.to_string());
        match self {
            Self::Rsa(key) => {
                let pem = key
                    .to_pkcs1_pem(LineEnding::LF)
                    .map_err(|error| not_a_key(&error))?;
                DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
            }
            Self::Ed25519(key) => {
                let seed = SecretString::from(BASE64.encode(key.to_bytes()));
                DkimSigningKey::new(seed.expose_secret(), DkimSigningAlgorithm::Ed25519)
            }
        }
        .map_err(|error| not_a_key(&error))
    }
}

/// What a value that is not a key looks like, without any of its content:
/// its PEM label, or that it has none.
fn pem_label(pem: &str) -> String {
    let label = pem
        .split_once("-----BEGIN ")
        .and_then(|(_, rest)| rest.split_once("-----"))
        .map(|(label, _)| label);
    match label {
        Some("ENCRYPTED PRIVATE KEY") => "found an encrypted key; give it unencrypted".into(),
        Some(label) if label.len() <= 40 && label.bytes().all(|b| b.is_ascii_uppercase() || b == b' ') => {
            format!("found `BEGIN {label}`, or a key that does not decode")
        }
        _ => "found no PEM block".into(),
    }
}

/// Checks that `name` is a DNS name of at least `labels` labels, each
/// 1 to 63 letters, digits and inner hyphens (RFC 6376 §3.1, §3.5).
fn check_name(setting: &'static str, name: &str, labels: usize) -> Result<(), DkimError> {
    let fail = |why: String| Err(DkimError::NotAName { setting, why });
    if name.len() > 253 {
        return fail(format!("{} characters, at most 253", name.len()));
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < labels {
        return fail(format!("{} label(s), at least {labels}", parts.len()));
    }
    for label in parts {
        if label.is_empty() || label.len() > 63 {
            return fail("each dot-separated label has 1 to 63 characters".into());
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return fail(
                "only letters, digits, hyphens and dots; an international name in its \
                 ASCII (xn--) form"
                    .into(),
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return fail("a label cannot start or end with a hyphen".into());
        }
    }
    Ok(())
}
