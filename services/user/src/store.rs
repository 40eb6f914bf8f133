//! The users table and the expansion cursors, owned by user-service alone.
//! Seeding fills the table from [`crate::seed`], which builds on this
//! module's [`User`]; nothing here calls back into it.
//!
//! The audience of a campaign is a filter ([`contracts::audience`]):
//! [`UserStore::page_matching`] and [`UserStore::count_matching`] run one
//! as SQL, its literals bound, never spliced in.

use std::collections::HashMap;

use contracts::audience::{Dialect, Filter, Param};
use serde::Serialize;
use servicekit::now_ms;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Row};

use crate::profile::Profile;

/// The schema, created at start if missing.
pub const SCHEMA: &str = include_str!("schema.sql");

/// The columns of `users` added after the table was first made, with
/// their types: [`migrate`] adds those a database made before them lacks.
const ADDED_COLUMNS: [(&str, &str); 5] = [
    ("country", "TEXT"),
    ("locale", "TEXT"),
    ("plan", "TEXT"),
    ("signed_up_at", "BIGINT"),
    ("attributes", "TEXT"),
];

/// The lock that serialises [`migrate`] on PostgreSQL across instances
/// starting together ([`servicekit::db::serialise`]): "usrmig" in ASCII.
const MIGRATE_LOCK: i64 = 0x7573_726d_6967;

