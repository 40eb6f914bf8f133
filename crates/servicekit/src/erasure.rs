//! Erasing personal data from a service's database so that it is gone,
//! not merely unreachable. SQLite would leave the bytes of a deleted or
//! shortened row in the file's free space, and the old pages in its
//! write-ahead log, until they happen to be reused: every connection
//! overwrites what it frees ([`crate::db::SQLITE_SECURE_DELETE`]), and an
//! erasure ends with a checkpoint that truncates the log. (PostgreSQL
//! keeps old row versions until `VACUUM`, which its operators run: see
//! docs/consent.md.)

use contracts::consent::UserErased;
use eventstore::{Delivery, HandleError, Handler};
use sqlx::{Any, AnyPool, Transaction};

/// Whether `pool` is SQLite's.
fn is_sqlite(pool: &AnyPool) -> bool {
    pool.connect_options().database_url.scheme() == "sqlite"
}

/// Commits `tx` and, on SQLite, moves the log into the file and truncates
/// it, so the rows' old versions leave the log too. A checkpoint that a
/// reader holds back is logged, not an error: the log is overwritten as it
/// is reused, and the next checkpoint truncates it.
pub async fn commit(pool: &AnyPool, tx: Transaction<'static, Any>) -> anyhow::Result<()> {
    tx.commit().await?;
    if is_sqlite(pool) {
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await {
            tracing::warn!(%error, "the checkpoint after an erasure did not run; the next one truncates the log");
        }
    }
    Ok(())
}

/// Ids per statement of [`update_each`].
const CHUNK: usize = 500;

/// Runs `statement` (an `UPDATE … WHERE <column>` to which ` IN (…)` is
/// appended) for every id of `ids`, a chunk at a time, in one erasure
/// transaction ([`commit`]).
pub async fn update_each(pool: &AnyPool, statement: &str, ids: &[String]) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    for chunk in ids.chunks(CHUNK) {
        let sql = format!("{statement} IN {}", crate::db::in_list(chunk.len(), 1));
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        query.execute(&mut *tx).await?;
    }
    commit(pool, tx).await
}

/// The handler of `comms:erasures` (`user.erased`) for a service that
/// keeps personal data under notification ids: it runs each of its
/// `statements` ([`update_each`]) for the erased user's notifications. The rows stay,
/// blanked, so that the counts made of them stay exact.
#[derive(Clone)]
pub struct Eraser {
    pool: AnyPool,
    statements: &'static [&'static str],
}

impl Eraser {
    /// Erases with `statements` (each an `UPDATE … SET <personal
    /// columns> = NULL … WHERE <notification id column>`) on `pool`.
    pub fn new(pool: AnyPool, statements: &'static [&'static str]) -> Self {
        Self { pool, statements }
    }

    /// Handles one entry of `comms:erasures`.
    pub async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        let erased: UserErased = delivery.envelope.decode()?;
        self.erase(&erased.notification_ids).await?;
        Ok(())
    }

    /// Runs each statement for `ids`.
    pub async fn erase(&self, ids: &[String]) -> anyhow::Result<()> {
        for statement in self.statements {
            update_each(&self.pool, statement, ids).await?;
        }
        Ok(())
    }
}

/// An [`Eraser`] handles each entry of a read on its own.
impl Handler for Eraser {
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl std::future::Future<Output = Vec<Result<(), HandleError>>> + Send {
        futures::future::join_all(deliveries.into_iter().map(|delivery| self.handle(delivery)))
    }
}
