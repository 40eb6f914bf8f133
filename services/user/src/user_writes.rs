//! Users as a real audience, one at a time: `POST /api/v1/users` adds one,
//! `PATCH /api/v1/users/{id}` changes a name or an address (deleting one is
//! its erasure, [`crate::erase`]). Addresses are checked at the door
//! ([`contracts::consent::check_address`]) and unique: one already some
//! user's is a 409 naming that user.
//!
//! A new user takes the id after the highest, in the insert itself; the
//! transactions that pick ids run one at a time (on PostgreSQL under an
//! advisory lock), so creations at once on several instances never compute
//! the same one. An
//! expansion running meanwhile includes a new user if its pages have not
//! passed the id yet.

use serde::Deserialize;
use sqlx::AnyPool;
use utoipa::ToSchema;

use crate::store::User;

/// How many times a creation is tried when a concurrent one took its id
/// (creations are serialised by [`ID_LOCK`]; this is for what is not, the
/// seeding).
const TRIES: usize = 3;

/// The lock that serialises the transactions picking new users' ids
/// ([`servicekit::db::serialise`]): "users" in ASCII.
const ID_LOCK: i64 = 0x75_7365_7273;

/// The longest name, in characters.
const MAX_NAME: usize = 200;

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The address (unique among the users).
    #[schema(
        example = "ada@example.com",
        min_length = 3,
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]+$"
    )]
    pub email: String,
    /// Full name, 1 to 200 characters (spaces around it trimmed), not only
    /// spaces.
    #[schema(
        example = "Ada Lovelace",
        min_length = 1,
        pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]{0,198}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
}

/// A change to a user: a new name, a new address, or both (at least one;
/// neither may be `null`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UserChange {
    /// The new address (unique among the users).
    #[serde(default, deserialize_with = "given")]
    #[schema(
        nullable = false,
        example = "ada@example.org",
        min_length = 3,
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]+$"
    )]
    pub email: Option<String>,
    /// The new name, as [`NewUser::name`].
    #[serde(default, deserialize_with = "given")]
    #[schema(
        nullable = false,
        example = "Ada King",
        min_length = 1,
        pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]{0,198}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
}

/// A field that, when present, holds a string (`null` is refused).
fn given<'de, D: serde::Deserializer<'de>>(field: D) -> Result<Option<String>, D::Error> {
    String::deserialize(field).map(Some)
}

/// What a write of a user came to.
#[derive(Debug)]
pub enum Written {
    /// The user as it is now.
    Done(User),
    /// The address is this user's already: nothing changed.
    AddressTaken(i64),
    /// No user with that id.
    NotFound,
}

/// `name` trimmed (of spaces and byte-order marks), or why it cannot be a
/// name: it is empty, too long, or holds a control character (a line break
/// cannot go in an email's `To` header).
pub fn checked_name(name: &str) -> Result<String, String> {
    if name.chars().any(char::is_control) {
        return Err("name must not hold a control character (a line break, a tab)".into());
    }
    let name = name.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("name must be at most {MAX_NAME} characters"));
    }
    Ok(name.to_string())
}

/// `email`, or why it cannot be an address.
pub fn checked_email(email: &str) -> Result<String, String> {
    contracts::consent::check_address(email)
        .map(str::to_string)
        .map_err(|error| format!("email: {error}"))
}

/// Writes users on `db`.
#[derive(Clone)]
pub struct UserWrites {
    db: AnyPool,
}

impl UserWrites {
    /// Writes on `db` (schema applied).
    pub fn new(db: AnyPool) -> Self {
        Self { db }
    }

