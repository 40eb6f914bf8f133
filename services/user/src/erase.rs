//! Erasing a user: `DELETE /api/v1/users/{id}` removes their personal data
//! everywhere comms keeps it, and keeps every campaign's counts exact.
//!
//! In order, so that a crash at any step leaves the request worth sending
//! again (the user is deleted last, and each step is idempotent):
//! 1. `user.erased` goes on `comms:erasures` with the user's notification
//!    in every campaign expanded so far and the hash of their address:
//!    notification-service blanks its records of them, campaign-service
//!    its list of failures and the messages to the address, email-service
//!    the servers' replies in its ledger; each keeps the row its counts
//!    are made of;
//! 2. the streams: what every group has handled is trimmed, dead letters
//!    naming the address are deleted ([`eventstore::erase`]); entries still
//!    in flight (a campaign sending to them now) are counted, and go with
//!    the trimming once handled;
//! 3. the user's row goes, and their suppression entry keeps only the hash
//!    of the address, so that an erased user who was suppressed is still
//!    never emailed.

use std::sync::Arc;

use contracts::consent::{address_hash, UserErased};
use contracts::{notification_id, Streams};
use eventstore::erase::Erased;
use eventstore::{Envelope, Publisher, Redis};
use serde::Serialize;

use crate::store::UserStore;

/// What an erasure did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Erasure {
    /// The user.
    pub user_id: i64,
    /// Their notifications, whose records the other services blank.
    pub notifications: usize,
    /// Stream entries trimmed now (handled by every group).
    pub entries_trimmed: u64,
    /// Dead letters deleted for naming them.
    pub dead_letters_deleted: u64,
    /// Entries naming them that a campaign still needs: they go once
    /// handled. Erasing again then reports none.
    pub entries_in_flight: u64,
}

/// Erases users.
#[derive(Clone)]
pub struct Eraser {
    users: UserStore,
    redis: Redis,
    publisher: Publisher,
    streams: Arc<Streams>,
}

impl Eraser {
    /// Erases from `users` and the `streams` of `redis`.
    pub fn new(users: UserStore, redis: Redis, streams: Streams) -> Self {
        Self {
            users,
            publisher: Publisher::new(redis.clone()),
            redis,
            streams: Arc::new(streams),
        }
    }

    /// Erases user `id`; `None` when there is no such user (never was, or
    /// erased already).
    pub async fn erase(&self, id: i64) -> anyhow::Result<Option<Erasure>> {
        let Some(user) = self.users.get(id).await? else {
            return Ok(None);
        };
        let notification_ids: Vec<String> = self
            .users
            .expanded_campaigns()
            .await?
            .iter()
            .map(|campaign| notification_id(campaign, id))
            .collect();
        let event = UserErased {
            user_id: id,
            notification_ids,
            address_hash: Some(address_hash(&user.email)),
        };
        self.publisher
            .publish(self.streams.erasures.name(), &Envelope::new(&event)?)
            .await?;
        let streams: Vec<String> = self
            .streams
            .all()
            .iter()
            .flat_map(|stream| stream.partitions().to_vec())
            .collect();
        let mut redis = self.redis.clone();
        let Erased {
            trimmed,
            dead_letters,
            in_flight,
        } = eventstore::erase::erase(&mut redis, &streams, user.email.as_bytes()).await?;
        self.users.erase(id, &user.email).await?;
        tracing::info!(user_id = id, trimmed, dead_letters, in_flight, "user erased");
        Ok(Some(Erasure {
            user_id: id,
            notifications: event.notification_ids.len(),
            entries_trimmed: trimmed,
            dead_letters_deleted: dead_letters,
            entries_in_flight: in_flight,
        }))
    }
}
