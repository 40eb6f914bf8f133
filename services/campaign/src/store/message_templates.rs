//! Stored message templates: named, each change a new version, so that a
//! message sent while a template changes gets one version or the other,
//! whole, and a message can name the version it was written for.

use serde::Serialize;
use servicekit::now_ms;
use sqlx::Row;
use utoipa::ToSchema;

use super::CampaignStore;
use crate::domain::CheckedTemplates;

/// A version of a stored template.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct StoredTemplate {
    /// Its name.
    #[schema(example = "login-code")]
    pub name: String,
    /// Its version: 1 for the first, one more for each change.
    pub version: i64,
    /// The subject template.
    pub subject: String,
    /// The text body template (empty beside an HTML one: derived from it).
    pub body: String,
    /// The HTML body template, if any.
    pub html: Option<String>,
    /// The variables it declares: a message with it gives exactly these.
    pub variables: Vec<String>,
    /// When this version was stored, in ms since the Unix epoch.
    pub created_at: i64,
}

/// The columns of [`StoredTemplate`], in its order.
const COLUMNS: &str = "name, version, subject, body, html, variables, created_at";

impl CampaignStore {
    /// Stores `templates` as the next version of `name`, declaring
    /// `variables`; `None` when another version of `name` was stored at the
    /// same moment (PostgreSQL: the caller may try again).
    pub async fn add_template(
        &self,
        name: &str,
        templates: &CheckedTemplates,
        variables: &[String],
    ) -> anyhow::Result<Option<StoredTemplate>> {
        let declared = serde_json::to_string(variables)?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO message_templates ({COLUMNS})
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6 FROM message_templates WHERE name = $1
             ON CONFLICT (name, version) DO NOTHING
             RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(&templates.subject)
        .bind(&templates.body)
        .bind(&templates.html)
        .bind(&declared)
        .bind(now_ms())
        .fetch_optional(&self.db)
        .await?;
        inserted.map(|row| template_of(&row)).transpose()
    }

    /// Version `version` of template `name`, or its latest.
    pub async fn template(&self, name: &str, version: Option<i64>) -> anyhow::Result<Option<StoredTemplate>> {
        let row = match version {
            Some(version) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM message_templates WHERE name = $1 AND version = $2"
                ))
                .bind(name)
                .bind(version)
                .fetch_optional(&self.db)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM message_templates WHERE name = $1 ORDER BY version DESC LIMIT 1"
                ))
                .bind(name)
                .fetch_optional(&self.db)
                .await?
            }
        };
        row.map(|row| template_of(&row)).transpose()
    }
}

/// A [`StoredTemplate`] from a row of [`COLUMNS`].
fn template_of(row: &sqlx::any::AnyRow) -> anyhow::Result<StoredTemplate> {
    Ok(StoredTemplate {
        name: row.try_get(0)?,
        version: row.try_get(1)?,
        subject: row.try_get(2)?,
        body: row.try_get(3)?,
        html: row.try_get(4)?,
        variables: serde_json::from_str(&row.try_get::<String, _>(5)?)?,
        created_at: row.try_get(6)?,
    })
}
