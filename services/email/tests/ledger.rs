//! The send ledger on SQLite and on PostgreSQL: one lease per id, final
//! states are final, a dead run's leases can be taken over (resumed: its
//! send may have gone out, unlike a lease given back), and a lease lost is
//! lost: its old holder can no longer write the id's row.

use std::time::Duration;

use contracts::DeliveryStatus;
use email_service::ledger::{Claim, Ledger, SCHEMA};
use testkit::Postgres;

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(std::string::ToString::to_string).collect()
}

async fn check_ledger(url: &str) {
    let db = servicekit::db::connect(url, SCHEMA).await.unwrap();
    let ledger = Ledger::new(db.clone(), "sender-1".into(), 60_000);

    let claims = ledger.claim_all(&ids(&["a", "a", "b"])).await.unwrap();
    assert_eq!(
        claims,
        vec![Claim::Acquired(1), Claim::Busy, Claim::Acquired(1)],
        "one lease per id"
    );
    assert_eq!(
        ledger.claim_all(&ids(&["a"])).await.unwrap(),
        vec![Claim::Busy],
        "the lease is live"
    );

    let recorded = ledger
        .finish_all(&[
            (("a".into(), 1), DeliveryStatus::Sent, None),
            (
                ("b".into(), 1),
                DeliveryStatus::Failed,
                Some("550 no such user".into()),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(recorded, vec![true, true]);
    let claims = ledger.claim_all(&ids(&["a", "b"])).await.unwrap();
    assert_eq!(
        claims,
        vec![Claim::Sent, Claim::Failed("550 no such user".into())]
    );

    // A lease released after a transient failure is taken again at once.
    ledger.claim_all(&ids(&["c"])).await.unwrap();
    ledger.release(&("c".into(), 1)).await.unwrap();
    assert_eq!(
        ledger.claim_all(&ids(&["c"])).await.unwrap(),
        vec![Claim::Acquired(2)],
        "a take-over is a new generation"
    );

    // Another instance sees the live lease; after a restart of the holder,
    // its stale leases lapse and the id can be sent again: resumed, since
    // the dead run's send may have gone out.
    let other = Ledger::new(db.clone(), "sender-2".into(), 60_000);
    assert_eq!(other.claim_all(&ids(&["c"])).await.unwrap(), vec![Claim::Busy]);
    let restarted = Ledger::new(db, "sender-1".into(), 60_000);
    assert_eq!(restarted.release_stale_leases().await.unwrap(), 1);
    assert_eq!(
        other.claim_all(&ids(&["c"])).await.unwrap(),
        vec![Claim::Resumed(3)]
    );
    other.release(&("c".into(), 3)).await.unwrap();
    assert_eq!(
        other.claim_all(&ids(&["c"])).await.unwrap(),
        vec![Claim::Resumed(4)],
        "a resumed lease given back stays lapsed: the dead run's send may have gone out"
    );

    // A lease that never lapsed, given back, says nothing went out.
    assert_eq!(
        other.claim_all(&ids(&["d"])).await.unwrap(),
        vec![Claim::Acquired(1)]
    );
    other.release(&("d".into(), 1)).await.unwrap();
    assert_eq!(
        other.claim_all(&ids(&["d"])).await.unwrap(),
        vec![Claim::Acquired(2)],
        "a lease given back says nothing went out"
    );
}

/// A sender whose lease lapsed (a slow send) and was taken over can no
/// longer renew, release or finish it: the new holder's lease stands.
async fn check_fencing(url: &str) {
    let db = servicekit::db::connect(url, SCHEMA).await.unwrap();
    let slow = Ledger::new(db.clone(), "sender-1".into(), 200);
    let other = Ledger::new(db.clone(), "sender-2".into(), 60_000);

    assert_eq!(
        slow.claim_all(&ids(&["x", "y"])).await.unwrap(),
        vec![Claim::Acquired(1); 2]
    );
    assert!(
        slow.renew_all(&[("y".into(), 1)]).await.unwrap().is_empty(),
        "a held lease renews"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        other.claim_all(&ids(&["x"])).await.unwrap(),
        vec![Claim::Resumed(2)],
        "a lapsed lease: its send may have gone out"
    );

    let lost = slow.renew_all(&[("x".into(), 1), ("y".into(), 1)]).await.unwrap();
    assert_eq!(lost, vec![("x".to_string(), 1)], "x was taken over");
    slow.release(&("x".into(), 1)).await.unwrap();
    assert_eq!(
        slow.claim_all(&ids(&["x"])).await.unwrap(),
        vec![Claim::Busy],
        "the old holder's release leaves the new lease alone"
    );
    let recorded = slow
        .finish_all(&[
            (("x".into(), 1), DeliveryStatus::Failed, Some("timeout".into())),
            (("y".into(), 1), DeliveryStatus::Sent, None),
        ])
        .await
        .unwrap();
    assert_eq!(recorded, vec![false, true], "only y's lease was still held");
    assert_eq!(
        other
            .finish_all(&[(("x".into(), 2), DeliveryStatus::Sent, None)])
            .await
            .unwrap(),
        vec![true]
    );

    // The same instance taking an id over from itself fences its own
    // older send too.
    let again = Ledger::new(db, "sender-1".into(), 1);
    assert_eq!(
        again.claim_all(&ids(&["z"])).await.unwrap(),
        vec![Claim::Acquired(1)]
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        again.claim_all(&ids(&["z"])).await.unwrap(),
        vec![Claim::Resumed(2)]
    );
    assert_eq!(
        again
            .finish_all(&[(("z".into(), 1), DeliveryStatus::Sent, None)])
            .await
            .unwrap(),
        vec![false]
    );
}

#[tokio::test]
async fn lost_leases_are_fenced_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check_fencing(&format!("sqlite://{}/email.db", dir.path().display())).await;
}

#[tokio::test]
async fn lost_leases_are_fenced_on_postgresql() {
    let postgres = Postgres::start();
    check_fencing(&postgres.database("email")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_at_once_create_the_schema_once() {
    let postgres = Postgres::start();
    let url = postgres.database("email");
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { servicekit::db::connect(&url, SCHEMA).await.map(|_| ()) })
        })
        .collect();
    for start in starts {
        start.await.unwrap().expect("every instance starts");
    }
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
