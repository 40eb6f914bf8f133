//! Transactional messages: stored when asked for, once per
//! `Idempotency-Key`, and settled by their email's first final outcome.
//!
//! A message is `queued` from its request until its email's outcome comes
//! back on `comms:deliveries`: `sent`, `failed`, `suppressed` or
//! `dead_lettered`. As with a campaign's notifications, the first final
//! outcome stands, except `dead_lettered`, which a replayed letter's real
//! outcome replaces.
//!
//! The row is written before its email is published, and holds that
//! email until it is settled: a message whose entry may have been lost (the service died
//! between the two, or Redis lost its last second) is published again
//! ([`CampaignStore::messages_to_announce`]). Its id is its email's
//! notification id, so email-service's send ledger sends it once however
//! many times it is published.

use contracts::consent::address_hash;
use contracts::{DeliveryStatus, EmailDelivery};
use serde::Serialize;
use servicekit::now_ms;
use sqlx::Row;
use utoipa::ToSchema;

use super::CampaignStore;

/// A message, as `GET /api/v1/messages/{id}` shows it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Message {
    /// Its id: its email's `Message-ID` is `<id@comms>`.
    pub id: String,
    /// The address it goes to; for a message to a user id, `user <id>`
    /// until its outcome brings the user's address.
    pub to: String,
    /// Its rendered subject (to a user id: its template).
    pub subject: String,
    /// `queued` until its outcome, then `sent`, `failed`, `suppressed` or
    /// `dead_lettered`.
    #[schema(example = "sent")]
    pub status: String,
    /// The server's reply or the reason, for a message not sent.
    pub detail: Option<String>,
    /// When it was asked for, in ms since the Unix epoch.
    pub created_at: i64,
    /// When its outcome came, in ms since the Unix epoch.
    pub settled_at: Option<i64>,
    /// Every outcome its email had, in order: one, or a dead letter and
    /// its replay's.
    pub attempts: Vec<Attempt>,
}

/// One outcome of a message's email.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Attempt {
    /// `sent`, `failed`, `suppressed` or `dead_lettered`.
    #[schema(example = "sent")]
    pub outcome: String,
    /// The server's reply or the reason.
    pub detail: Option<String>,
    /// How many times email-service tried it for this outcome (its
    /// retries of a busy or refusing server included); `null` when none
    /// was made (a dead letter).
    pub tries: Option<i64>,
    /// When the outcome came, in ms since the Unix epoch.
    pub at: i64,
}

/// A message to store: its id, what identifies its request, and the
/// email it publishes.
#[derive(Debug)]
pub struct NewMessage {
    /// Its id (its email's notification id).
    pub id: String,
    /// The request's `Idempotency-Key`, if it came with one.
    pub key: Option<String>,
    /// A digest of the request, to tell a retry from another request
    /// under the same key.
    pub request_hash: String,
    /// The address, or `user <id>` for a message to a user id (whose
    /// address its outcome brings).
    pub recipient: String,
    /// The rendered subject (to a user id: its template).
    pub subject: String,
    /// The JSON of what it publishes ([`crate::messages::Outgoing`]).
    pub email: String,
}

/// What storing a message came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// New: its email is to be published.
    New(Message),
    /// The message this key asked for before, for the same request:
    /// nothing new.
    Replayed(Message),
    /// The key asked for this message, for another request: nothing new.
    KeyReused {
        /// The message the key names.
        message_id: String,
    },
}

/// The columns of [`Message`], in its order.
const COLUMNS: &str = "id, recipient, subject, status, detail, created_at, settled_at";

