//! Seeding: the fake users user-service creates at start, so that a fresh
//! stack has an audience to send a campaign to.
//!
//! User `i` is the same on every machine (its fake name is drawn from a
//! generator seeded with `i`), and seeding only adds the ids above the
//! highest one present, so a restart never duplicates a user. The load is
//! one transaction: an interrupted one leaves no user behind, and the next
//! start seeds them all.
//!
//! A million users is a bulk load, and is done as one. `bench/seed.sh` on 2
//! busy cores: 67 s (29 s of CPU) before, 5 s (5 s of CPU) now, against 4 s
//! for the sqlite3 CLI copying the same rows from one file to another.
//! What the time went to, and what changed:
//! - **Binding numbered parameters** (a quarter of the CPU time): see
//!   [`insert_sql`]; SQLite's parameters are now anonymous.
//! - **Pages through the operating system** (about 40%, in the kernel):
//!   addresses begin with a name, so the email index is filled in random
//!   order, and with SQLite's 2 MB cache nearly every insert read a page of
//!   it from the file and wrote one back. Now a connection of its own with a
//!   cache of [`SEED_CACHE_KIB`], closed after the load.
//! - **A statement journal** per multi-row insert: see [`insert_sql`];
//!   inserts are now `OR IGNORE`, checked by the number of rows they wrote.
//! - What is left is SQLite's own B-tree work (three quarters of the time:
//!   the table, its id index and its email index, whose random order costs
//!   more than the other two together); making the fake users is under a
//!   tenth, on another thread while the previous batch is inserted.
//!
//! Each user also gets a fake profile ([`fake_profile`]: country, locale,
//! plan, sign-up time, tags), so that an audience filter has something to
//! select. Four more columns and a tag row for about half the users cost
//! 100,000 users on SQLite 1.76 s of CPU before, 2.15 s after (a debug
//! build, on 2 cores busy with another build; PostgreSQL's wall time moved
//! within its noise, 2.3 to 2.8 s before, 1.7 to 2.4 s after).

use fake::faker::name::en::{FirstName, LastName};
use fake::Fake;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use servicekit::db::ListParams;
use sqlx::{AnyConnection, AnyPool, Connection, Row};
use tokio::sync::mpsc;

use crate::profile::Profile;
use crate::store::User;

/// Users per multi-row `INSERT` ([`COLUMNS`] parameters each: far below
/// SQLite's limit of 32,766 parameters per statement and PostgreSQL's
/// 65,535). Tags go in statements of their own, of up to this many rows.
const ROWS_PER_INSERT: usize = 500;

/// The columns seeding fills (`attributes` stays empty: free-form is for
/// real users).
const COLUMNS: usize = 7;

/// Users made in one go by the generating thread.
const USERS_PER_BATCH: i64 = 10_000;

/// Batches made ahead of the inserts: enough to keep the database busy,
/// few enough to bound memory.
const BATCHES_AHEAD: usize = 4;

/// Seeds users `1..=count` that do not exist yet. Returns how many were
/// inserted.
pub async fn seed(db: &AnyPool, count: i64) -> anyhow::Result<i64> {
    let existing: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM users")
        .fetch_one(db)
        .await?
        .try_get(0)?;
    if existing >= count {
        return Ok(0);
    }
    // A connection of its own, closed after the load: its large cache goes
    // with it (the memory goes back to the system), and the pool opens a
    // fresh one. (An in-memory SQLite database would go with it too; the
    // pool, which closes idle connections, cannot keep one either.)
    let mut conn = db.acquire().await?.detach();
    let sqlite = conn.backend_name() == "SQLite";
    if sqlite {
        sqlx::query(&format!("PRAGMA cache_size = -{SEED_CACHE_KIB}"))
            .execute(&mut conn)
            .await?;
    }
    insert_users(&mut conn, existing + 1, count, sqlite).await?;
    conn.close().await?;
    Ok(count - existing)
}

