//! Each campaign's templates, stored once from its `campaign.created`:
//! subject and text body in `templates`, the HTML body (if any) in
//! `templates_html` and the campaign's own send rate (if any) in
//! `templates_rate`, tables of their own so that a database created
//! before them gains them from `CREATE TABLE IF NOT EXISTS` alone.

use sqlx::Row;

use super::NotificationStore;

/// A campaign's template sources, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTemplates {
    /// The subject template.
    pub subject: String,
    /// The text body template (empty: derived from the HTML).
    pub body: String,
    /// The HTML body template, if any.
    pub html: Option<String>,
    /// The campaign's own send rate, emails a second, if any: carried on
    /// each of its email requests.
    pub rate_per_s: Option<f64>,
}

impl NotificationStore {
    /// Keeps the templates of `campaign_id`, in one transaction (a
    /// campaign's templates never change: a second copy is ignored).
    pub async fn save_templates(&self, campaign_id: &str, templates: &StoredTemplates) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "INSERT INTO templates (campaign_id, subject, body) VALUES ($1, $2, $3)
             ON CONFLICT (campaign_id) DO NOTHING",
        )
        .bind(campaign_id)
        .bind(&templates.subject)
        .bind(&templates.body)
        .execute(&mut *tx)
        .await?;
        if let Some(html) = &templates.html {
            sqlx::query(
                "INSERT INTO templates_html (campaign_id, html) VALUES ($1, $2)
                 ON CONFLICT (campaign_id) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(html)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(rate) = templates.rate_per_s {
            sqlx::query(
                "INSERT INTO templates_rate (campaign_id, rate_per_s) VALUES ($1, $2)
                 ON CONFLICT (campaign_id) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(rate)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The templates of `campaign_id`, if known.
    pub async fn templates(&self, campaign_id: &str) -> anyhow::Result<Option<StoredTemplates>> {
        let row = sqlx::query(
            "SELECT subject, body, (SELECT html FROM templates_html h WHERE h.campaign_id = templates.campaign_id),
             (SELECT rate_per_s FROM templates_rate r WHERE r.campaign_id = templates.campaign_id)
             FROM templates WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_optional(&self.db)
        .await?;
        row.map(|row| {
            Ok(StoredTemplates {
                subject: row.try_get(0)?,
                body: row.try_get(1)?,
                html: row.try_get(2)?,
                rate_per_s: row.try_get(3)?,
            })
        })
        .transpose()
    }
}
