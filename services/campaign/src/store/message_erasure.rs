//! Erasing a user from the transactional messages. A message names an
//! address, not a user, so the messages to an erased user are found by the
//! hash of their address (`message_recipients`); each keeps its row,
//! status and times, blanked of the address, the subject, the email and
//! the servers' replies.

use contracts::consent::address_hash;
use sqlx::Row;

use super::CampaignStore;

/// Blanks the messages of the ids appended (` IN (…)`).
pub const ERASE_MESSAGES: &str =
    "UPDATE messages SET recipient = '', subject = '', detail = NULL, email = '' WHERE id";

/// Blanks the servers' replies of the messages' outcomes.
pub const ERASE_ATTEMPTS: &str = "UPDATE message_attempts SET detail = NULL WHERE message_id";

/// Messages hashed per statement by [`CampaignStore::hash_message_recipients`].
const PAGE: i64 = 1_000;

impl CampaignStore {
    /// The ids of the messages to the address whose hash is `hash`.
    pub async fn messages_to(&self, hash: &str) -> anyhow::Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT message_id FROM message_recipients WHERE address_hash = $1")
                .bind(hash)
                .fetch_all(&self.db)
                .await?,
        )
    }

    /// Hashes the address of each message stored without it (by a version
    /// of comms before `message_recipients`), a page at a time, so that an
    /// erasure finds those messages too; returns how many. None at all
    /// after the first start.
    pub async fn hash_message_recipients(&self) -> anyhow::Result<u64> {
        let mut hashed = 0;
        loop {
            let rows = sqlx::query(
                "SELECT id, recipient FROM messages m WHERE recipient LIKE '%@%' AND NOT EXISTS
                 (SELECT 1 FROM message_recipients r WHERE r.message_id = m.id) LIMIT $1",
            )
            .bind(PAGE)
            .fetch_all(&self.db)
            .await?;
            if rows.is_empty() {
                return Ok(hashed);
            }
            let mut tx = self.db.begin().await?;
            for row in &rows {
                sqlx::query(
                    "INSERT INTO message_recipients (message_id, address_hash) VALUES ($1, $2)
                     ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(row.try_get::<String, _>(0)?)
                .bind(address_hash(&row.try_get::<String, _>(1)?))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            hashed += rows.len() as u64;
        }
    }
}
