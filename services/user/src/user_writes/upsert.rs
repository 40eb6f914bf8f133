//! Many users at once, the import's write ([`crate::import`]): upserted by
//! address in one transaction per batch, each row's change applied to the
//! user it finds (or to a new one), and counted by what it did, so that
//! importing a file again counts every row `unchanged`.

use utoipa::ToSchema;

use super::{insert, is_unique_violation, overwrite, UserWrites, ID_LOCK, TRIES};
use crate::profile::{Profile, ProfileChange};
use crate::store::{to_user, with_tags, User, USER_COLUMNS};

/// What an upsert of many users did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, ToSchema)]
pub struct Upserted {
    /// Users added.
    pub created: u64,
    /// Users whose name or profile changed.
    pub updated: u64,
    /// Users already there as given.
    pub unchanged: u64,
}

/// One user of an upsert: the address that finds it, the name it gets,
/// and the change to its profile (all checked).
#[derive(Debug, Clone, PartialEq)]
pub struct UpsertRow {
    /// The address (each once in an upsert).
    pub email: String,
    /// The name.
    pub name: String,
    /// What of the profile the row gives.
    pub change: ProfileChange,
}

impl UserWrites {
    /// Adds the users of `rows` that are not there, with the ids after the
    /// highest, and sets the name and the given attributes of those that
    /// are, in one transaction: running it again changes nothing.
    pub async fn upsert(&self, rows: &[UpsertRow]) -> anyhow::Result<Upserted> {
        for _ in 0..TRIES {
            // A unique violation: a creation at once took an id; again.
            match self.upsert_once(rows).await {
                Err(error) if is_unique_violation(&error) => {}
                done => return Ok(done?),
            }
        }
        anyhow::bail!("creations at once kept taking the new users' ids; import again")
    }

    async fn upsert_once(&self, rows: &[UpsertRow]) -> Result<Upserted, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        servicekit::db::serialise(&mut tx, &self.db, ID_LOCK).await?;
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email IN {} ORDER BY id",
            servicekit::db::in_list(rows.len(), 1)
        );
        let mut query = sqlx::query(&sql);
        for row in rows {
            query = query.bind(&row.email);
        }
        let known = query
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(to_user)
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|error| sqlx::Error::Decode(error.into()))?;
        let known = with_tags(&mut *tx, known)
            .await
            .map_err(|error| sqlx::Error::Decode(error.into()))?;
        let known: std::collections::HashMap<&str, &User> =
            known.iter().map(|user| (user.email.as_str(), user)).collect();
        let mut done = Upserted::default();
        for row in rows {
            let Some(user) = known.get(row.email.as_str()) else {
                let profile = row.change.apply(&Profile::default());
                insert(&mut tx, &row.name, &row.email, &profile).await?;
                done.created += 1;
                continue;
            };
            let profile = row.change.apply(&user.profile);
            if user.name == row.name && profile == user.profile {
                done.unchanged += 1;
            } else {
                overwrite(&mut tx, user, Some(&row.name), None, &profile).await?;
                done.updated += 1;
            }
        }
        tx.commit().await?;
        Ok(done)
    }
}
