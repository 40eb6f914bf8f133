//! What a webhook tells: one event of comms, made from an entry of an
//! outcome stream (or a campaign's end), with an id that stays the same
//! however many times the entry is read, so that a receiver deduplicates
//! by it.

use contracts::consent::{ConsentChanged, SuppressionReason};
use contracts::{DeliveryStatus, EmailDelivery, MESSAGE_CAMPAIGN};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The kinds of event an endpoint may ask for.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, ToSchema)]
pub enum EventType {
    /// The mail server accepted an email.
    #[serde(rename = "email.sent")]
    EmailSent,
    /// The mail server refused an email for good, or every retry failed.
    #[serde(rename = "email.failed")]
    EmailFailed,
    /// The pipeline gave up on an email (its entry is a dead letter, which
    /// an operator may replay: a `email.sent` may follow).
    #[serde(rename = "email.dead_lettered")]
    EmailDeadLettered,
    /// An email was not sent: its recipient is on the suppression list.
    #[serde(rename = "email.suppressed")]
    EmailSuppressed,
    /// An address bounced for good (a 5xx to `RCPT TO`, or a delivery
    /// status notification): it is now suppressed.
    #[serde(rename = "email.bounced")]
    EmailBounced,
    /// A recipient reported an email as spam: they are now suppressed.
    #[serde(rename = "email.complained")]
    EmailComplained,
    /// Every recipient of a campaign has its final outcome.
    #[serde(rename = "campaign.completed")]
    CampaignCompleted,
    /// A campaign was cancelled, and every recipient it still had is
    /// settled `cancelled`.
    #[serde(rename = "campaign.cancelled")]
    CampaignCancelled,
}

impl EventType {
    /// Every kind, in the order the API documents them.
    pub const ALL: [Self; 8] = [
        Self::EmailSent,
        Self::EmailFailed,
        Self::EmailDeadLettered,
        Self::EmailSuppressed,
        Self::EmailBounced,
        Self::EmailComplained,
        Self::CampaignCompleted,
        Self::CampaignCancelled,
    ];

    /// The kind as sent and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailSent => "email.sent",
            Self::EmailFailed => "email.failed",
            Self::EmailDeadLettered => "email.dead_lettered",
            Self::EmailSuppressed => "email.suppressed",
            Self::EmailBounced => "email.bounced",
            Self::EmailComplained => "email.complained",
            Self::CampaignCompleted => "campaign.completed",
            Self::CampaignCancelled => "campaign.cancelled",
        }
    }

    /// Whether the kind is a campaign's (its events come from the
    /// campaigns' table, not from a stream).
    pub fn is_campaigns(self) -> bool {
        matches!(self, Self::CampaignCompleted | Self::CampaignCancelled)
    }
}

// How a stored kind is read back.
contracts::read_back_by_name!(EventType, "webhook event", Self::ALL);

/// The namespace of event ids (a UUID v5 namespace).
const EVENT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x3b7e_91c2_5a4d_4f60_9e1b_7c2d_8f3a_6b51);

/// One event, as kept until each endpoint that asked for it has it. The
/// recipient's address and the server's reply are kept apart from the
/// rest, so that an erasure blanks them in events not yet delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its id: the same for the same outcome, however often it is read.
    pub id: String,
    /// Its kind.
    pub kind: EventType,
    /// When it happened, in ms since the Unix epoch.
    pub occurred_at: i64,
    /// The notification it is about, if any (erasures find it by this).
    pub notification_id: Option<String>,
    /// The recipient's address, if the event names one.
    pub recipient: Option<String>,
    /// The server's reply or the reason, if any.
    pub detail: Option<String>,
    /// The rest of what it says (ids, a campaign's counts): no personal
    /// data.
    pub data: Value,
}

impl Event {
    /// The event of an email's outcome, published at `occurred_at`; none
    /// for an outcome that is not one of the kinds (`cancelled`, `held`).
    pub fn of_delivery(delivery: &EmailDelivery, occurred_at: i64) -> Option<Self> {
        let kind = match delivery.status {
            DeliveryStatus::Sent => EventType::EmailSent,
            DeliveryStatus::Failed => EventType::EmailFailed,
            DeliveryStatus::DeadLettered => EventType::EmailDeadLettered,
            DeliveryStatus::Suppressed => EventType::EmailSuppressed,
            DeliveryStatus::Cancelled | DeliveryStatus::Held => return None,
        };
        let data = if delivery.campaign_id == MESSAGE_CAMPAIGN {
            json!({ "message_id": delivery.notification_id })
        } else {
            json!({ "campaign_id": delivery.campaign_id })
        };
        Some(Self {
            id: event_id(kind, &delivery.notification_id),
            kind,
            occurred_at,
            notification_id: Some(delivery.notification_id.clone()),
            recipient: delivery.recipient.clone(),
            detail: delivery.detail.clone(),
            data,
        })
    }

