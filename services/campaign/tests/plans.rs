//! campaign-service's reads by order and by status use its indexes on
//! real SQLite and PostgreSQL: the list and the live channel read the
//! latest campaigns often, the stalled-campaign sweep reads those in one
//! status, and the webhooks read an endpoint's next events however many
//! wait and the campaigns that ended lately, so none sorts nor scans the
//! table. The queries have the
//! store's `WHERE` and `ORDER BY` clauses, which decide the plan.

use campaign_service::store::SCHEMA;
use sqlx::AnyPool;
use testkit::{query_plan, Postgres};

/// The reads, each with the index it must use.
const READS: &[(&str, &str)] = &[
    (
        "SELECT id FROM campaigns ORDER BY created_at DESC, id LIMIT 50",
        "campaigns_by_created",
    ),
    (
        "SELECT id FROM campaigns WHERE status = 'sending'",
        "campaigns_by_status",
    ),
    (
        "SELECT id FROM campaigns WHERE status = 'expanding' AND created_at < 1000",
        "campaigns_by_status",
    ),
    (
        "SELECT event_id FROM webhook_deliveries
         WHERE endpoint_id = 'e' AND dead_at IS NULL AND next_at <= 5 ORDER BY next_at, event_id LIMIT 100",
        "webhook_deliveries_in_order",
    ),
    (
        "SELECT id, status, completed_at FROM campaigns c
         WHERE completed_at IS NOT NULL AND completed_at >= 5
           AND NOT EXISTS (SELECT 1 FROM webhook_campaigns w WHERE w.campaign_id = c.id)
         ORDER BY completed_at LIMIT 100",
        "campaigns_by_completion",
    ),
];

/// Asserts that every one of [`READS`] uses its index on `db`.
async fn assert_indexed(db: &AnyPool) {
    for (sql, index) in READS {
        let plan = query_plan(db, sql, None).await;
        assert!(
            plan.contains(index) && !plan.contains("Seq Scan") && !plan.contains("TEMP B-TREE"),
            "{sql} does not read {index}:\n{plan}"
        );
    }
}

#[tokio::test]
async fn reads_by_order_and_status_use_indexes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/campaigns.db", dir.path().display());
    assert_indexed(&servicekit::db::connect(&url, SCHEMA).await.unwrap()).await;
}

#[tokio::test]
async fn reads_by_order_and_status_use_indexes_on_postgres() {
    let postgres = Postgres::start();
    let url = postgres.database("campaigns");
    assert_indexed(&servicekit::db::connect(&url, SCHEMA).await.unwrap()).await;
}
