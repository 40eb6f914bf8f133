//! Seeding: the fake users user-service creates at start, so that a fresh
//! stack has an audience to send a campaign to.
//!
//! User `i` is the same on every machine (its fake name is drawn from a
//! generator seeded with `i`), and seeding only adds the ids above the
//! highest one present, so a restart never duplicates a user and an
//! interrupted seeding resumes where its last commit left it.
//!
//! Seeding a million users is a bulk load, and is done as one
//! (`bench/seed.sh`, 2 cores):
//! - **One transaction** for the whole load: every commit of a smaller one
//!   rewrote, in SQLite's write-ahead log, the pages of the email index it
//!   touched, and addresses begin with a name, so every batch touches pages
//!   all over that index.
//! - **A large page cache while it runs** (SQLite): with the default 2 MB,
//!   each insert into the email index, in random order, read and wrote pages
//!   through the operating system; with the whole index in memory it costs a
//!   search in memory. The cache is set back when seeding ends.
//! - **Users are made on another thread** while the previous batch is
//!   inserted, through a bounded channel of a few batches.
//! - **Multi-row inserts of one prepared statement**: one statement of
//!   [`ROWS_PER_INSERT`] rows, prepared once and run again for every full
//!   chunk, so each round trip to the database carries many rows.

use fake::faker::name::en::{FirstName, LastName};
use fake::Fake;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Row};
use tokio::sync::mpsc;

use crate::store::User;

/// Users per multi-row `INSERT` (3 parameters each: far below SQLite's
/// limit of 32,766 parameters per statement and PostgreSQL's 65,535).
const ROWS_PER_INSERT: usize = 500;

/// Users made in one go by the generating thread.
const USERS_PER_BATCH: i64 = 10_000;

/// Batches made ahead of the inserts: enough to keep the database busy,
/// few enough to bound memory.
const BATCHES_AHEAD: usize = 4;

/// Seeds users `1..=count` that do not exist yet. Returns how many were
/// inserted.
pub async fn seed(db: &AnyPool, count: i64) -> anyhow::Result<i64> {
    let mut conn = db.acquire().await?;
    let existing: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM users")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    if existing >= count {
        return Ok(0);
    }
    let sqlite = conn.backend_name() == "SQLite";
    let restore = if sqlite {
        set_pragmas(&mut conn, &BULK_LOAD_PRAGMAS).await?
    } else {
        Vec::new()
    };
    let inserted = insert_users(&mut conn, existing + 1, count, sqlite).await;
    set_pragmas(&mut conn, &restore).await?;
    inserted?;
    Ok(count - existing)
}

/// SQLite's settings for the time of a bulk load, as `(pragma, value)`.
const BULK_LOAD_PRAGMAS: [(&str, i64); 2] = [
    // A page cache that holds the tables and indexes of a million users
    // (about 115 MB on disk, the email index about 45 MB of it), in KiB
    // (a negative size is in KiB).
    ("cache_size", -256 * 1024),
    // The statement journal of each multi-row insert (pages it changed that
    // an earlier insert of the transaction had changed too) in memory, not
    // in a temporary file.
    ("temp_store", 2),
];

/// Sets each pragma of `pragmas` on `conn`; returns the values they had.
async fn set_pragmas(
    conn: &mut PoolConnection<Any>,
    pragmas: &[(&'static str, i64)],
) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut previous = Vec::with_capacity(pragmas.len());
    for &(pragma, value) in pragmas {
        let old: i64 = sqlx::query(&format!("PRAGMA {pragma}"))
            .fetch_one(&mut **conn)
            .await?
            .try_get(0)?;
        sqlx::query(&format!("PRAGMA {pragma} = {value}"))
            .execute(&mut **conn)
            .await?;
        previous.push((pragma, old));
    }
    Ok(previous)
}

/// Inserts users `first..=last` in one transaction, while another thread
/// makes them.
async fn insert_users(
    conn: &mut PoolConnection<Any>,
    first: i64,
    last: i64,
    sqlite: bool,
) -> anyhow::Result<()> {
    let (sender, mut batches) = mpsc::channel::<Vec<User>>(BATCHES_AHEAD);
    let maker = tokio::task::spawn_blocking(move || {
        let mut next = first;
        while next <= last {
            let end = (next + USERS_PER_BATCH - 1).min(last);
            if sender
                .blocking_send((next..=end).map(fake_user).collect())
                .is_err()
            {
                return; // the inserts failed; they report why
            }
            next = end + 1;
        }
    });
    let full_chunk = insert_sql(ROWS_PER_INSERT, sqlite);
    let mut tx = sqlx::Connection::begin(&mut **conn).await?;
    while let Some(mut users) = batches.recv().await {
        while !users.is_empty() {
            let rows = users.len().min(ROWS_PER_INSERT);
            let partial;
            let sql = if rows == ROWS_PER_INSERT {
                &full_chunk
            } else {
                partial = insert_sql(rows, sqlite);
                &partial
            };
            let mut query = sqlx::query(sql);
            for user in users.drain(..rows) {
                query = query.bind(user.id).bind(user.name).bind(user.email);
            }
            let inserted = query.execute(&mut *tx).await?.rows_affected();
            anyhow::ensure!(
                inserted == rows as u64,
                "seeding inserted {inserted} of {rows} users: some id or address exists already"
            );
        }
    }
    tx.commit().await?;
    maker.await?;
    Ok(())
}

/// A multi-row `INSERT` of `rows` users; a conflict skips the row (and
/// the caller, seeing fewer rows inserted than sent, fails).
///
/// On SQLite, `INSERT OR IGNORE` with anonymous parameters (`?`):
/// - a statement that may fail after writing some of its rows (`ABORT`, the
///   default, on a constraint) first copies every page it changes into a
///   statement journal, to undo its part alone; a multi-row insert into an
///   index in random order changes pages that earlier statements of the
///   transaction changed, so nearly each page was copied again, for each
///   statement. `OR IGNORE` never fails halfway, so no journal is kept.
/// - for each numbered parameter (`$n`), binding looks its name up in a list
///   of all of them, a cost that grows with the square of the parameters of
///   a statement; with 1,500 per statement, that lookup was a quarter of
///   seeding's time.
fn insert_sql(rows: usize, sqlite: bool) -> String {
    if sqlite {
        let values = vec!["(?, ?, ?)"; rows].join(", ");
        format!("INSERT OR IGNORE INTO users (id, name, email) VALUES {values}")
    } else {
        let values = servicekit::db::values_list(rows, 3);
        format!("INSERT INTO users (id, name, email) VALUES {values} ON CONFLICT DO NOTHING")
    }
}

/// The fake user with id `id`: deterministic, with a unique address.
pub fn fake_user(id: i64) -> User {
    let mut rng = StdRng::seed_from_u64(id as u64);
    let first: String = FirstName().fake_with_rng(&mut rng);
    let last: String = LastName().fake_with_rng(&mut rng);
    let local = |part: &str| -> String {
        part.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase()
    };
    User {
        id,
        email: format!("{}.{}.{id}@example.com", local(&first), local(&last)),
        name: format!("{first} {last}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_users_are_deterministic_with_unique_plain_addresses() {
        assert_eq!(fake_user(42), fake_user(42));
        let user = fake_user(7);
        assert!(user.email.ends_with(".7@example.com"), "{}", user.email);
        assert!(user.email.is_ascii() && !user.email.contains(' '));
        assert!(user.name.contains(' '));
    }
}
