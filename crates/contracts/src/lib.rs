//! The contracts between the services: stream names and event payloads.
//!
//! These types are the only thing services share. Each event carries what
//! the next step needs (a recipient's address and name travel with the
//! notification), so no service asks another for data while doing its job.
//! A campaign's templates travel once, in `campaign.created`, which
//! notification-service reads too and keeps per campaign; they are never
//! copied into each recipient's `notification.requested`.
//!
//! ```text
//! campaign-service ─ campaign.created ─► comms:campaigns ─► user-service, notification-service
//! user-service ─ notification.requested ─► comms:notifications ─► notification-service
//! user-service ─ campaign.audience_expanded ─► comms:campaigns ─► campaign-service
//! notification-service ─ email.requested ─► comms:emails ─► email-service
//! campaign-service ─ email.requested (test sends) ─► comms:emails ─► email-service
//! campaign-service ─ email.requested (messages) ─► comms:messages ─► email-service
//! campaign-service ─ message.to_user ─► comms:message-users ─► user-service (see [`messages`])
//! email-service ─ email.delivery ─► comms:deliveries ─► notification-service, campaign-service
//! ```
//!
//! Consent travels on two streams of its own: see [`consent`]. Whether a
//! campaign is paused or cancelled is on the [`control`] board, which every
//! instance reads before each step.

pub mod audience;
pub mod consent;
pub mod control;
pub mod messages;
pub mod relays;
mod unknown_status;
pub mod unsubscribe;
pub use unknown_status::UnknownStatus;

use eventstore::{Event, Partitioned};
use serde::{Deserialize, Serialize};

/// Campaign lifecycle events.
pub const CAMPAIGNS: &str = "comms:campaigns";
/// One entry per recipient of a campaign.
pub const NOTIFICATIONS: &str = "comms:notifications";
/// One rendered email per recipient, to send.
pub const EMAILS: &str = "comms:emails";
/// The outcome of each send.
pub const DELIVERIES: &str = "comms:deliveries";
/// Transactional messages' emails, to send ahead of any campaign's: a lane
/// of their own, read by email-service beside [`EMAILS`].
pub const MESSAGES: &str = "comms:messages";

/// The consumer group that expands campaigns on [`CAMPAIGNS`]
/// (user-service's): campaign-service asks whether an announcement still
/// waits in it before announcing a campaign again.
pub const AUDIENCE_GROUP: &str = "user-service";

/// Every stream of comms, for dashboards and trimming.
pub const ALL_STREAMS: [&str; 9] = [
    CAMPAIGNS,
    NOTIFICATIONS,
    EMAILS,
    MESSAGES,
    messages::MESSAGE_USERS,
    DELIVERIES,
    consent::CONSENT,
    consent::SUPPRESSIONS,
    consent::ERASURES,
];

/// The streams of comms as a deployment splits them (`STREAM_PARTITIONS`,
/// see [`eventstore::partition`]). The three streams that carry an entry
/// per recipient are split, and their publishers pick a partition by the
/// recipient's address, so each recipient's entries stay in order.
/// [`CAMPAIGNS`] stays whole: it carries a few entries per campaign, and
/// campaign-service looks its announcements up by id; so do the consent
/// streams, whose changes one consumer applies in order, and [`MESSAGES`]
/// and [`messages::MESSAGE_USERS`], which carry a few.
#[derive(Debug, Clone)]
pub struct Streams {
    /// [`CAMPAIGNS`], never split.
    pub campaigns: Partitioned,
    /// [`NOTIFICATIONS`], by recipient address.
    pub notifications: Partitioned,
    /// [`EMAILS`], by recipient address.
    pub emails: Partitioned,
    /// [`MESSAGES`], never split.
    pub messages: Partitioned,
    /// [`messages::MESSAGE_USERS`], never split.
    pub message_users: Partitioned,
    /// [`DELIVERIES`], by recipient address.
    pub deliveries: Partitioned,
    /// [`consent::CONSENT`], never split.
    pub consent: Partitioned,
    /// [`consent::SUPPRESSIONS`], never split.
    pub suppressions: Partitioned,
    /// [`consent::ERASURES`], never split.
    pub erasures: Partitioned,
}

impl Streams {
    /// The per-recipient streams split into `partitions` (1: none split).
    pub fn new(partitions: u32) -> Self {
        Self {
            campaigns: Partitioned::new(CAMPAIGNS, 1),
            notifications: Partitioned::new(NOTIFICATIONS, partitions),
            emails: Partitioned::new(EMAILS, partitions),
            messages: Partitioned::new(MESSAGES, 1),
            message_users: Partitioned::new(messages::MESSAGE_USERS, 1),
            deliveries: Partitioned::new(DELIVERIES, partitions),
            consent: Partitioned::new(consent::CONSENT, 1),
            suppressions: Partitioned::new(consent::SUPPRESSIONS, 1),
            erasures: Partitioned::new(consent::ERASURES, 1),
        }
    }

