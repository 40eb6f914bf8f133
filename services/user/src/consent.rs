//! Applies consent changes: each `consent.changed` of `comms:consent`
//! (an unsubscribe link, a bounce, the API) becomes a change of the
//! suppression list, and the change is published on `comms:suppressions`
//! for email-service, which checks every recipient as late as the send.
//!
//! Order of effects: the list's row is written, then the change published,
//! then (the worker) the entry acknowledged; a crash in between applies
//! the change again, which changes nothing (the same `at` wins again),
//! and publishes it again, which email-service absorbs the same way.

use contracts::consent::{address_hash, ConsentChanged, SuppressionChanged};
use eventstore::{Delivery, Envelope, Event, HandleError, Partitioned, Publisher};

use crate::store::UserStore;
use crate::suppressions::{Change, SuppressionStore};

/// The handler of `comms:consent`, and what the API publishes there.
#[derive(Clone)]
pub struct Consent {
    users: UserStore,
    list: SuppressionStore,
    publisher: Publisher,
    /// `comms:consent`, where requests go.
    requests: Partitioned,
    /// `comms:suppressions`, where the list's changes go.
    suppressions: Partitioned,
}

impl Consent {
    /// Changes on `list`, resolving users in `users`, publishing with
    /// `publisher` to `consent` (requests) and `suppressions` (changes).
    pub fn new(
        users: UserStore,
        list: SuppressionStore,
        publisher: Publisher,
        consent: Partitioned,
        suppressions: Partitioned,
    ) -> Self {
        Self {
            users,
            list,
            publisher,
            requests: consent,
            suppressions,
        }
    }

    /// The users.
    pub fn users(&self) -> &UserStore {
        &self.users
    }

    /// Publishes `changes` on `comms:consent` in one pipeline; returns once
    /// they are durably there (they apply when this service reads them).
    pub async fn request(&self, changes: &[ConsentChanged]) -> anyhow::Result<()> {
        let stream = self.requests.name().to_string();
        let envelopes = changes
            .iter()
            .map(|change| Ok((stream.clone(), Envelope::new(change)?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        self.publisher.publish_many(&envelopes).await?;
        Ok(())
    }

    /// Handles one entry of `comms:consent`. A change naming a user this
    /// service does not know is acknowledged and logged as unmatched.
    pub async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        if delivery.envelope.event_type != ConsentChanged::TYPE {
            return Ok(());
        }
        let change: ConsentChanged = delivery.envelope.decode()?;
        let address = match (&change.address, change.user_id) {
            (Some(address), _) => address.clone(),
            (None, Some(user_id)) => {
                let Some(user) = self.users.get(user_id).await? else {
                    tracing::warn!(user_id, "consent change for an unknown user: unmatched");
                    return Ok(());
                };
                user.email
            }
            (None, None) => {
                return Err(HandleError::Poison(
                    "a consent change names neither a user nor an address".into(),
                ))
            }
        };
        let applied = self
            .list
            .apply(&Change {
                address: &address,
                user_id: change.user_id,
                suppress: change.suppress,
                reason: change.reason,
                campaign_id: change.campaign_id.as_deref(),
                detail: change.detail.as_deref(),
                at: change.at,
            })
            .await?;
        if !applied {
            tracing::info!(
                at = change.at,
                "a later consent change of this address is applied already"
            );
        }
        let published = SuppressionChanged {
            address_hash: address_hash(&address),
            suppressed: change.suppress,
            reason: change.reason,
            at: change.at,
        };
        let envelope = Envelope::new(&published)
            .map_err(anyhow::Error::from)?
            .traced(delivery.envelope.trace.clone());
        self.publisher
            .publish(self.suppressions.name(), &envelope)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(())
    }
}
