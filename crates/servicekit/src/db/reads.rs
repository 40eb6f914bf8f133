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
//! its own) run [`READ_NICENESS`] below the rest of the process, so that a
//! read's SQL gets the CPU the handlers leave.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// How much lower than the rest of the process the read connections'
/// threads run (a niceness added to the process's: 10 gives them about a
/// tenth of a core's share against a busy thread of the process).
pub const READ_NICENESS: i32 = 10;

/// The pool an HTTP route reads through, beside the writer pool `writes`
/// (from [`super::connect`]), so that a stream handler never waits behind
/// a reader for the writer's one connection.
///
/// On an SQLite file: `size` read-only connections of their own
/// (`mode=ro`: a write through them fails rather than take the writer's
/// place), opened at once on threads of lower priority
/// ([`READ_NICENESS`]) and kept (no idle timeout, no lifetime), so that a
/// read never waits for one to open. On PostgreSQL, or an SQLite database
/// in memory (which belongs to its one connection), `writes` itself:
/// PostgreSQL's pool has connections enough, and the bound on reads in
/// flight ([`crate::http::capacity::Capacity::max_reads`]) keeps readers
/// from taking all of them.
pub async fn connect_reads(writes: &AnyPool, size: u32) -> anyhow::Result<AnyPool> {
    let url = writes.connect_options().database_url.clone();
    if !super::is_sqlite(url.as_str()) || url.as_str().contains(":memory:") || size == 0 {
        return Ok(writes.clone());
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
/// [`READ_NICENESS`] lower: a thread inherits its creator's niceness, so
/// each connection's thread runs as low. The connections go back to the
/// pool idle before it returns.
async fn open_at_low_priority(reads: AnyPool, size: u32) -> anyhow::Result<()> {
    let (opened, outcome) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("db-reads-open".into())
        .spawn(move || {
            lower_this_threads_priority();
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

/// Lowers the calling thread's priority by [`READ_NICENESS`]. On Linux
/// the niceness is a thread's own (`nice` changes the calling thread
/// only), and lowering it needs no privilege; should it fail, the reads
/// run at the usual priority, which is correct, only less kind to the
/// pipeline.
fn lower_this_threads_priority() {
    // SAFETY: `nice` takes an integer and changes only the calling
    // thread's scheduling priority; no memory is involved.
    let niceness = unsafe { libc::nice(READ_NICENESS) };
    if niceness == -1 {
        tracing::warn!("the database reads' threads run at the usual priority");
    }
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

    /// The read connections' threads run [`READ_NICENESS`] below the
    /// process (Linux: each thread's niceness is in its `stat`).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_read_connections_threads_run_at_a_lower_priority() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nice.db", dir.path().display());
        let writes = super::super::connect(&url, "").await.unwrap();
        let _reads = connect_reads(&writes, 3).await.unwrap();
        let niceness = |stat: &str| -> i32 {
            let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
            fields[16].parse().unwrap()
        };
        let own = niceness(&std::fs::read_to_string("/proc/thread-self/stat").unwrap());
        let (mut lowered, mut usual) = (0, 0);
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
                continue;
            };
            if stat.contains("(sqlx-sqlite-wor") {
                if niceness(&stat) == own + READ_NICENESS {
                    lowered += 1;
                } else if niceness(&stat) == own {
                    usual += 1;
                }
            }
        }
        // Other tests of this process may hold connections of their own.
        assert!(lowered >= 3, "the three read connections' threads run lower");
        assert!(usual >= 1, "the writer's runs as the process does");
    }
}