    /// Every stream, in the order of [`ALL_STREAMS`].
    pub fn all(&self) -> [&Partitioned; 9] {
        [
            &self.campaigns,
            &self.notifications,
            &self.emails,
            &self.messages,
            &self.message_users,
            &self.deliveries,
            &self.consent,
            &self.suppressions,
            &self.erasures,
        ]
    }

    /// Every name [`Streams::select`] takes: each stream's own, and each
    /// partition's of a split one.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for stream in self.all() {
            names.push(stream.name().to_string());
            if stream.partitions().len() > 1 {
                names.extend(stream.partitions().iter().cloned());
            }
        }
        names
    }

    /// The partitions `name` stands for: a stream of comms (all of its
    /// partitions) or one partition; `None` for any other name.
    pub fn select(&self, name: &str) -> Option<&[String]> {
        self.all()
            .into_iter()
            .map(|stream| stream.select(name))
            .find(|partitions| !partitions.is_empty())
    }
}

/// A campaign was created: its audience is to be notified (user-service),
/// with these templates (notification-service).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CampaignCreated {
    /// The campaign's id.
    pub campaign_id: String,
    /// The campaign's name.
    pub name: String,
    /// Subject template (minijinja; sees `name`, `email` and `unsubscribe_url`).
    pub subject: String,
    /// Body template (minijinja; sees `name`, `email` and `unsubscribe_url`).
    pub body: String,
    /// Who it goes to: a filter of [`audience`]; absent, every user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Instead, the recipients of this finished campaign that were not
    /// reached (`failed`, `dead_lettered`): a resend. notification-service,
    /// which owns the per-recipient outcomes, expands its audience;
    /// user-service leaves it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_of: Option<String>,
    /// HTML body template (minijinja, auto-escaped; sees what the body
    /// sees); absent, a text-only campaign. Beside it, an empty `body`
    /// means the text part is derived from the rendered HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The campaign's own send rate, emails a second (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
}

impl Event for CampaignCreated {
    const TYPE: &'static str = "campaign.created";
    const VERSION: u32 = 1;
}

/// The size of a campaign's audience is known: `total` notifications are
/// requested. Published when its expansion starts (the users to notify are
/// counted first, so that progress and ETA are known while the paced
/// expansion runs) and again when it ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AudienceExpanded {
    /// The campaign's id.
    pub campaign_id: String,
    /// How many recipients the campaign has.
    pub total: i64,
    /// Of `total`, the recipients never requested because the campaign was
    /// cancelled first: `cancelled`, without a notification of their own.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_expanded: i64,
}

/// Whether a count is 0 (left out of the JSON). By reference: serde's
/// `skip_serializing_if` calls it so.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Event for AudienceExpanded {
    const TYPE: &'static str = "campaign.audience_expanded";
    const VERSION: u32 = 1;
}

/// One recipient of a campaign is to be notified. The campaign's templates
/// are not in it: they came once, in [`CampaignCreated`].
///
/// Version 2: version 1 carried the subject and body templates too.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NotificationRequested {
    /// Deterministic: [`notification_id`] of campaign and user.
    pub notification_id: String,
    /// The campaign's id.
    pub campaign_id: String,
    /// The recipient's user id.
    pub user_id: i64,
    /// The recipient's address.
    pub email: String,
    /// The recipient's name.
    pub name: String,
    /// The recipient is on the suppression list: record the notification
    /// as `suppressed`, send nothing (absent, in requests published before
    /// it was added: not suppressed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

impl Event for NotificationRequested {
    const TYPE: &'static str = "notification.requested";
    const VERSION: u32 = 2;
}

/// A rendered email to send.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailRequested {
    /// The notification this email delivers; the send is keyed on it.
    pub notification_id: String,
    /// The campaign's id.
    pub campaign_id: String,
    /// Recipient address.
    pub to_email: String,
    /// Recipient display name.
    pub to_name: String,
    /// Rendered subject.
    pub subject: String,
    /// Rendered plain-text body.
    pub body: String,
    /// The recipient's one-click unsubscribe link, for the
    /// `List-Unsubscribe` header (absent in requests published before it
    /// was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
    /// The `mailto:` alternative to [`EmailRequested::unsubscribe_url`],
    /// where an unsubscribe address is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_mailto: Option<String>,
    /// Rendered HTML body: the email is then `multipart/alternative`, the
    /// text body first (absent: text only, as in requests published
    /// before it was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// A test send ([`TEST_CAMPAIGN`]): marked `X-Comms-Test: 1`, and
    /// counted in no campaign.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// Its campaign's own send rate, emails a second, kept across
    /// email-service's instances (absent: the shared limits alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
}

