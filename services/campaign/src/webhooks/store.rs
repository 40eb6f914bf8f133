//! The webhook endpoints and the events each still has to receive, in
//! campaign-service's database.

use std::collections::BTreeSet;

use serde::Serialize;
use servicekit::db::in_list;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use utoipa::ToSchema;

use super::event::{Event, EventType};

/// An endpoint as the API shows it: never its secret, with what waits for
/// it and how its last tries went.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Endpoint {
    /// Its id.
    pub id: String,
    /// Where events are POSTed.
    #[schema(example = "https://hooks.example.com/comms")]
    pub url: String,
    /// The kinds it receives.
    pub events: Vec<EventType>,
    /// Events per POST: 1 sends each event as the body; more sends
    /// `{"events": [...]}` of up to this many.
    pub batch_size: i64,
    /// When it was registered, in ms since the Unix epoch: it receives
    /// what happens from then on.
    pub created_at: i64,
    /// Events it has received.
    pub delivered: i64,
    /// Events waiting for it, being tried.
    pub pending: i64,
    /// Events whose tries ran out: replayable.
    pub dead: i64,
    /// POSTs that failed in a row (0: its last one succeeded).
    pub failures: i64,
    /// When it last took a POST, in ms since the Unix epoch.
    pub last_success_at: Option<i64>,
    /// Its last failure (a status and the start of the answer, or why no
    /// answer came).
    pub last_error: Option<String>,
    /// When that was, in ms since the Unix epoch.
    pub last_error_at: Option<i64>,
}

/// What a POST needs of an endpoint.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its id.
    pub id: String,
    /// Its URL.
    pub url: String,
    /// Its secret (`whsec_…`).
    pub secret: String,
    /// Events per POST.
    pub batch_size: i64,
    /// How many POSTs to it failed in a row.
    pub failures: i64,
}

/// An endpoint's kinds and since when, for the intake to fan events out.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The endpoint's id.
    pub id: String,
    /// The kinds it receives.
    pub events: Vec<EventType>,
    /// When it was registered: events from before are not its.
    pub created_at: i64,
}

/// An event whose tries ran out, as the API lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadEvent {
    /// The event, as the endpoint would have received it.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    /// POSTs tried.
    pub attempts: i64,
    /// The last one's failure.
    pub last_error: Option<String>,
    /// When its tries ran out, in ms since the Unix epoch.
    pub dead_at: i64,
}

const ENDPOINT_COLUMNS: &str = "id, url, events, batch_size, created_at, delivered, failures,
    last_success_at, last_error, last_error_at,
    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.dead_at IS NULL),
    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.dead_at IS NOT NULL)";

/// Events per `INSERT` of [`WebhookStore::enqueue`]: 9 parameters each,
/// well within SQLite's and PostgreSQL's limits.
const ROWS_PER_INSERT: usize = 100;

const EVENT_COLUMNS: &str = "event_id, event_type, occurred_at, notification_id, recipient, detail, data";

/// What an erasure blanks of an erased user's events not yet delivered
/// ([`servicekit::erasure::Eraser`]).
pub const ERASE: &str = "UPDATE webhook_deliveries SET recipient = NULL, detail = NULL WHERE notification_id";

/// The endpoints and their events.
#[derive(Clone)]
pub struct WebhookStore {
    pub(super) db: AnyPool,
}

impl WebhookStore {
    /// A store on `db` (schema applied).
    pub fn new(db: AnyPool) -> Self {
        Self { db }
    }

