//! One database layer for SQLite and PostgreSQL, through sqlx's `Any`
//! driver: the URL picks the backend, the code is the same.
//!
//! SQL is written to run on both: `$1` placeholders, `ON CONFLICT`, `BIGINT`
//! and `TEXT` columns. A batch's statement made only of generated lists
//! writes them as its backend binds fastest ([`ListParams`]).
//!
//! Several instances of a service need PostgreSQL: an SQLite file belongs
//! to the one process that opens it, so instances on SQLite would each keep
//! state of their own.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

mod reads;

pub use reads::connect_reads;

/// The PostgreSQL advisory lock that serialises schema changes ("comms" in
/// ASCII), so that instances starting at the same moment do not race to
/// create the same tables (`CREATE TABLE IF NOT EXISTS` is not safe against
/// itself there).
const SCHEMA_LOCK: i64 = 0x0063_6f6d_6d73;

/// The statements of `schema`, a service's `schema.sql`: its lines but
/// the `--` comments (which may hold a `;`), split at each `;` (no
/// statement holds one), leaving out what is only whitespace.
fn statements(schema: &str) -> Vec<String> {
    let code: Vec<&str> = schema
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_string)
        .collect()
}

/// Applies `schema` (statements separated by `;`, see [`statements`]) in
/// one transaction; on PostgreSQL under [`SCHEMA_LOCK`], held until the
/// transaction ends. (SQLite's single writer serialises it already.)
async fn create_schema(pool: &AnyPool, schema: &str, sqlite: bool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !sqlite {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    for statement in statements(schema) {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Makes the transactions that call this with one `key` run one at a
/// time: on PostgreSQL a transaction-scoped advisory lock, held until `tx`
/// ends; SQLite's single writer serialises writes already. For work whose
/// reads decide its writes (the next id after the highest) and must not
/// interleave across instances.
pub async fn serialise(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    pool: &AnyPool,
    key: i64,
) -> Result<(), sqlx::Error> {
    if !is_sqlite(pool.connect_options().database_url.as_str()) {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// How SQLite makes a commit durable. Every service acknowledges a stream
/// entry right after the commit of its effect (DESIGN.md: a message is
/// acknowledged only after its effect is durable). In WAL mode, `NORMAL`
/// syncs the log only at checkpoints, so a power failure (not a crash of
/// the process: the log is in the OS's cache by then) can take back
/// commits already acknowledged, entries Redis will never deliver again;
/// `FULL` syncs the log at each commit. The cost is one `fsync` per
/// transaction, and the services write a batch per transaction.
pub const SQLITE_SYNCHRONOUS: &str = "PRAGMA synchronous = FULL";

/// What SQLite does with the bytes a deletion or an update frees: left
/// as they were, a message's address would stay in the file's free space
/// after its row was blanked at settlement, where no erasure could reach
/// it. `ON` overwrites them with zeros as they are freed: most sit in a
/// page being written anyway; only a page freed whole costs a write more.
pub const SQLITE_SECURE_DELETE: &str = "PRAGMA secure_delete = ON";

/// The database's clock as SQL: milliseconds since the Unix epoch, the
/// unit the services store times in. Leases compare times that instances
/// with their own clocks set; the database is the one clock they share
/// (PostgreSQL's `clock_timestamp()`, the server's time at the moment of
/// the statement; SQLite runs in the process, whose clock it reads, and a
/// file of SQLite belongs to one process anyway).
pub fn now_ms_sql(pool: &AnyPool) -> &'static str {
    if is_sqlite_pool(pool) {
        "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)"
    } else {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    }
}

/// Whether `pool` is SQLite's (else PostgreSQL's): for the few statements
/// whose SQL differs between them.
pub fn is_sqlite_pool(pool: &AnyPool) -> bool {
    is_sqlite(pool.connect_options().database_url.as_str())
}

/// Whether `url` names an SQLite database.
fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Connects to `url` and applies `schema` (idempotent `CREATE … IF NOT
/// EXISTS` statements). For SQLite the file and its directory are created,
/// the database runs in WAL mode with `synchronous = FULL` (see
/// [`SQLITE_SYNCHRONOUS`]), and the pool holds a single connection:
/// SQLite has one writer at a time, and writers of one process queueing for
/// one connection proved much faster than several connections taking turns
/// through SQLite's sleeping busy handler.
pub async fn connect(url: &str, schema: &str) -> anyhow::Result<AnyPool> {
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
                    conn.execute(SQLITE_SYNCHRONOUS).await?;
                    conn.execute(SQLITE_SECURE_DELETE).await?;
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

/// How to write the parameters of a statement whose only parameters are
/// the generated lists of a batch ([`ListParams::values`],
/// [`ListParams::among`]), on the backend of its pool.
///
/// SQLite finds a numbered parameter (`$7`) by a linear scan of the
/// statement's names, which sqlx does for each parameter it binds: N
/// numbered parameters cost O(N²), and a batch's multi-row statement spent
/// a tenth of notification-service's CPU there (`BENCHMARKS.md`).
/// Anonymous `?` parameters cost nothing to find, but PostgreSQL takes
/// numbered ones only, and sqlx binds a statement that mixes the two
/// wrongly on SQLite: hence a statement of lists alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListParams {
    /// `$1`, `$2`, ...: PostgreSQL's.
    Numbered,
    /// `?`, bound in order: SQLite's cheapest.
    Anonymous,
}

impl ListParams {
    /// The style for `pool`'s backend.
    pub fn of(pool: &AnyPool) -> Self {
        if is_sqlite_pool(pool) {
            Self::Anonymous
        } else {
            Self::Numbered
        }
    }

    /// A multi-row `VALUES` list of `rows` tuples of `columns` parameters
    /// each, the statement's only parameters: [`values_list`], or
    /// `(?, ?), (?, ?)`.
    pub fn values(self, rows: usize, columns: usize) -> String {
        match self {
            Self::Numbered => values_list(rows, columns),
            Self::Anonymous => {
                let row = format!("({})", vec!["?"; columns].join(", "));
                vec![row; rows].join(", ")
            }
        }
    }

    /// An `IN (...)` list of `count` parameters, the statement's only
    /// ones: [`in_list`] from `$1`, or `(?, ?, ?)`.
    pub fn among(self, count: usize) -> String {
        match self {
            Self::Numbered => in_list(count, 1),
            Self::Anonymous => format!("({})", vec!["?"; count].join(", ")),
        }
    }
}

/// Placeholders for a multi-row `VALUES` list: `rows` tuples of `columns`
/// parameters each, numbered from `$1`: `($1, $2), ($3, $4)`. One statement
/// per batch instead of one per row: each statement is a round trip to the
/// database (for SQLite, to its worker thread). A statement with no other
/// parameters is cheaper with [`ListParams::values`].
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

/// The rows of `select` (a query ending in `<column> IN`, to which the list
/// is appended) for each of `keys`, in one statement: what a batch asks of
/// a table in one round trip rather than one per key. No keys, no query.
pub async fn rows_among(
    pool: &AnyPool,
    select: &str,
    keys: &[String],
) -> anyhow::Result<Vec<sqlx::any::AnyRow>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{select} {}", ListParams::of(pool).among(keys.len()));
    let mut query = sqlx::query(&sql);
    for key in keys {
        query = query.bind(key);
    }
    Ok(query.fetch_all(pool).await?)
}

/// Placeholders for an `IN (...)` list of `count` parameters numbered from
/// `$first` (in a statement of this list alone, [`ListParams::among`] is
/// cheaper).
pub fn in_list(count: usize, first: usize) -> String {
    let params: Vec<String> = (first..first + count).map(|n| format!("${n}")).collect();
    format!("({})", params.join(", "))
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    #[test]
    fn a_schema_is_its_statements_without_the_comments_between_them() {
        let schema = "-- The table; its rows.\nCREATE TABLE t (\n    -- its key\n    n BIGINT\n);\n\n\
                      CREATE INDEX i ON t (n);\n-- a note at the end\n";
        assert_eq!(
            statements(schema),
            ["CREATE TABLE t (\n    n BIGINT\n)", "CREATE INDEX i ON t (n)"]
        );
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(values_list(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(in_list(3, 2), "($2, $3, $4)");
        assert_eq!(ListParams::Numbered.values(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(ListParams::Numbered.among(2), "($1, $2)");
        assert_eq!(ListParams::Anonymous.values(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(ListParams::Anonymous.among(3), "(?, ?, ?)");
    }

    /// On SQLite, the anonymous lists bind in order: every row written as
    /// given, and read back by a list of the same style.
    #[tokio::test]
    async fn sqlite_lists_are_anonymous_and_bind_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/lists.db", dir.path().display());
        let pool = connect(&url, "CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT)")
            .await
            .unwrap();
        let params = ListParams::of(&pool);
        assert_eq!(params, ListParams::Anonymous);
        let rows = 300;
        let sql = format!("INSERT INTO t (k, n) VALUES {}", params.values(rows, 2));
        let mut insert = sqlx::query(&sql);
        for n in 0..rows {
            insert = insert.bind(format!("k{n}")).bind(i64::try_from(n).unwrap() * 10);
        }
        insert.execute(&pool).await.unwrap();
        let keys: Vec<String> = ["k7", "k299", "absent"].map(String::from).to_vec();
        let found = rows_among(&pool, "SELECT k, n FROM t WHERE k IN", &keys)
            .await
            .unwrap();
        let mut found: Vec<(String, i64)> = found.iter().map(|row| (row.get(0), row.get(1))).collect();
        found.sort();
        assert_eq!(found, [("k299".to_string(), 2990), ("k7".to_string(), 70)]);
    }

    /// Every connection of an SQLite pool syncs its log at each commit
    /// (`FULL`, 2), in WAL mode: an acknowledged effect survives a power
    /// failure.
    #[tokio::test]
    async fn sqlite_syncs_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/synced.db", dir.path().display());
        let pool = connect(&url, "").await.unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(synchronous, 2, "synchronous = FULL");
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
    }

    /// The database's clock, on SQLite, is milliseconds since the epoch.
    #[tokio::test]
    async fn the_database_clock_is_in_milliseconds() {
        let pool = connect("sqlite::memory:", "").await.unwrap();
        let now: i64 = sqlx::query_scalar(&format!("SELECT {}", now_ms_sql(&pool)))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!((now - crate::now_ms()).abs() < 1_000, "{now}");
    }
}
