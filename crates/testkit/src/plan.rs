//! What a database plans to do for a query, for tests that a read uses
//! its index rather than scanning or sorting the table.

use sqlx::{AnyPool, Row};

/// The plan of `sql` on `db` in one text, a line per step, with the query's
/// one parameter bound to `arg` when given: SQLite's `EXPLAIN QUERY PLAN`,
/// or PostgreSQL's `EXPLAIN` with sequential scans and sorts priced out
/// (so that a table of a few rows still shows whether an index can serve
/// the query, in its order).
pub async fn query_plan(db: &AnyPool, sql: &str, arg: Option<&str>) -> String {
    let mut tx = db.begin().await.expect("a transaction");
    let (explain, column) = if tx.backend_name() == "PostgreSQL" {
        for setting in ["enable_seqscan", "enable_sort"] {
            sqlx::query(&format!("SET LOCAL {setting} = off"))
                .execute(&mut *tx)
                .await
                .expect("SET LOCAL");
        }
        ("EXPLAIN", 0)
    } else {
        ("EXPLAIN QUERY PLAN", 3)
    };
    let explain = format!("{explain} {sql}");
    let mut query = sqlx::query(&explain);
    if let Some(arg) = arg {
        query = query.bind(arg);
    }
    let rows = query.fetch_all(&mut *tx).await.expect("the plan");
    rows.iter()
        .map(|row| row.try_get::<String, _>(column).expect("a line of the plan"))
        .collect::<Vec<_>>()
        .join("\n")
}