impl CampaignStore {
    /// Stores `message` as `queued`, unless its key was used before.
    pub async fn store_message(&self, message: NewMessage) -> anyhow::Result<Stored> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO messages (id, idempotency_key, request_hash, recipient, subject, email, status,
                                   created_at, announced_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&message.id)
        .bind(&message.key)
        .bind(&message.request_hash)
        .bind(&message.recipient)
        .bind(&message.subject)
        .bind(&message.email)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 && message.recipient.contains('@') {
            sqlx::query("INSERT INTO message_recipients (message_id, address_hash) VALUES ($1, $2)")
                .bind(&message.id)
                .bind(address_hash(&message.recipient))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if inserted == 1 {
            return Ok(Stored::New(Message {
                id: message.id,
                to: message.recipient,
                subject: message.subject,
                status: "queued".into(),
                detail: None,
                created_at: now,
                settled_at: None,
                attempts: Vec::new(),
            }));
        }
        let key = message.key.as_deref().unwrap_or_default();
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, request_hash FROM messages WHERE idempotency_key = $1"
        ))
        .bind(key)
        .fetch_optional(&self.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the message of an idempotency key is missing"))?;
        let before = message_of(&row)?;
        if row.try_get::<String, _>(7)? == message.request_hash {
            Ok(Stored::Replayed(before))
        } else {
            Ok(Stored::KeyReused {
                message_id: before.id,
            })
        }
    }

    /// Whether `key` names a message already.
    pub async fn message_key_used(&self, key: &str) -> anyhow::Result<bool> {
        let row = sqlx::query("SELECT 1 FROM messages WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.is_some())
    }

    /// The message `id`, with its attempts, if there is one.
    pub async fn message(&self, id: &str) -> anyhow::Result<Option<Message>> {
        let Some(row) = sqlx::query(&format!("SELECT {COLUMNS} FROM messages WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let mut message = message_of(&row)?;
        let attempts = sqlx::query(
            "SELECT outcome, detail, tries, at FROM message_attempts WHERE message_id = $1 ORDER BY n",
        )
        .bind(id)
        .fetch_all(&self.db)
        .await?;
        for row in attempts {
            message.attempts.push(Attempt {
                outcome: row.try_get(0)?,
                detail: row.try_get(1)?,
                tries: row.try_get(2)?,
                at: row.try_get(3)?,
            });
        }
        Ok(Some(message))
    }

    /// The emails (JSON) of up to `limit` messages still `queued` whose
    /// last publication is older than `older_than_ms`, marked published
    /// now: the caller publishes them again.
    pub async fn messages_to_announce(&self, older_than_ms: i64, limit: i64) -> anyhow::Result<Vec<String>> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let rows = sqlx::query(
            "SELECT id, email FROM messages WHERE status = 'queued' AND email <> '' AND announced_at < $1
             ORDER BY announced_at LIMIT $2",
        )
        .bind(now - older_than_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut emails = Vec::with_capacity(rows.len());
        for row in rows {
            ids.push(row.try_get::<String, _>(0)?);
            emails.push(row.try_get(1)?);
        }
        if !ids.is_empty() {
            let sql = format!(
                "UPDATE messages SET announced_at = $1 WHERE id IN {}",
                servicekit::db::in_list(ids.len(), 2)
            );
            let mut marked = sqlx::query(&sql).bind(now);
            for id in &ids {
                marked = marked.bind(id);
            }
            marked.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(emails)
    }

    /// Settles the messages of `outcomes` (those of
    /// [`contracts::MESSAGE_CAMPAIGN`]) in `tx`: a `queued` one, or a
    /// `dead_lettered` one by a real outcome. The email it kept to publish
    /// again (the body, the address) goes: it is not needed any more.
    pub(super) async fn settle_messages(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        outcomes: &[&EmailDelivery],
    ) -> anyhow::Result<()> {
        let now = now_ms();
        for outcome in outcomes.iter().filter(|outcome| outcome.status.is_final()) {
            sqlx::query(
                "INSERT INTO message_attempts (message_id, n, outcome, detail, tries, at)
                 SELECT $1, (SELECT COUNT(*) FROM message_attempts WHERE message_id = $1), $2, $3, $4, $5
                 WHERE EXISTS (SELECT 1 FROM messages WHERE id = $1)
                 ON CONFLICT (message_id, outcome) DO NOTHING",
            )
            .bind(&outcome.notification_id)
            .bind(outcome.status.as_str())
            .bind(&outcome.detail)
            .bind(outcome.tries.map(i64::try_from).transpose()?)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            if let Some(address) = &outcome.recipient {
                learn_address(tx, &outcome.notification_id, address).await?;
            }
            let replaceable = if outcome.status == DeliveryStatus::DeadLettered {
                "status = 'queued'"
            } else {
                "status IN ('queued', 'dead_lettered')"
            };
            sqlx::query(&format!(
                "UPDATE messages SET status = $1, detail = $2, settled_at = $3, email = '' WHERE id = $4 AND {replaceable}"
            ))
            .bind(outcome.status.as_str())
            .bind(&outcome.detail)
            .bind(now)
            .bind(&outcome.notification_id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// Puts `address` on message `id` if it was sent to a user id (its
/// recipient still `user <id>`), and its hash beside it, by which the
/// user's erasure finds it.
async fn learn_address(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    address: &str,
) -> anyhow::Result<()> {
    let learnt = sqlx::query("UPDATE messages SET recipient = $1 WHERE id = $2 AND recipient LIKE 'user %'")
        .bind(address)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if learnt == 1 {
        sqlx::query(
            "INSERT INTO message_recipients (message_id, address_hash) VALUES ($1, $2)
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(id)
        .bind(address_hash(address))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A [`Message`] from a row of [`COLUMNS`].
fn message_of(row: &sqlx::any::AnyRow) -> anyhow::Result<Message> {
    Ok(Message {
        id: row.try_get(0)?,
        to: row.try_get(1)?,
        subject: row.try_get(2)?,
        status: row.try_get(3)?,
        detail: row.try_get(4)?,
        created_at: row.try_get(5)?,
        settled_at: row.try_get(6)?,
        attempts: Vec::new(),
    })
}
