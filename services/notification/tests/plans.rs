//! notification-service's per-campaign counts read an index, not the
//! whole table, on real SQLite and PostgreSQL: the counts are open to
//! anyone, for any id, so a scan would cost a pass over every recipient of
//! every campaign per request.

use notification_service::store::{COUNTS, SCHEMA};
use testkit::{query_plan, Postgres};

#[tokio::test]
async fn a_campaigns_counts_are_read_through_an_index_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/notifications.db", dir.path().display());
    let db = servicekit::db::connect(&url, SCHEMA).await.unwrap();
    let plan = query_plan(&db, COUNTS, Some("c1")).await;
    assert!(
        plan.contains("USING COVERING INDEX notifications_by_campaign"),
        "the counts scan the table:\n{plan}"
    );
}

#[tokio::test]
async fn a_campaigns_counts_are_read_through_an_index_on_postgres() {
    let postgres = Postgres::start();
    let db = servicekit::db::connect(&postgres.database("notifications"), SCHEMA)
        .await
        .unwrap();
    let plan = query_plan(&db, COUNTS, Some("c1")).await;
    assert!(
        plan.contains("notifications_by_campaign") && !plan.contains("Seq Scan"),
        "the counts scan the table:\n{plan}"
    );
}
