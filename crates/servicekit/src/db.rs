//! One database layer for SQLite and PostgreSQL, through sqlx's `Any`
//! driver: the URL picks the backend, the code is the same.
//!
//! SQL is written to run on both: `$1` placeholders, `ON CONFLICT`, `BIGINT`
//! and `TEXT` columns.
//!
//! Several instances of a service need PostgreSQL: an SQLite file belongs
//! to the one process that opens it, so instances on SQLite would each keep
//! state of their own.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// The PostgreSQL advisory lock that serialises schema changes ("comms" in
/// ASCII), so that instances starting at the same moment do not race to
/// create the same tables (`CREATE TABLE IF NOT EXISTS` is not safe against
/// itself there).
const SCHEMA_LOCK: i64 = 0x0063_6f6d_6d73;

/// Applies `schema` in one transaction; on PostgreSQL under
/// [`SCHEMA_LOCK`], held until the transaction ends. (SQLite's single
/// writer serialises it already.)
async fn create_schema(pool: &AnyPool, schema: &[&str], sqlite: bool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !sqlite {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    for statement in schema {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Whether `url` names an SQLite database.
fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Connects to `url` and applies `schema` (idempotent `CREATE … IF NOT
/// EXISTS` statements). For SQLite the file and its directory are created,
/// the database runs in WAL mode, and the pool holds a single connection:
/// SQLite has one writer at a time, and writers of one process queueing for
/// one connection proved much faster than several connections taking turns
/// through SQLite's sleeping busy handler.
pub async fn connect(url: &str, schema: &[&str]) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let sqlite = is_sqlite(url);
    let url = if sqlite {
        prepare_sqlite(url)?
    } else {
        url.to_string()
    };
    let options: AnyConnectOptions = url
        .parse()
        .map_err(|error| anyhow::anyhow!("invalid database URL: {error}"))?;
    let pool = AnyPoolOptions::new()
        .max_connections(if sqlite { 1 } else { 8 })
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|error| anyhow::anyhow!("cannot open the database: {error}"))?;
    if sqlite {
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
    }
    create_schema(&pool, schema, sqlite)
        .await
        .map_err(|error| anyhow::anyhow!("cannot create the schema: {error}"))?;
    Ok(pool)
}

/// Creates the directory of an SQLite file and asks for the file to be
/// created if missing (`mode=rwc`).
fn prepare_sqlite(url: &str) -> anyhow::Result<String> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path != ":memory:" {
        if let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|error| anyhow::anyhow!("cannot create {}: {error}", dir.display()))?;
        }
    }
    Ok(if url.contains('?') {
        url.to_string()
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Placeholders for a multi-row `VALUES` list: `rows` tuples of `columns`
/// parameters each, numbered from `$1`: `($1, $2), ($3, $4)`. One statement
/// per batch instead of one per row: each statement is a round trip to the
/// database (for SQLite, to its worker thread).
pub fn values_list(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns)
                .map(|col| format!("${}", row * columns + col))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Placeholders for an `IN (...)` list of `count` parameters numbered from
/// `$first`.
pub fn in_list(count: usize, first: usize) -> String {
    let params: Vec<String> = (first..first + count).map(|n| format!("${n}")).collect();
    format!("({})", params.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(values_list(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(in_list(3, 2), "($2, $3, $4)");
    }
}