/// The `campaign_id` of test sends' emails: no campaign has it (campaigns'
/// ids are UUIDs), so their outcomes move no campaign's counts.
pub const TEST_CAMPAIGN: &str = "test";

/// The `campaign_id` of transactional messages' emails
/// (`POST /api/v1/messages`): no campaign has it, so their outcomes move no
/// campaign's counts; campaign-service settles the message with them.
pub const MESSAGE_CAMPAIGN: &str = "message";

impl Event for EmailRequested {
    const TYPE: &'static str = "email.requested";
    const VERSION: u32 = 1;
}

/// The final outcome of one email.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The mail server accepted the message.
    Sent,
    /// The mail server refused it for good, or every retry failed.
    Failed,
    /// The pipeline gave up on it (its entry is in a dead-letter stream,
    /// where an operator can replay it): final for the campaign's counts,
    /// and shown apart from failures.
    DeadLettered,
    /// Not sent: the recipient is on the suppression list (found when the
    /// audience was expanded, or as late as the send).
    Suppressed,
    /// Not sent: the campaign was cancelled first. Final.
    Cancelled,
    /// Not sent yet: the campaign is paused. Not final: the notification
    /// waits in notification-service's records (not in Redis) and is
    /// requested again when the campaign resumes.
    Held,
}

impl DeliveryStatus {
    /// The status as stored in databases.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::DeadLettered => "dead_lettered",
            DeliveryStatus::Suppressed => "suppressed",
            DeliveryStatus::Cancelled => "cancelled",
            DeliveryStatus::Held => "held",
        }
    }

    /// Whether the status ends the notification (all but `held`).
    pub fn is_final(self) -> bool {
        self != DeliveryStatus::Held
    }
}

// How a status column is read back: the text [`DeliveryStatus::as_str`]
// wrote, and nothing else.
crate::read_back_by_name!(
    DeliveryStatus,
    "delivery",
    [
        Self::Sent,
        Self::Failed,
        Self::DeadLettered,
        Self::Suppressed,
        Self::Cancelled,
        Self::Held
    ]
);

/// What happened to one email.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailDelivery {
    /// The notification the email belonged to.
    pub notification_id: String,
    /// The campaign's id.
    pub campaign_id: String,
    /// Sent, failed or dead-lettered.
    pub status: DeliveryStatus,
    /// The server's reply or the error, for failures; the reason, for dead
    /// letters.
    pub detail: Option<String>,
    /// The recipient's address, so that failures can be listed with it
    /// (absent in outcomes published before it was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// How many times email-service was handed the email's request for
    /// this outcome, this time included (1: its first try settled it);
    /// absent where no try was made (a dead letter given up by a reader,
    /// a cancelled campaign) and in outcomes published before it was
    /// added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries: Option<u64>,
}

impl Event for EmailDelivery {
    const TYPE: &'static str = "email.delivery";
    const VERSION: u32 = 1;
}

/// The namespace of notification ids (a UUID v5 namespace).
const NOTIFICATION_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_2b4e_9d3a_4c5b_8e7f_0a1b_2c3d_4e5f);

/// The id of the notification of `user_id` in `campaign_id`: the same inputs
/// always give the same id, so a re-published notification is recognised by
/// every later step.
pub fn notification_id(campaign_id: &str, user_id: i64) -> String {
    uuid::Uuid::new_v5(
        &NOTIFICATION_NAMESPACE,
        format!("{campaign_id}/{user_id}").as_bytes(),
    )
    .to_string()
}

/// The trace id of what campaign `campaign_id` causes when its creation
/// came without a trace of its own: the campaign's id (a UUID's 32 hex
/// digits), so that one campaign is followed across the four services'
/// logs by its id alone. `None` for an id that is not a UUID.
pub fn campaign_trace_id(campaign_id: &str) -> Option<String> {
    Some(uuid::Uuid::parse_str(campaign_id).ok()?.simple().to_string())
}

/// The trace id of a valid W3C `traceparent` (`00-<trace id>-<parent
/// id>-<flags>`, lower-case hex, neither id all zeros), so that a caller's
/// trace goes on through comms; `None` for anything else, which W3C says
/// to ignore rather than refuse.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let [version, trace_id, parent_id, flags] = parts[..] else {
        return None;
    };
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = version == "00"
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0');
    valid.then(|| trace_id.to_string())
}

/// A W3C `traceparent` in trace `trace_id`, with a fresh parent id for
/// each publication.
pub fn traceparent(trace_id: &str) -> String {
    // Never all zeros, which W3C reserves as invalid.
    let parent_id = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
    format!("00-{trace_id}-{parent_id:016x}-01")
}

#[cfg(test)]
mod tests;
