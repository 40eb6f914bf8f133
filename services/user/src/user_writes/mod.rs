//! Users as a real audience, one at a time: `POST /api/v1/users` adds one,
//! `PATCH /api/v1/users/{id}` changes a name, an address or the profile
//! ([`crate::profile`]: country, plan, tags, …; deleting a user is its
//! erasure, [`crate::erase`]). Addresses are checked at the door
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
use serde_json::Value;
use sqlx::{AnyPool, Row};
use utoipa::ToSchema;

use crate::profile::{Given, Profile, ProfileChange, RawProfile};
use crate::store::{to_user, with_tags, User, USER_COLUMNS};

mod upsert;

pub use upsert::{UpsertRow, Upserted};

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
    /// ISO 3166 alpha-2 country code: two uppercase letters.
    #[serde(default)]
    #[schema(example = "DE", pattern = "^[A-Z]{2}$")]
    pub country: Option<String>,
    /// Locale, a BCP 47 tag (a language of 2 or 3 letters, then subtags of
    /// 1 to 8 letters or digits, joined by `-`; at most 35 characters).
    #[serde(default)]
    #[schema(
        example = "de-DE",
        max_length = 35,
        pattern = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
    )]
    pub locale: Option<String>,
    /// Plan, 1 to 64 characters, none a control character.
    #[serde(default)]
    #[schema(
        example = "pro",
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]{1,64}$"
    )]
    pub plan: Option<String>,
    /// When the user signed up: an RFC 3339 date (midnight UTC) or
    /// date-time.
    #[serde(default)]
    #[schema(example = "2025-01-31T09:30:00Z")]
    pub signed_up_at: Option<String>,
    /// Tags, at most 50, each 1 to 64 of `A-Z a-z 0-9 _ -` (kept as a set:
    /// in order, each once).
    #[serde(default)]
    #[schema(example = json!(["beta", "newsletter"]), max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// Free-form attributes: a JSON object under 4 KiB.
    #[serde(default)]
    #[schema(value_type = Option<Object>, example = json!({"team": "ops"}))]
    pub attributes: Option<Value>,
}

impl NewUser {
    /// Its profile, checked.
    pub fn profile(&self) -> Result<Profile, String> {
        let change = RawProfile {
            country: Given::from_option(self.country.clone()),
            locale: Given::from_option(self.locale.clone()),
            plan: Given::from_option(self.plan.clone()),
            signed_up_at: Given::from_option(self.signed_up_at.clone()),
            tags: Given::from_option(self.tags.clone()),
            attributes: Given::from_option(self.attributes.clone()),
        }
        .check()?;
        Ok(change.apply(&Profile::default()))
    }
}

/// A change to a user: a new name, a new address, or both (at least one;
/// neither may be `null`), and any of the profile's attributes (`null`
/// clears one; `tags` replaces the set).
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
    /// The country, as [`NewUser::country`]; `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable, example = "DE", pattern = "^[A-Z]{2}$")]
    pub country: Given<String>,
    /// The locale, as [`NewUser::locale`]; `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable, example = "de-DE", max_length = 35, pattern = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
    pub locale: Given<String>,
    /// The plan, as [`NewUser::plan`]; `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable, example = "team", min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]{1,64}$")]
    pub plan: Given<String>,
    /// The sign-up time, as [`NewUser::signed_up_at`]; `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable, example = "2025-01-31")]
    pub signed_up_at: Given<String>,
    /// The new set of tags, as [`NewUser::tags`] (replacing the old one;
    /// `null` or `[]` clears it).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, nullable, example = json!(["vip"]), max_items = 50)]
    pub tags: Given<Vec<String>>,
    /// The new attributes, as [`NewUser::attributes`] (replacing the old
    /// object); `null` clears them.
    #[serde(default)]
    #[schema(value_type = Option<Object>, nullable, example = json!({"team": "sales"}))]
    pub attributes: Given<Value>,
}

impl UserChange {
    /// The change to the profile it asks for, checked.
    pub fn profile(&self) -> Result<ProfileChange, String> {
        RawProfile {
            country: self.country.clone(),
            locale: self.locale.clone(),
            plan: self.plan.clone(),
            signed_up_at: self.signed_up_at.clone(),
            tags: self.tags.clone(),
            attributes: self.attributes.clone(),
        }
        .check()
    }
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

