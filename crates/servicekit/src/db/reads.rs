//! The pool a service's HTTP routes read through, beside the writer pool
//! its stream handlers use.
//!
//! On SQLite the writer is one connection (see [`super::connect`]); a
//! route reading through it would queue ahead of a handler, and a handler
//! held up holds the whole pipeline back through flow control. In WAL mode
//! readers on connections of their own go on beside the writer, each
//! reading the last commit as of its start.
//!
//! The pipeline's work should also win the cores over readers: the read
//! connections' threads (sqlx runs each SQLite connection on a thread of
//! its own) run in the idle scheduling class ([`crate::priority`]), so
//! that a read's SQL gets only the CPU the handlers leave.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// The pool an HTTP route reads through, beside the writer pool `writes`
/// (from [`super::connect`]), so that a stream handler never waits behind
/// a reader for the writer's one connection.
///
/// On an SQLite file: `size` read-only connections of their own
/// (`mode=ro`: a write through them fails rather than take the writer's
/// place), opened at once on threads of the idle priority
/// ([`crate::priority`]) and kept (no idle timeout, no lifetime), so that a
/// read never waits for one to open. On PostgreSQL: a pool of `size`
/// connections of their own, opened when first needed, so that a
/// connection opened by a route read at the idle priority (whose socket
/// that route's thread then drives) is never one the stream handlers use.
/// An SQLite database in memory (which belongs to its one connection) is
/// read through `writes` itself.
pub async fn connect_reads(writes: &AnyPool, size: u32) -> anyhow::Result<AnyPool> {
    let url = writes.connect_options().database_url.clone();
    if size == 0 || url.as_str().contains(":memory:") {
        return Ok(writes.clone());
    }
    if !super::is_sqlite(url.as_str()) {
        return Ok(AnyPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with((*writes.connect_options()).clone()));
    }
    let mut read_only = url.clone();
    let query: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != "mode")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    read_only
        .query_pairs_mut()
        .clear()
        .extend_pairs(query)
        .append_pair("mode", "ro");
    let options: AnyConnectOptions = read_only
        .as_str()
        .parse()
        .map_err(|error| anyhow::anyhow!("invalid database URL: {error}"))?;
    let reads = AnyPoolOptions::new()
        .max_connections(size)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                Ok(())
            })
        })
        .connect_lazy_with(options);
    open_at_low_priority(reads.clone(), size)
        .await
        .map_err(|error| anyhow::anyhow!("cannot open the database for reads: {error:#}"))?;
    Ok(reads)
}

/// Opens the `size` connections of `reads` from a thread of its own run
/// in the idle scheduling class: a thread inherits its creator's policy,
/// so each connection's thread runs as low. The connections go back to the
/// pool idle before it returns.
async fn open_at_low_priority(reads: AnyPool, size: u32) -> anyhow::Result<()> {
    let (opened, outcome) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("db-reads-open".into())
        .spawn(move || {
            crate::priority::lower_this_thread_to_idle();
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(open_all(&reads, size)));
            let _ = opened.send(result);
        })?;
    outcome.await?
}

/// Opens `size` connections of `reads` at once and waits for them to be
/// back in the pool (their return is a task of this thread's runtime).
async fn open_all(reads: &AnyPool, size: u32) -> anyhow::Result<()> {
    let mut held = Vec::new();
    for _ in 0..size {
        held.push(reads.acquire().await?);
    }
    drop(held);
    tokio::time::timeout(Duration::from_secs(10), async {
        while reads.num_idle() < size as usize {
            tokio::task::yield_now().await;
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("the read connections did not come back to their pool"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The read pool of an SQLite file reads what the writer committed,
    /// while the writer holds a transaction open, and cannot write.
    #[tokio::test]
    async fn sqlite_reads_go_on_beside_the_writer_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/reads.db", dir.path().display());
        let writes = super::super::connect(&url, "CREATE TABLE IF NOT EXISTS t (n BIGINT)")
            .await
            .unwrap();
        let reads = connect_reads(&writes, 2).await.unwrap();
        assert_eq!(reads.size(), 2, "opened at once");
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&writes)
            .await
            .unwrap();
        let mut open = writes.begin().await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (2)")
            .execute(&mut *open)
            .await
            .unwrap();
        let count = || async {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
                .fetch_one(&reads)
                .await
                .unwrap();
            count
        };
        assert_eq!(count().await, 1, "the last commit, not the open transaction");
        open.commit().await.unwrap();
        assert_eq!(count().await, 2);
        let write = sqlx::query("INSERT INTO t (n) VALUES (3)").execute(&reads).await;
        assert!(write.is_err(), "a write through the read pool fails");
    }

    /// The read connections' threads run in the idle scheduling class
    /// (Linux: each thread's policy is in its `stat`).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_read_connections_threads_run_at_the_idle_priority() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/idle.db", dir.path().display());
        let writes = super::super::connect(&url, "").await.unwrap();
        let _reads = connect_reads(&writes, 3).await.unwrap();
        let (mut idle, mut usual) = (0, 0);
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
                continue;
            };
            if stat.contains("(sqlx-sqlite-wor") {
                if crate::priority::is_idle(&stat) {
                    idle += 1;
                } else {
                    usual += 1;
                }
            }
        }
        // Other tests of this process may hold connections of their own.
        assert!(idle >= 3, "the three read connections' threads run idle");
        assert!(usual >= 1, "the writer's runs as the process does");
    }
}
