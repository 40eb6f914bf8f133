//! Consent: who asked not to be emailed, and why.
//!
//! ```text
//! campaign-service (unsubscribe link), email-service (550 at RCPT),
//! user-service (its API, bounce reports) ─ consent.changed ─► comms:consent ─► user-service
//! user-service ─ suppression.changed ─► comms:suppressions ─► email-service, campaign-service
//! ```
//!
//! user-service owns the suppression list: every change reaches it as a
//! [`ConsentChanged`] on [`CONSENT`], so one consumer writes the list, in
//! the order the changes were asked for ([`ConsentChanged::at`]). It
//! resolves a user to an address and publishes each change of the list as
//! a [`SuppressionChanged`] on [`SUPPRESSIONS`], keyed by the address's
//! hash ([`address_hash`]), which email-service keeps to check every
//! recipient as late as the send, and campaign-service to refuse a
//! message to a suppressed address at the door.

use std::fmt::Write;

use eventstore::Event;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Requests to change someone's consent, read by user-service.
pub const CONSENT: &str = "comms:consent";
/// The suppression list's changes, read by email-service.
pub const SUPPRESSIONS: &str = "comms:suppressions";
/// Users erased, read by every service that keeps their data.
pub const ERASURES: &str = "comms:erasures";

/// Why an address is on the suppression list.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The recipient unsubscribed (the link of an email, or the API).
    Unsubscribed,
    /// The address does not exist: a 5xx to `RCPT TO`, or a delivery
    /// status notification with `Action: failed` and a 5.x.x status.
    HardBounce,
    /// The recipient reported an email as spam (an ARF report).
    Complaint,
    /// An operator added it.
    Manual,
}

impl SuppressionReason {
    /// Every reason, in the order the API documents them.
    pub const ALL: [Self; 4] = [
        Self::Unsubscribed,
        Self::HardBounce,
        Self::Complaint,
        Self::Manual,
    ];

    /// The reason as stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unsubscribed => "unsubscribed",
            Self::HardBounce => "hard_bounce",
            Self::Complaint => "complaint",
            Self::Manual => "manual",
        }
    }
}

// How a stored reason is read back.
crate::read_back_by_name!(SuppressionReason, "suppression reason", Self::ALL);

/// Someone's consent changes: suppress them (`suppress`), or take them off
/// the list again (a resubscribe). Names the user (an unsubscribe link
/// names the user, never the address) or the address (a bounce, an
/// import), one of the two.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsentChanged {
    /// The user, when the change names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// The address, when the change names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `true`: on the list; `false`: off it.
    pub suppress: bool,
    /// Why.
    pub reason: SuppressionReason,
    /// The campaign it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// The server's reply or the report's status, for bounces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The notification whose email bounced or was reported, when the
    /// report carries the original `Message-ID`: its record shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<String>,
    /// When it was asked, in milliseconds since the epoch: of two changes
    /// of one address, the later one wins, whatever order they are read in.
    pub at: i64,
}

impl Event for ConsentChanged {
    const TYPE: &'static str = "consent.changed";
    const VERSION: u32 = 1;
}

/// An address went on the suppression list, or off it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SuppressionChanged {
    /// [`address_hash`] of the address.
    pub address_hash: String,
    /// On the list (`true`) or off it.
    pub suppressed: bool,
    /// Why it went on (or, off it, why it had been).
    pub reason: SuppressionReason,
    /// When the change was asked ([`ConsentChanged::at`]).
    pub at: i64,
}

impl Event for SuppressionChanged {
    const TYPE: &'static str = "suppression.changed";
    const VERSION: u32 = 1;
}

/// A user was erased: every service removes what it keeps of them under
/// these notifications (their address, name, the servers' replies about
/// them), keeping the rows that its counts are made of. user-service has
/// erased them from the users and the suppression list (which keeps only
/// the hash of their address) and from the streams.
///
/// Transactional messages name an address, not a user: campaign-service
/// finds those to the erased address by its hash, blanks them, and
/// publishes their ids in an erasure of its own (no hash), for the others
/// to blank what they keep under those ids.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserErased {
    /// The user.
    pub user_id: i64,
    /// Their notification in every campaign expanded so far
    /// ([`crate::notification_id`]), or the ids of the messages to their
    /// address.
    pub notification_ids: Vec<String>,
    /// [`address_hash`] of their address, for the messages sent to it;
    /// absent in an erasure of messages' ids, and in those published
    /// before messages were erased by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_hash: Option<String>,
}

impl Event for UserErased {
    const TYPE: &'static str = "user.erased";
    const VERSION: u32 = 1;
}

/// The key of an address on the suppression list: SHA-256 of the address,
/// trimmed and lower-cased, in hex. The list keeps this, not the address,
/// so that an erased user stays suppressed without comms keeping their
/// address.
pub fn address_hash(address: &str) -> String {
    let digest = Sha256::digest(address.trim().to_lowercase().as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// Longest address accepted, in characters (RFC 5321's path limit, less
/// its brackets).
pub const MAX_ADDRESS_LEN: usize = 254;

/// The shape [`check_address`] accepts, as an OpenAPI (ECMA) pattern.
pub const ADDRESS_PATTERN: &str = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]+$";

/// `address` if it has the shape of an email address: one `@` between a
/// local part and a domain, no spaces or control characters, at most
/// [`MAX_ADDRESS_LEN`] characters ([`ADDRESS_PATTERN`]); otherwise why
/// not, to show the caller.
pub fn check_address(address: &str) -> Result<&str, String> {
    if address.is_empty() {
        return Err("the address is empty".into());
    }
    if address.chars().count() > MAX_ADDRESS_LEN {
        return Err(format!("the address is longer than {MAX_ADDRESS_LEN} characters"));
    }
    // What the pattern's `\s` and control ranges refuse: Unicode's spaces,
    // the byte-order mark (a space to ECMAScript, not to Rust), C0 and C1.
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\u{feff}')
    {
        return Err(format!(
            "`{}` holds a space or a control character",
            address.escape_debug()
        ));
    }
    match address.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => {
            Ok(address)
        }
        _ => Err(format!("`{address}` is not an email address (local@domain)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_hashes_the_same_whatever_its_case_and_spaces() {
        let hash = address_hash("Ada@Example.com ");
        assert_eq!(hash, address_hash("ada@example.com"));
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, address_hash("bob@example.com"));
    }

    #[test]
    fn only_addresses_of_the_right_shape_pass() {
        assert_eq!(check_address("ada@example.com"), Ok("ada@example.com"));
        assert!(
            check_address(" ada@example.com").is_err(),
            "no spaces, not even around it"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a@b@c",
            "ada @example.com",
            "ada@exa\tmple.com",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
        assert!(check_address(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn a_reason_reads_back_the_text_it_is_stored_as() {
        for reason in SuppressionReason::ALL {
            assert_eq!(reason.as_str().parse::<SuppressionReason>(), Ok(reason));
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        assert!("bounced".parse::<SuppressionReason>().is_err());
    }
}