    /// The event of a bounce or a complaint; none for any other change of
    /// consent (an unsubscribe, a resubscribe, an operator's).
    pub fn of_consent(change: &ConsentChanged) -> Option<Self> {
        let kind = match (change.suppress, change.reason) {
            (true, SuppressionReason::HardBounce) => EventType::EmailBounced,
            (true, SuppressionReason::Complaint) => EventType::EmailComplained,
            _ => return None,
        };
        let who = match (&change.address, change.user_id) {
            (Some(address), _) => contracts::consent::address_hash(address),
            (None, Some(user_id)) => format!("user {user_id}"),
            (None, None) => String::new(),
        };
        let mut data = json!({});
        for (name, value) in [
            ("campaign_id", change.campaign_id.clone().map(Value::from)),
            ("user_id", change.user_id.map(Value::from)),
        ] {
            if let Some(value) = value {
                data[name] = value;
            }
        }
        Some(Self {
            id: event_id(kind, &format!("{who}/{}", change.at)),
            kind,
            occurred_at: change.at,
            notification_id: change.notification_id.clone(),
            recipient: change.address.clone(),
            detail: change.detail.clone(),
            data,
        })
    }

    /// The event of a campaign's end: `completed` or `cancelled` by its
    /// `status`, with its counts in `progress`.
    pub fn of_campaign(campaign_id: &str, cancelled: bool, completed_at: i64, progress: Value) -> Self {
        let kind = if cancelled {
            EventType::CampaignCancelled
        } else {
            EventType::CampaignCompleted
        };
        Self {
            id: event_id(kind, campaign_id),
            kind,
            occurred_at: completed_at,
            notification_id: None,
            recipient: None,
            detail: None,
            data: json!({ "campaign_id": campaign_id, "progress": progress }),
        }
    }

    /// The event as an endpoint receives it:
    /// `{"id", "type", "timestamp", "data"}`, the address and the reply
    /// in `data` with the rest.
    pub fn to_json(&self) -> Value {
        let mut data = self.data.clone();
        for (name, value) in [
            ("notification_id", &self.notification_id),
            ("recipient", &self.recipient),
            ("detail", &self.detail),
        ] {
            if let Some(value) = value {
                data[name] = Value::from(value.as_str());
            }
        }
        json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "timestamp": rfc3339(self.occurred_at),
            "data": data,
        })
    }
}

/// The id of the event of `kind` about `subject`.
fn event_id(kind: EventType, subject: &str) -> String {
    uuid::Uuid::new_v5(
        &EVENT_NAMESPACE,
        format!("{}/{subject}", kind.as_str()).as_bytes(),
    )
    .to_string()
}

/// `ms` since the Unix epoch as RFC 3339, in UTC to the millisecond.
fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// When the stream entry `entry_id` was added, in ms since the Unix epoch
/// (its id's first part); 0 for an id not of that shape.
pub fn entry_time(entry_id: &str) -> i64 {
    entry_id
        .split_once('-')
        .and_then(|(ms, _)| ms.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(status: DeliveryStatus) -> EmailDelivery {
        EmailDelivery {
            notification_id: "n-1".into(),
            campaign_id: "c-1".into(),
            status,
            detail: Some("550 no such user".into()),
            recipient: Some("ada@example.com".into()),
            tries: None,
        }
    }

    #[test]
    fn an_outcome_read_twice_is_the_same_event_and_each_kind_its_own() {
        let sent = Event::of_delivery(&delivery(DeliveryStatus::Sent), 1).unwrap();
        assert_eq!(
            sent,
            Event::of_delivery(&delivery(DeliveryStatus::Sent), 1).unwrap()
        );
        let failed = Event::of_delivery(&delivery(DeliveryStatus::Failed), 1).unwrap();
        assert_ne!(sent.id, failed.id);
        assert!(Event::of_delivery(&delivery(DeliveryStatus::Held), 1).is_none());
        assert!(Event::of_delivery(&delivery(DeliveryStatus::Cancelled), 1).is_none());
    }

    #[test]
    fn an_event_names_its_recipient_and_when_in_rfc_3339() {
        let json = Event::of_delivery(&delivery(DeliveryStatus::Failed), 1_765_000_000_123)
            .unwrap()
            .to_json();
        assert_eq!(json["type"], "email.failed");
        assert_eq!(json["timestamp"], "2025-12-06T05:46:40.123Z");
        assert_eq!(json["data"]["recipient"], "ada@example.com");
        assert_eq!(json["data"]["campaign_id"], "c-1");
        assert_eq!(json["data"]["detail"], "550 no such user");
    }

    #[test]
    fn only_bounces_and_complaints_that_suppress_are_events() {
        let change = |suppress, reason| ConsentChanged {
            user_id: None,
            address: Some("ada@example.com".into()),
            suppress,
            reason,
            campaign_id: Some("c-1".into()),
            detail: None,
            notification_id: None,
            at: 7,
        };
        let bounce = Event::of_consent(&change(true, SuppressionReason::HardBounce)).unwrap();
        assert_eq!(bounce.kind, EventType::EmailBounced);
        assert_eq!(bounce.to_json()["data"]["campaign_id"], "c-1");
        let complaint = Event::of_consent(&change(true, SuppressionReason::Complaint)).unwrap();
        assert_eq!(complaint.kind, EventType::EmailComplained);
        assert!(Event::of_consent(&change(true, SuppressionReason::Unsubscribed)).is_none());
        assert!(Event::of_consent(&change(false, SuppressionReason::HardBounce)).is_none());
    }

    #[test]
    fn a_kind_reads_back_the_text_it_is_sent_as() {
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert!("sent".parse::<EventType>().is_err());
        assert_eq!(entry_time("1765000000123-4"), 1_765_000_000_123);
    }
}
