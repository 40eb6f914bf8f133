//! What email-service's integration tests share.

use contracts::EmailRequested;

/// An email to Ada, for the notification `id` of campaign `c`.
pub fn email(id: &str) -> EmailRequested {
    EmailRequested {
        notification_id: id.into(),
        campaign_id: "c".into(),
        to_email: "ada@example.com".into(),
        to_name: "Ada".into(),
        subject: "Hello".into(),
        body: "Hi Ada".into(),
        unsubscribe_url: Some("http://localhost:8080/unsubscribe/t".into()),
        unsubscribe_mailto: None,
        html: None,
        test: false,
        rate_per_s: None,
    }
}