/// Brings a `users` table made before the profile's columns up to the
/// schema: [`SCHEMA`] only creates what is missing, and a `CREATE TABLE IF
/// NOT EXISTS` leaves an existing table as it was. Idempotent; on
/// PostgreSQL `ADD COLUMN IF NOT EXISTS` under a lock, on SQLite (which has
/// no `IF NOT EXISTS` there) only the columns `pragma_table_info` lacks.
pub async fn migrate(db: &AnyPool) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    servicekit::db::serialise(&mut tx, db, MIGRATE_LOCK).await?;
    let sqlite = db.connect_options().database_url.scheme() == "sqlite";
    let present: Vec<String> = if sqlite {
        sqlx::query_scalar("SELECT name FROM pragma_table_info('users')")
            .fetch_all(&mut *tx)
            .await?
    } else {
        Vec::new()
    };
    for (column, kind) in ADDED_COLUMNS {
        if sqlite && !present.iter().any(|name| name == column) {
            sqlx::query(&format!("ALTER TABLE users ADD COLUMN {column} {kind}"))
                .execute(&mut *tx)
                .await?;
        } else if !sqlite {
            sqlx::query(&format!(
                "ALTER TABLE users ADD COLUMN IF NOT EXISTS {column} {kind}"
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// One user, as served and as sent in notifications.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct User {
    /// Its id, 1-based and dense after seeding.
    pub id: i64,
    /// Full name.
    pub name: String,
    /// Address.
    pub email: String,
    /// Country, plan, tags and the rest: what audiences select on.
    #[serde(flatten)]
    pub profile: Profile,
}

/// Where an expansion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    /// The last user id published.
    pub cursor: i64,
    /// How many notifications its pages published (`None` for an
    /// expansion begun before they were counted).
    pub published: Option<i64>,
    /// How it ended, once it has.
    pub ended: Option<Ended>,
}

/// How an expansion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The campaign's audience.
    pub total: i64,
    /// Of it, the users never requested because the campaign was cancelled
    /// first (0 for an expansion that went to its end).
    pub not_expanded: i64,
}

/// The columns of a [`User`] but its tags, as [`to_user`] reads them.
pub(crate) const USER_COLUMNS: &str =
    "users.id, users.name, users.email, users.country, users.locale, users.plan, users.signed_up_at, users.attributes";

/// The users and expansion cursors.
#[derive(Clone)]
pub struct UserStore {
    db: AnyPool,
}

impl UserStore {
    /// A store on `db` (schema already applied).
    pub fn new(db: AnyPool) -> Self {
        Self { db }
    }

    /// The user with `id`, if any.
    pub async fn get(&self, id: i64) -> anyhow::Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        let users = with_tags(&self.db, row.into_iter().map(to_user).collect::<Result<_, _>>()?).await?;
        Ok(users.into_iter().next())
    }

    /// The user whose address is `email`, exactly, if any.
    pub async fn by_email(&self, email: &str) -> anyhow::Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"))
            .bind(email)
            .fetch_optional(&self.db)
            .await?;
        let users = with_tags(&self.db, row.into_iter().map(to_user).collect::<Result<_, _>>()?).await?;
        Ok(users.into_iter().next())
    }

    /// Up to `limit` users with ids above `after`, in id order (keyset
    /// pagination: stable and cheap however deep the page).
    pub async fn page(&self, after: i64, limit: i64) -> anyhow::Result<Vec<User>> {
        self.page_matching(None, after, limit).await
    }

    /// Up to `limit` users matching `filter` (all, if `None`) with ids
    /// above `after`, in id order: a campaign's audience a page at a time,
    /// each page from where the last one ended, so that an expansion
    /// resumes from its cursor.
    pub async fn page_matching(
        &self,
        filter: Option<&Filter>,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<User>> {
        let (clause, params) = where_clause(filter, 3, self.dialect());
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE users.id > $1{clause} ORDER BY users.id LIMIT $2"
        );
        let query = bind_params(sqlx::query(&sql).bind(after).bind(limit), &params);
        let users = query
            .fetch_all(&self.db)
            .await?
            .into_iter()
            .map(to_user)
            .collect::<anyhow::Result<Vec<_>>>()?;
        with_tags(&self.db, users).await
    }

    /// The SQL dialect of this store's database, for filters.
    fn dialect(&self) -> Dialect {
        if servicekit::db::is_sqlite_pool(&self.db) {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        }
    }

    /// How many users have an id up to `id`.
    pub async fn count_up_to(&self, id: i64) -> anyhow::Result<i64> {
        self.count_matching(None, id).await
    }

    /// How many users match `filter` (all, if `None`) and have an id up to
    /// `up_to_id`: an audience's size, and at the end of an expansion the
    /// number it published up to its cursor.
    pub async fn count_matching(&self, filter: Option<&Filter>, up_to_id: i64) -> anyhow::Result<i64> {
        let (clause, params) = where_clause(filter, 2, self.dialect());
        let sql = format!("SELECT COUNT(*) FROM users WHERE users.id <= $1{clause}");
        let query = bind_params(sqlx::query(&sql).bind(up_to_id), &params);
        Ok(query.fetch_one(&self.db).await?.try_get(0)?)
    }

    /// Every campaign whose audience this service has expanded (or begun
    /// to).
    pub async fn expanded_campaigns(&self) -> anyhow::Result<Vec<String>> {
        sqlx::query("SELECT campaign_id FROM expansions ORDER BY campaign_id")
            .fetch_all(&self.db)
            .await?
            .into_iter()
            .map(|row| Ok(row.try_get(0)?))
            .collect()
    }

    /// Erases user `id` at `email`: their row goes, and their suppression
    /// entry, if any, keeps only the hash of the address; nothing of them
    /// is left in the file ([`servicekit::erasure`]).
    pub async fn erase(&self, id: i64, email: &str) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE suppressions SET address = NULL, user_id = NULL, detail = NULL WHERE address_hash = $1",
        )
        .bind(contracts::consent::address_hash(email))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_tags WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        servicekit::erasure::commit(&self.db, tx).await
    }

    /// Where the expansion of `campaign_id` stands, created at 0 if new.
    pub async fn expansion(&self, campaign_id: &str) -> anyhow::Result<Expansion> {
        sqlx::query(
            "INSERT INTO expansions (campaign_id, cursor, total, done) VALUES ($1, 0, NULL, 0)
             ON CONFLICT (campaign_id) DO NOTHING",
        )
        .bind(campaign_id)
        .execute(&self.db)
        .await?;
        let row = sqlx::query(
            "SELECT cursor, total,
                 COALESCE((SELECT not_expanded FROM expansion_cancellations c WHERE c.campaign_id = $1), 0),
                 (SELECT published FROM expansion_progress p WHERE p.campaign_id = $1)
             FROM expansions WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_one(&self.db)
        .await?;
        let total: Option<i64> = row.try_get(1)?;
        let ended = total.map(|total| {
            Ok::<_, sqlx::Error>(Ended {
                total,
                not_expanded: row.try_get(2)?,
            })
        });
        Ok(Expansion {
            cursor: row.try_get(0)?,
            published: row.try_get(3)?,
            ended: ended.transpose()?,
        })
    }

    /// Moves the cursor forward past a page of `published` notifications
    /// (never back: a slower duplicate handler cannot rewind it, nor count
    /// its page again).
    pub async fn advance(&self, campaign_id: &str, cursor: i64, published: i64) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query("UPDATE expansions SET cursor = $1 WHERE campaign_id = $2 AND cursor < $1")
            .bind(cursor)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if moved == 1 {
            sqlx::query(
                "INSERT INTO expansion_progress (campaign_id, published) VALUES ($1, $2)
                 ON CONFLICT (campaign_id) DO UPDATE SET published = expansion_progress.published + excluded.published",
            )
            .bind(campaign_id)
            .bind(published)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes the expansion lease of `campaign_id` for `owner` until
    /// `until_ms`, if it is free, expired, or already `owner`'s (a
    /// redelivered announcement in the same process). Returns
    /// whether `owner` holds it now.
    pub async fn take_lease(&self, campaign_id: &str, owner: &str, until_ms: i64) -> anyhow::Result<bool> {
        let taken = sqlx::query(
            "INSERT INTO expansion_leases (campaign_id, owner, lease_until) VALUES ($1, $2, $3)
             ON CONFLICT (campaign_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
             WHERE expansion_leases.owner = excluded.owner OR expansion_leases.lease_until < $4",
        )
        .bind(campaign_id)
        .bind(owner)
        .bind(until_ms)
        .bind(now_ms())
        .execute(&self.db)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Extends `owner`'s lease of `campaign_id` to `until_ms`; false when
    /// the lease has passed to another owner.
    pub async fn renew_lease(&self, campaign_id: &str, owner: &str, until_ms: i64) -> anyhow::Result<bool> {
        let renewed =
            sqlx::query("UPDATE expansion_leases SET lease_until = $1 WHERE campaign_id = $2 AND owner = $3")
                .bind(until_ms)
                .bind(campaign_id)
                .bind(owner)
                .execute(&self.db)
                .await?
                .rows_affected();
        Ok(renewed == 1)
    }

    /// Records that the expansion has ended as `ended` says, and frees its
    /// lease.
    pub async fn finish(&self, campaign_id: &str, ended: Ended) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query("UPDATE expansions SET total = $1, done = 1 WHERE campaign_id = $2")
            .bind(ended.total)
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        if ended.not_expanded > 0 {
            sqlx::query(
                "INSERT INTO expansion_cancellations (campaign_id, not_expanded) VALUES ($1, $2)
                 ON CONFLICT (campaign_id) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(ended.not_expanded)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM expansion_leases WHERE campaign_id = $1")
            .bind(campaign_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// ` AND (<filter>)` in `dialect` with placeholders from `$first`, and
/// their values; nothing for no filter.
fn where_clause(filter: Option<&Filter>, first: usize, dialect: Dialect) -> (String, Vec<Param>) {
    match filter {
        Some(filter) => {
            let sql = filter.to_sql(first, dialect);
            (format!(" AND {}", sql.clause), sql.params)
        }
        None => (String::new(), Vec::new()),
    }
}

/// `query` with `params` bound after what it has.
fn bind_params<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    params: &'q [Param],
) -> Query<'q, Any, AnyArguments<'q>> {
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text.as_str()),
            Param::Integer(n) => query.bind(*n),
        };
    }
    query
}

/// A user from a row of [`USER_COLUMNS`], without its tags yet.
pub(crate) fn to_user(row: sqlx::any::AnyRow) -> anyhow::Result<User> {
    let attributes: Option<String> = row.try_get(7)?;
    Ok(User {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        email: row.try_get(2)?,
        profile: Profile {
            country: row.try_get(3)?,
            locale: row.try_get(4)?,
            plan: row.try_get(5)?,
            signed_up_at: row.try_get(6)?,
            tags: Vec::new(),
            attributes: attributes.map(|text| serde_json::from_str(&text)).transpose()?,
        },
    })
}

/// `users` with their tags (in order), read in one query.
pub(crate) async fn with_tags<'e, E>(db: E, mut users: Vec<User>) -> anyhow::Result<Vec<User>>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let (Some(first), Some(last)) = (users.iter().map(|u| u.id).min(), users.iter().map(|u| u.id).max())
    else {
        return Ok(users);
    };
    // A dense page (all users, or most) is a range; a sparse one (a
    // filter's) names its ids, lest it read the tags of users between.
    let rows: Vec<(i64, String)> = if last - first < 2 * users.len() as i64 {
        sqlx::query_as("SELECT user_id, tag FROM user_tags WHERE user_id >= $1 AND user_id <= $2")
            .bind(first)
            .bind(last)
            .fetch_all(db)
            .await?
    } else {
        let sql = format!(
            "SELECT user_id, tag FROM user_tags WHERE user_id IN {}",
            servicekit::db::in_list(users.len(), 1)
        );
        let mut query = sqlx::query_as(&sql);
        for user in &users {
            query = query.bind(user.id);
        }
        query.fetch_all(db).await?
    };
    if rows.is_empty() {
        return Ok(users);
    }
    let at: HashMap<i64, usize> = users.iter().enumerate().map(|(n, u)| (u.id, n)).collect();
    for (user_id, tag) in rows {
        if let Some(n) = at.get(&user_id) {
            users[*n].profile.tags.push(tag);
        }
    }
    for user in &mut users {
        user.profile.tags.sort_unstable();
    }
    Ok(users)
}
