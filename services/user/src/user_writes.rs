//! Users as a real audience, one at a time: `POST /api/v1/users` adds one,
//! `PATCH /api/v1/users/{id}` changes a name or an address (deleting one is
//! its erasure, [`crate::erase`]). Addresses are checked at the door
//! ([`contracts::consent::check_address`]) and unique: one already some
//! user's is a 409 naming that user.
//!
//! A new user takes the id after the highest, in the insert itself; two
//! creations at once on PostgreSQL may compute the same one, and the one
//! that loses is tried again (a few times) from the address check. An
//! expansion running meanwhile includes a new user if its pages have not
//! passed the id yet.

use serde::Deserialize;
use sqlx::AnyPool;
use utoipa::ToSchema;

use crate::store::User;

/// How many times a creation is tried when a concurrent one took its id.
const TRIES: usize = 3;

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
        pattern = r"^\s*\S([\s\S]{0,198}\S)?\s*$"
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
        pattern = r"^\s*\S([\s\S]{0,198}\S)?\s*$"
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

/// `name` trimmed, or why it cannot be a name.
pub fn checked_name(name: &str) -> Result<String, String> {
    let name = name.trim();
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