    /// Adds a user named `name` at `email` (both checked), with the id
    /// after the highest.
    pub async fn create(&self, name: &str, email: &str) -> anyhow::Result<Written> {
        for _ in 0..TRIES {
            let mut tx = self.db.begin().await?;
            servicekit::db::serialise(&mut tx, &self.db, ID_LOCK).await?;
            if let Some(holder) = holder_of(&mut tx, email, None).await? {
                tx.rollback().await?;
                return Ok(Written::AddressTaken(holder));
            }
            let inserted = sqlx::query(
                "INSERT INTO users (id, name, email) SELECT COALESCE(MAX(id), 0) + 1, $1, $2 FROM users",
            )
            .bind(name)
            .bind(email)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {
                    let id = holder_of(&mut tx, email, None)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("the new user is missing"))?;
                    tx.commit().await?;
                    return Ok(Written::Done(User {
                        id,
                        name: name.to_string(),
                        email: email.to_string(),
                    }));
                }
                // A creation at once took the id (or the address): again.
                Err(error) if is_unique_violation(&error) => tx.rollback().await?,
                Err(error) => return Err(error.into()),
            }
        }
        anyhow::bail!("creations at once kept taking the new user's id; try again")
    }

    /// Changes user `id`'s name and address where given (both checked).
    pub async fn update(&self, id: i64, name: Option<&str>, email: Option<&str>) -> anyhow::Result<Written> {
        let mut tx = self.db.begin().await?;
        if let Some(email) = email {
            if let Some(holder) = holder_of(&mut tx, email, Some(id)).await? {
                tx.rollback().await?;
                return Ok(Written::AddressTaken(holder));
            }
        }
        let updated = sqlx::query(
            "UPDATE users SET name = COALESCE($1, name), email = COALESCE($2, email) WHERE id = $3",
        )
        .bind(name)
        .bind(email)
        .bind(id)
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(done) if done.rows_affected() == 0 => {
                tx.rollback().await?;
                Ok(Written::NotFound)
            }
            Ok(_) => {
                let row: (i64, String, String) =
                    sqlx::query_as("SELECT id, name, email FROM users WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                Ok(Written::Done(User {
                    id: row.0,
                    name: row.1,
                    email: row.2,
                }))
            }
            // An update or creation at once took the address.
            Err(error) if is_unique_violation(&error) => {
                tx.rollback().await?;
                let email = email.unwrap_or_default();
                let holder: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
                    .bind(email)
                    .fetch_optional(&self.db)
                    .await?;
                Ok(holder.map_or(Written::NotFound, Written::AddressTaken))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// What an upsert of many users did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, ToSchema)]
pub struct Upserted {
    /// Users added.
    pub created: u64,
    /// Users whose name changed.
    pub updated: u64,
    /// Users already there with that name.
    pub unchanged: u64,
}

impl UserWrites {
    /// Adds the users of `rows` (address, name; each checked, each address
    /// once) that are not there, with the ids after the highest, and sets
    /// the name of those that are, in one transaction: running it again
    /// changes nothing.
    pub async fn upsert(&self, rows: &[(String, String)]) -> anyhow::Result<Upserted> {
        for _ in 0..TRIES {
            // A unique violation: a creation at once took an id; again.
            match self.upsert_once(rows).await {
                Err(error) if is_unique_violation(&error) => {}
                done => return Ok(done?),
            }
        }
        anyhow::bail!("creations at once kept taking the new users' ids; import again")
    }

    async fn upsert_once(&self, rows: &[(String, String)]) -> Result<Upserted, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        servicekit::db::serialise(&mut tx, &self.db, ID_LOCK).await?;
        let sql = format!(
            "SELECT email, name FROM users WHERE email IN {}",
            servicekit::db::in_list(rows.len(), 1)
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for (email, _) in rows {
            query = query.bind(email);
        }
        let known: std::collections::HashMap<String, String> =
            query.fetch_all(&mut *tx).await?.into_iter().collect();
        let mut done = Upserted::default();
        for (email, name) in rows {
            match known.get(email) {
                Some(before) if before == name => done.unchanged += 1,
                Some(_) => {
                    sqlx::query("UPDATE users SET name = $1 WHERE email = $2")
                        .bind(name)
                        .bind(email)
                        .execute(&mut *tx)
                        .await?;
                    done.updated += 1;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO users (id, name, email) SELECT COALESCE(MAX(id), 0) + 1, $1, $2 FROM users",
                    )
                    .bind(name)
                    .bind(email)
                    .execute(&mut *tx)
                    .await?;
                    done.created += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(done)
    }
}

/// The user at `email`, but `except`.
async fn holder_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    email: &str,
    except: Option<i64>,
) -> Result<Option<i64>, sqlx::Error> {
    let holder: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(holder.filter(|holder| Some(*holder) != except))
}

/// Whether `error` is a unique key's refusal.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(sqlx::error::DatabaseError::is_unique_violation)
}
