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

/// A sender as email-service builds one, to the SMTP server on
/// `smtp_port`, keeping its ledger (leases of `lease_ms`, consumer
/// `consumer`) and its copy of the suppression list in `db`, publishing
/// on `redis`, under `domains`' limits and no shared one.
#[allow(dead_code, reason = "not every test binary builds a sender")]
pub async fn sender(
    redis: &testkit::RedisServer,
    db: &sqlx::AnyPool,
    smtp_port: u16,
    (consumer, lease_ms): (&str, i64),
    domains: email_service::domains::DomainLimits,
) -> email_service::sender::Sender {
    use email_service::{config::Config, ledger::Ledger, limits::SendSlots, mailer::Mailer};
    let mailer = Mailer::new(&Config {
        smtp_port,
        ..Config::default()
    })
    .unwrap();
    let link = eventstore::RedisTarget::parse(&redis.url())
        .unwrap()
        .shared()
        .await
        .unwrap();
    let relays = mailer.relays().clone();
    email_service::sender::Sender::new(
        mailer,
        Ledger::new(db.clone(), consumer.into(), lease_ms),
        eventstore::Publisher::new(link.clone()),
        &contracts::Streams::new(1),
        servicekit::suppressed::SuppressedAddresses::new(
            db.clone(),
            link.clone(),
            contracts::consent::SUPPRESSIONS,
        ),
        contracts::control::ControlBoard::new(link.clone()),
        SendSlots::new(link, eventstore::rate::SharedLimits::default(), domains, relays),
    )
}
