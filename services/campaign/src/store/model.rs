//! What the store answers: a campaign with its status and exact
//! progress, and a recipient not sent, in the shapes the API serves.

use contracts::DeliveryStatus;
use serde::Serialize;

/// A campaign as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Campaign {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Subject template.
    pub subject: String,
    /// Text body template; empty when the text part is derived from
    /// `html`.
    pub body: String,
    /// HTML body template; `null`: a text-only campaign.
    pub html: Option<String>,
    /// Where it stands.
    #[schema(inline)]
    pub status: CampaignStatus,
    /// Exact counts.
    pub progress: Progress,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Completion time (or cancellation), ms since the epoch.
    pub completed_at: Option<i64>,
    /// When it was asked to start sending, ms since the epoch; `null`:
    /// at its creation.
    pub send_at: Option<i64>,
    /// When a scheduled campaign started, ms since the epoch: after
    /// `send_at` by as much as comms was late (down, or at its quota).
    pub started_at: Option<i64>,
    /// Its audience filter; `null`: every user.
    pub audience: Option<String>,
    /// The campaign whose recipients not reached this one resends to.
    pub resend_of: Option<String>,
    /// Its own send rate, emails a second; `null`: the shared limits
    /// only.
    pub rate_per_s: Option<f64>,
}

/// Where a campaign stands in its life: `scheduled` until its `send_at`,
/// `expanding` until its audience is known, then `sending`, then
/// `completed` when every recipient has an outcome; `paused` (and back)
/// or `cancelled` (for good) at any time before that. Stored as that text in `campaigns.status` and served as the
/// same string, so neither the rows nor the API changed when it stopped
/// being a `String`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Waiting for its `send_at`.
    Scheduled,
    /// Cancelled: nothing more is sent; its recipients not sent end
    /// `cancelled` (`completed_at` is set once they all have).
    Cancelled,
    /// Paused: nothing new is sent until it is resumed.
    Paused,
    /// Its audience is not known yet.
    Expanding,
    /// Its emails are going out.
    Sending,
    /// Every recipient has a final outcome.
    Completed,
}

impl CampaignStatus {
    /// The status as stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Cancelled => "cancelled",
            Self::Paused => "paused",
            Self::Expanding => "expanding",
            Self::Sending => "sending",
            Self::Completed => "completed",
        }
    }
}

// How the status column is read back (sqlx's `Type` derive has no `Any`
// support: it implements the trait for each concrete driver only).
contracts::read_back_by_name!(
    CampaignStatus,
    "campaign",
    [
        Self::Scheduled,
        Self::Cancelled,
        Self::Paused,
        Self::Expanding,
        Self::Sending,
        Self::Completed
    ]
);

/// How far a campaign's recipients are.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Progress {
    /// Recipients (0 until the audience is expanded).
    pub total: i64,
    /// Emails the server accepted.
    pub sent: i64,
    /// Emails that failed for good.
    pub failed: i64,
    /// Notifications the pipeline gave up on (in the dead-letter streams,
    /// where an operator can replay them).
    pub dead_lettered: i64,
    /// Recipients not sent because they are on the suppression list.
    pub suppressed: i64,
    /// Recipients not sent because the campaign was cancelled first.
    pub cancelled: i64,
    /// Recipients without a final status yet.
    pub pending: i64,
}

/// A notification of a campaign that was not sent, as the API lists it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Failure {
    /// The notification.
    pub notification_id: String,
    /// `failed` or `dead_lettered`.
    #[schema(value_type = String, example = "failed")]
    pub status: DeliveryStatus,
    /// The recipient's address, when the outcome carried it.
    pub recipient: Option<String>,
    /// The SMTP server's reply, or why the notification was given up.
    pub detail: Option<String>,
}

/// What a batch of outcomes adds to one campaign's counts.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) sent: i64,
    /// Every outcome but `sent` (the `campaigns.failed` column).
    pub(super) not_sent: i64,
    pub(super) dead_lettered: i64,
    pub(super) suppressed: i64,
    pub(super) cancelled: i64,
}

impl Counts {
    /// Counts `n` (1, or -1 for an outcome replaced) more of `status`.
    pub(super) fn add(&mut self, status: DeliveryStatus, n: i64) {
        match status {
            DeliveryStatus::Sent => self.sent += n,
            DeliveryStatus::Failed => self.not_sent += n,
            DeliveryStatus::DeadLettered => {
                self.not_sent += n;
                self.dead_lettered += n;
            }
            DeliveryStatus::Suppressed => {
                self.not_sent += n;
                self.suppressed += n;
            }
            DeliveryStatus::Cancelled => {
                self.not_sent += n;
                self.cancelled += n;
            }
            DeliveryStatus::Held => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API serves a status as the text the database holds, and that
    /// text reads back as the same status.
    #[test]
    fn a_status_is_served_as_stored_and_read_back_as_itself() {
        for status in [
            CampaignStatus::Scheduled,
            CampaignStatus::Cancelled,
            CampaignStatus::Paused,
            CampaignStatus::Expanding,
            CampaignStatus::Sending,
            CampaignStatus::Completed,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(status.as_str().parse::<CampaignStatus>(), Ok(status));
        }
        assert!("unknown".parse::<CampaignStatus>().is_err());
    }
}