    /// Registers an endpoint.
    pub async fn add(&self, target: &Target, events: &[EventType], now: i64) -> anyhow::Result<Endpoint> {
        let kinds = serde_json::to_string(events)?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, secret, events, batch_size, created_at, delivered, failures, retry_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0)",
        )
        .bind(&target.id)
        .bind(&target.url)
        .bind(&target.secret)
        .bind(kinds)
        .bind(target.batch_size)
        .bind(now)
        .execute(&self.db)
        .await?;
        self.get(&target.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("endpoint {} vanished as it was added", target.id))
    }

    /// Every endpoint, oldest first.
    pub async fn list(&self) -> anyhow::Result<Vec<Endpoint>> {
        sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e ORDER BY created_at, id"
        ))
        .fetch_all(&self.db)
        .await?
        .iter()
        .map(to_endpoint)
        .collect()
    }

    /// One endpoint.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Endpoint>> {
        sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?
        .as_ref()
        .map(to_endpoint)
        .transpose()
    }

    /// Removes an endpoint and what waits for it; whether there was one.
    pub async fn delete(&self, id: &str) -> anyhow::Result<bool> {
        let mut tx = self.db.begin().await?;
        let removed = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// Every endpoint's kinds, for the intake.
    pub async fn subscribers(&self) -> anyhow::Result<Vec<Subscriber>> {
        let rows = sqlx::query("SELECT id, events, created_at FROM webhook_endpoints")
            .fetch_all(&self.db)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Subscriber {
                    id: row.try_get(0)?,
                    events: serde_json::from_str(&row.try_get::<String, _>(1)?)?,
                    created_at: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Keeps each `(endpoint, event)` until the endpoint has it, due now;
    /// one already kept (an entry read again) is left as it is. An
    /// endpoint removed meanwhile gets nothing. A statement per
    /// [`ROWS_PER_INSERT`] events, not one per event.
    pub async fn enqueue(&self, events: &[(String, Event)], now: i64) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        let endpoints: BTreeSet<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
        let sql = format!(
            "SELECT id FROM webhook_endpoints WHERE id IN {}",
            in_list(endpoints.len(), 1)
        );
        let mut select = sqlx::query(&sql);
        for id in &endpoints {
            select = select.bind(*id);
        }
        let existing: BTreeSet<String> = select
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        let kept: Vec<_> = events.iter().filter(|(id, _)| existing.contains(id)).collect();
        for chunk in kept.chunks(ROWS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let first = row * 9 + 1;
                    let params: Vec<String> = (first..first + 9).map(|n| format!("${n}")).collect();
                    format!("({}, 0, ${})", params.join(", "), first + 8)
                })
                .collect();
            let sql = format!(
                "INSERT INTO webhook_deliveries
                   (endpoint_id, event_id, event_type, occurred_at, notification_id, recipient, detail, data, created_at, attempts, next_at)
                 VALUES {}
                 ON CONFLICT (endpoint_id, event_id) DO NOTHING",
                rows.join(", ")
            );
            let mut insert = sqlx::query(&sql);
            for (endpoint_id, event) in chunk {
                insert = insert
                    .bind(endpoint_id)
                    .bind(&event.id)
                    .bind(event.kind.as_str())
                    .bind(event.occurred_at)
                    .bind(&event.notification_id)
                    .bind(&event.recipient)
                    .bind(&event.detail)
                    .bind(event.data.to_string())
                    .bind(now);
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The endpoints that have events due at `now` and are not waiting
    /// after a failure.
    pub async fn due_targets(&self, now: i64) -> anyhow::Result<Vec<Target>> {
        let rows = sqlx::query(
            "SELECT id, url, secret, batch_size, failures FROM webhook_endpoints e
             WHERE retry_at <= $1 AND EXISTS (
                 SELECT 1 FROM webhook_deliveries d
                 WHERE d.endpoint_id = e.id AND d.dead_at IS NULL AND d.next_at <= $1)",
        )
        .bind(now)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Target {
                    id: row.try_get(0)?,
                    url: row.try_get(1)?,
                    secret: row.try_get(2)?,
                    batch_size: row.try_get(3)?,
                    failures: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// Up to `limit` events due at `now` for `endpoint_id`, in the order
    /// they came due (the index's: no sort, however many wait).
    pub async fn due(&self, endpoint_id: &str, now: i64, limit: i64) -> anyhow::Result<Vec<Event>> {
        sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_deliveries
             WHERE endpoint_id = $1 AND dead_at IS NULL AND next_at <= $2
             ORDER BY next_at, event_id LIMIT $3"
        ))
        .bind(endpoint_id)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.db)
        .await?
        .iter()
        .map(to_event)
        .collect()
    }

    /// `events` reached `endpoint_id` at `now`: they are done with.
    pub async fn delivered(&self, endpoint_id: &str, events: &[String], now: i64) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id IN {}",
            in_list(events.len(), 2)
        );
        let mut delete = sqlx::query(&sql).bind(endpoint_id);
        for id in events {
            delete = delete.bind(id);
        }
        let removed = delete.execute(&mut *tx).await?.rows_affected();
        sqlx::query(
            "UPDATE webhook_endpoints SET delivered = delivered + $2, failures = 0, retry_at = 0, last_success_at = $3
             WHERE id = $1",
        )
        .bind(endpoint_id)
        .bind(i64::try_from(removed)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A POST of `events` to `endpoint_id` failed at `now` with `error`:
    /// each is tried again at `retry_at` (the endpoint too), or, first
    /// kept before `dead_before`, is dead.
    pub async fn failed(
        &self,
        endpoint_id: &str,
        events: &[String],
        failure: &Failure<'_>,
    ) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let ids = in_list(events.len(), 6);
        let sql = format!(
            "UPDATE webhook_deliveries
             SET attempts = attempts + 1, last_error = $2, next_at = $3,
                 dead_at = CASE WHEN created_at < $4 THEN $5 ELSE NULL END
             WHERE endpoint_id = $1 AND event_id IN {ids}"
        );
        let mut update = sqlx::query(&sql)
            .bind(endpoint_id)
            .bind(failure.error)
            .bind(failure.retry_at)
            .bind(failure.dead_before)
            .bind(failure.now);
        for id in events {
            update = update.bind(id);
        }
        update.execute(&mut *tx).await?;
        sqlx::query(
            "UPDATE webhook_endpoints SET failures = failures + 1, retry_at = $2, last_error = $3, last_error_at = $4
             WHERE id = $1",
        )
        .bind(endpoint_id)
        .bind(failure.retry_at)
        .bind(failure.error)
        .bind(failure.now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The dead events of `endpoint_id`, `limit` after event `after` (by
    /// id).
    pub async fn dead(&self, endpoint_id: &str, after: &str, limit: i64) -> anyhow::Result<Vec<DeadEvent>> {
        sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS}, attempts, last_error, dead_at FROM webhook_deliveries
             WHERE endpoint_id = $1 AND dead_at IS NOT NULL AND event_id > $2
             ORDER BY event_id LIMIT $3"
        ))
        .bind(endpoint_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db)
        .await?
        .iter()
        .map(|row| {
            Ok(DeadEvent {
                event: to_event(row)?.to_json(),
                attempts: row.try_get(7)?,
                last_error: row.try_get(8)?,
                dead_at: row.try_get(9)?,
            })
        })
        .collect()
    }

    /// Every dead event of `endpoint_id` tried again from `now`, with its
    /// tries' time counted afresh; how many.
    pub async fn replay(&self, endpoint_id: &str, now: i64) -> anyhow::Result<u64> {
        let mut tx = self.db.begin().await?;
        let replayed = sqlx::query(
            "UPDATE webhook_deliveries SET dead_at = NULL, next_at = $2, created_at = $2
             WHERE endpoint_id = $1 AND dead_at IS NOT NULL",
        )
        .bind(endpoint_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE webhook_endpoints SET failures = 0, retry_at = 0 WHERE id = $1")
            .bind(endpoint_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(replayed)
    }
}

/// A failed POST, as [`WebhookStore::failed`] records it.
#[derive(Debug)]
pub struct Failure<'a> {
    /// What failed.
    pub error: &'a str,
    /// When it failed, in ms since the Unix epoch.
    pub now: i64,
    /// When the events (and the endpoint) are tried again.
    pub retry_at: i64,
    /// Events first kept before this are dead instead.
    pub dead_before: i64,
}

fn to_endpoint(row: &AnyRow) -> anyhow::Result<Endpoint> {
    Ok(Endpoint {
        id: row.try_get(0)?,
        url: row.try_get(1)?,
        events: serde_json::from_str(&row.try_get::<String, _>(2)?)?,
        batch_size: row.try_get(3)?,
        created_at: row.try_get(4)?,
        delivered: row.try_get(5)?,
        failures: row.try_get(6)?,
        last_success_at: row.try_get(7)?,
        last_error: row.try_get(8)?,
        last_error_at: row.try_get(9)?,
        pending: row.try_get(10)?,
        dead: row.try_get(11)?,
    })
}

fn to_event(row: &AnyRow) -> anyhow::Result<Event> {
    Ok(Event {
        id: row.try_get(0)?,
        kind: row.try_get::<String, _>(1)?.parse()?,
        occurred_at: row.try_get(2)?,
        notification_id: row.try_get(3)?,
        recipient: row.try_get(4)?,
        detail: row.try_get(5)?,
        data: serde_json::from_str(&row.try_get::<String, _>(6)?)?,
    })
}
