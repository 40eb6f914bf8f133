//! The send ledger on SQLite and on PostgreSQL: one lease per id, final
//! states are final, and a dead run's leases can be taken over.

use contracts::DeliveryStatus;
use email_service::ledger::{Claim, Ledger, SCHEMA};
use testkit::Postgres;

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

async fn check_ledger(url: &str) {
    let db = servicekit::db::connect(url, SCHEMA).await.unwrap();
    let ledger = Ledger::new(db.clone(), "sender-1".into(), 60_000);

    let claims = ledger.claim_all(&ids(&["a", "a", "b"])).await.unwrap();
    assert_eq!(
        claims,
        vec![Claim::Acquired, Claim::Busy, Claim::Acquired],
        "one lease per id"
    );
    assert_eq!(
        ledger.claim_all(&ids(&["a"])).await.unwrap(),
        vec![Claim::Busy],
        "the lease is live"
    );

    ledger
        .finish_all(&[
            ("a".into(), DeliveryStatus::Sent, None),
            (
                "b".into(),
                DeliveryStatus::Failed,
                Some("550 no such user".into()),
            ),
        ])
        .await
        .unwrap();
    let claims = ledger.claim_all(&ids(&["a", "b"])).await.unwrap();
    assert_eq!(
        claims,
        vec![Claim::Sent, Claim::Failed("550 no such user".into())]
    );

    // A lease released after a transient failure is taken again at once.
    ledger.claim_all(&ids(&["c"])).await.unwrap();
    ledger.release("c").await.unwrap();
    assert_eq!(
        ledger.claim_all(&ids(&["c"])).await.unwrap(),
        vec![Claim::Acquired]
    );

    // Another instance sees the live lease; after a restart of the holder,
    // its stale leases are released and the id can be sent again.
    let other = Ledger::new(db.clone(), "sender-2".into(), 60_000);
    assert_eq!(other.claim_all(&ids(&["c"])).await.unwrap(), vec![Claim::Busy]);
    let restarted = Ledger::new(db, "sender-1".into(), 60_000);
    assert_eq!(restarted.release_stale_leases().await.unwrap(), 1);
    assert_eq!(
        other.claim_all(&ids(&["c"])).await.unwrap(),
        vec![Claim::Acquired]
    );
}

#[tokio::test]
async fn the_ledger_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check_ledger(&format!("sqlite://{}/email.db", dir.path().display())).await;
}

#[tokio::test]
async fn the_ledger_on_postgresql() {
    let postgres = Postgres::start();
    check_ledger(&postgres.database("email")).await;
}