    /// Adds a user named `name` at `email` with `profile` (all checked),
    /// with the id after the highest.
    pub async fn create(&self, name: &str, email: &str, profile: &Profile) -> anyhow::Result<Written> {
        for _ in 0..TRIES {
            let mut tx = self.db.begin().await?;
            servicekit::db::serialise(&mut tx, &self.db, ID_LOCK).await?;
            if let Some(holder) = holder_of(&mut tx, email, None).await? {
                tx.rollback().await?;
                return Ok(Written::AddressTaken(holder));
            }
            match insert(&mut tx, name, email, profile).await {
                Ok(id) => {
                    tx.commit().await?;
                    return Ok(Written::Done(User {
                        id,
                        name: name.to_string(),
                        email: email.to_string(),
                        profile: profile.clone(),
                    }));
                }
                // A creation at once took the id (or the address): again.
                Err(error) if is_unique_violation(&error) => tx.rollback().await?,
                Err(error) => return Err(error.into()),
            }
        }
        anyhow::bail!("creations at once kept taking the new user's id; try again")
    }

    /// Changes user `id`'s name and address where given, and its profile
    /// by `change` (all checked).
    pub async fn update(
        &self,
        id: i64,
        name: Option<&str>,
        email: Option<&str>,
        change: &ProfileChange,
    ) -> anyhow::Result<Written> {
        let mut tx = self.db.begin().await?;
        if let Some(email) = email {
            if let Some(holder) = holder_of(&mut tx, email, Some(id)).await? {
                tx.rollback().await?;
                return Ok(Written::AddressTaken(holder));
            }
        }
        let Some(before) = user_in(&mut tx, id).await? else {
            tx.rollback().await?;
            return Ok(Written::NotFound);
        };
        let profile = change.apply(&before.profile);
        let updated = overwrite(&mut tx, &before, name, email, &profile).await;
        match updated {
            Ok(()) => {
                let user = user_in(&mut tx, id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("the user changed is missing"))?;
                tx.commit().await?;
                Ok(Written::Done(user))
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

/// Inserts a user with the id after the highest; returns the id.
async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    email: &str,
    profile: &Profile,
) -> Result<i64, sqlx::Error> {
    let insert = sqlx::query(
        "INSERT INTO users (id, name, email, country, locale, plan, signed_up_at, attributes) \
         SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7 FROM users RETURNING id",
    )
    .bind(name)
    .bind(email);
    let id: i64 = with_profile(insert, profile)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    replace_tags(tx, id, &profile.tags).await?;
    Ok(id)
}

/// Sets the name and address of `before` where given, and its profile
/// (its tags only if they changed).
async fn overwrite(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    before: &User,
    name: Option<&str>,
    email: Option<&str>,
    profile: &Profile,
) -> Result<(), sqlx::Error> {
    let update = sqlx::query(
        "UPDATE users SET name = COALESCE($1, name), email = COALESCE($2, email), country = $3, locale = $4, \
         plan = $5, signed_up_at = $6, attributes = $7 WHERE id = $8",
    )
    .bind(name)
    .bind(email);
    with_profile(update, profile)
        .bind(before.id)
        .execute(&mut **tx)
        .await?;
    if profile.tags != before.profile.tags {
        replace_tags(tx, before.id, &profile.tags).await?;
    }
    Ok(())
}

/// `query` with `profile`'s columns bound next: country, locale, plan,
/// signed_up_at, attributes (its tags are rows of their own).
fn with_profile<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    profile: &'q Profile,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(profile.country.as_deref())
        .bind(profile.locale.as_deref())
        .bind(profile.plan.as_deref())
        .bind(profile.signed_up_at)
        .bind(profile.attributes_text())
}

/// Makes `tags` user `id`'s tags.
async fn replace_tags(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    tags: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM user_tags WHERE user_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if tags.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO user_tags (user_id, tag) VALUES {}",
        servicekit::db::values_list(tags.len(), 2)
    );
    let mut query = sqlx::query(&sql);
    for tag in tags {
        query = query.bind(id).bind(tag);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// User `id` as `tx` sees it.
async fn user_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: i64) -> anyhow::Result<Option<User>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let users = with_tags(&mut **tx, row.into_iter().map(to_user).collect::<Result<_, _>>()?).await?;
    Ok(users.into_iter().next())
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