/// SQLite's page cache while seeding, in KiB: most of the email index of a
/// million users (about 45 MB), filled in random order, while the service
/// stays within 64 MB of memory (59 MB at its peak with a million users).
/// Seeding a million users took 4.5 s of CPU with 256 MB, 5.1 to 5.4 s
/// with 64 MB (98 MB at the peak), 6.7 s with 32 MB, and 10.4 s with
/// SQLite's default 2 MB.
const SEED_CACHE_KIB: i64 = 32 * 1024;

/// Inserts users `first..=last` in one transaction, while another thread
/// makes them.
async fn insert_users(conn: &mut AnyConnection, first: i64, last: i64, sqlite: bool) -> anyhow::Result<()> {
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
    let mut tags: Vec<(i64, String)> = Vec::new();
    let mut tx = conn.begin().await?;
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
                let profile = user.profile;
                for tag in profile.tags {
                    tags.push((user.id, tag));
                }
                query = query
                    .bind(user.id)
                    .bind(user.name)
                    .bind(user.email)
                    .bind(profile.country)
                    .bind(profile.locale)
                    .bind(profile.plan)
                    .bind(profile.signed_up_at);
            }
            let inserted = query.execute(&mut *tx).await?.rows_affected();
            anyhow::ensure!(
                inserted == rows as u64,
                "seeding inserted {inserted} of {rows} users: some id or address exists already"
            );
            while tags.len() >= ROWS_PER_INSERT || (users.is_empty() && !tags.is_empty()) {
                let rows = tags.len().min(ROWS_PER_INSERT);
                let sql = tags_sql(rows, sqlite);
                let mut query = sqlx::query(&sql);
                for (user_id, tag) in tags.drain(..rows) {
                    query = query.bind(user_id).bind(tag);
                }
                query.execute(&mut *tx).await?;
            }
        }
    }
    tx.commit().await?;
    maker.await?;
    Ok(())
}

/// A multi-row `INSERT` of `rows` users.
///
/// On SQLite, `INSERT OR IGNORE` with anonymous parameters (`?`); a
/// conflict skips its row, and the caller, seeing fewer rows written than
/// sent, fails:
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
///
/// On PostgreSQL, a plain `INSERT` (a conflict fails it): `ON CONFLICT DO
/// NOTHING` would check the indexes before each row as well as after.
fn insert_sql(rows: usize, sqlite: bool) -> String {
    const INTO: &str = "INTO users (id, name, email, country, locale, plan, signed_up_at)";
    let values = list_params(sqlite).values(rows, COLUMNS);
    if sqlite {
        format!("INSERT OR IGNORE {INTO} VALUES {values}")
    } else {
        format!("INSERT {INTO} VALUES {values}")
    }
}

/// A multi-row `INSERT` of `rows` tags, as [`insert_sql`] (the users
/// are new, so are their tags).
fn tags_sql(rows: usize, sqlite: bool) -> String {
    let values = list_params(sqlite).values(rows, 2);
    format!("INSERT INTO user_tags (user_id, tag) VALUES {values}")
}

/// Anonymous parameters on SQLite, numbered on PostgreSQL.
fn list_params(sqlite: bool) -> ListParams {
    if sqlite {
        ListParams::Anonymous
    } else {
        ListParams::Numbered
    }
}

/// Countries of the fake users and their weights (of 100), with the
/// locale each speaks: a skewed audience, as real ones are.
const COUNTRIES: [(&str, &str, u32); 12] = [
    ("US", "en-US", 30),
    ("DE", "de-DE", 15),
    ("GB", "en-GB", 10),
    ("FR", "fr-FR", 8),
    ("IN", "en-IN", 7),
    ("BR", "pt-BR", 6),
    ("CA", "en-CA", 5),
    ("NL", "nl-NL", 4),
    ("ES", "es-ES", 4),
    ("IT", "it-IT", 4),
    ("JP", "ja-JP", 4),
    ("AU", "en-AU", 3),
];

/// The fake users' sign-ups fall between these two times (ms since the
/// epoch: 2021-01-01 and 2026-01-01), fixed so that user `i` is the same
/// whenever it is made.
const SIGN_UPS: (i64, i64) = (1_609_459_200_000, 1_767_225_600_000);

/// The fake profile drawn from `rng`: a weighted country and its locale,
/// plan free (70%), pro (22%) or team (8%), a sign-up time, and tags beta
/// (10%), newsletter (40%), vip (3%).
fn fake_profile(rng: &mut StdRng) -> Profile {
    let mut pick = rng.random_range(0..100);
    let (country, locale, _) = COUNTRIES
        .iter()
        .find(|(_, _, weight)| {
            let here = pick < *weight;
            pick = pick.saturating_sub(*weight);
            here
        })
        .copied()
        .unwrap_or(COUNTRIES[0]);
    let plan = match rng.random_range(0..100) {
        0..70 => "free",
        70..92 => "pro",
        _ => "team",
    };
    let signed_up_at = rng.random_range(SIGN_UPS.0..SIGN_UPS.1);
    let mut tags = Vec::new();
    for (tag, percent) in [("beta", 10), ("newsletter", 40), ("vip", 3)] {
        if rng.random_range(0..100) < percent {
            tags.push(tag.to_string());
        }
    }
    Profile {
        country: Some(country.to_string()),
        locale: Some(locale.to_string()),
        plan: Some(plan.to_string()),
        signed_up_at: Some(signed_up_at),
        tags,
        attributes: None,
    }
}

/// The fake user with id `id`: deterministic, with a unique address.
pub fn fake_user(id: i64) -> User {
    let mut rng = StdRng::seed_from_u64(id as u64);
    let first: String = FirstName().fake_with_rng(&mut rng);
    let last: String = LastName().fake_with_rng(&mut rng);
    let local = |part: &str| -> String {
        part.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase()
    };
    User {
        id,
        email: format!("{}.{}.{id}@example.com", local(&first), local(&last)),
        name: format!("{first} {last}"),
        profile: fake_profile(&mut rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{UserStore, SCHEMA};

    #[tokio::test]
    async fn seeding_adds_the_same_users_once() {
        let path = std::env::temp_dir().join(format!(
            "comms-seed-{}-{}.db",
            std::process::id(),
            servicekit::now_ms()
        ));
        let db = servicekit::db::connect(&format!("sqlite://{}", path.display()), SCHEMA)
            .await
            .unwrap();
        let store = UserStore::new(db.clone());
        // More than a batch, ending in a partial insert.
        assert_eq!(seed(&db, 12_345).await.unwrap(), 12_345);
        assert_eq!(seed(&db, 12_345).await.unwrap(), 0);
        assert_eq!(seed(&db, 100).await.unwrap(), 0);
        assert_eq!(seed(&db, 12_400).await.unwrap(), 55);
        assert_eq!(store.count_up_to(i64::MAX).await.unwrap(), 12_400);
        for id in [1, 500, 501, 10_000, 10_001, 12_345, 12_346, 12_400] {
            assert_eq!(store.get(id).await.unwrap(), Some(fake_user(id)));
        }
        db.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn fake_users_are_deterministic_with_unique_plain_addresses() {
        assert_eq!(fake_user(42), fake_user(42));
        let user = fake_user(7);
        assert!(user.email.ends_with(".7@example.com"), "{}", user.email);
        assert!(user.email.is_ascii() && !user.email.contains(' '));
        assert!(user.name.contains(' '));
        assert!(crate::profile::checked_country(user.profile.country.as_deref().unwrap()).is_ok());
        let users: Vec<User> = (1..=10_000).map(fake_user).collect();
        let share = |test: &dyn Fn(&User) -> bool| users.iter().filter(|u| test(u)).count() as f64 / 100.0;
        let germans = share(&|u| u.profile.country.as_deref() == Some("DE"));
        let pros = share(&|u| u.profile.plan.as_deref() == Some("pro"));
        let betas = share(&|u| u.profile.tags.iter().any(|t| t == "beta"));
        assert!((12.0..18.0).contains(&germans), "{germans}% in DE");
        assert!((19.0..25.0).contains(&pros), "{pros}% pro");
        assert!((8.0..12.0).contains(&betas), "{betas}% beta");
    }
}
