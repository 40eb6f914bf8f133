//! campaign-service's part of erasing a user (`user.erased` on
//! `comms:erasures`): the failures listed and the webhook events kept
//! under their notifications, and the transactional messages to their
//! address, found by its hash. The messages' ids then go out in an erasure
//! of their own, so that email-service blanks the servers' replies it
//! keeps under them; read again after a crash, each step does the same.

use contracts::consent::UserErased;
use eventstore::{Delivery, Envelope, HandleError, Handler, Publisher};
use servicekit::erasure::Eraser;
use sqlx::AnyPool;

use crate::store::{self, CampaignStore};
use crate::webhooks;

/// What campaign-service keeps under a notification or message id.
const STATEMENTS: &[&str] = &[
    store::ERASE,
    webhooks::store::ERASE,
    store::ERASE_MESSAGES,
    store::ERASE_ATTEMPTS,
];

/// The handler of `comms:erasures`.
#[derive(Clone)]
pub struct UserEraser {
    eraser: Eraser,
    store: CampaignStore,
    publisher: Publisher,
    stream: String,
}

impl UserEraser {
    /// Erases from `db` (the store `store` reads), publishing the erasures
    /// of messages with `publisher` on `stream` (`comms:erasures`).
    pub fn new(db: AnyPool, store: CampaignStore, publisher: Publisher, stream: &str) -> Self {
        Self {
            eraser: Eraser::new(db, STATEMENTS),
            store,
            publisher,
            stream: stream.to_string(),
        }
    }

    /// Handles one entry of `comms:erasures`.
    pub async fn handle(&self, delivery: Delivery) -> Result<(), HandleError> {
        let erased: UserErased = delivery.envelope.decode()?;
        self.eraser.erase(&erased.notification_ids).await?;
        let Some(hash) = erased.address_hash else {
            return Ok(());
        };
        let messages = self.store.messages_to(&hash).await?;
        if messages.is_empty() {
            return Ok(());
        }
        self.eraser.erase(&messages).await?;
        let of_messages = UserErased {
            user_id: erased.user_id,
            notification_ids: messages,
            address_hash: None,
        };
        let envelope = Envelope::new(&of_messages).map_err(anyhow::Error::from)?;
        self.publisher
            .publish(&self.stream, &envelope)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(())
    }
}

/// Each entry of a read on its own.
impl Handler for UserEraser {
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl std::future::Future<Output = Vec<Result<(), HandleError>>> + Send {
        futures::future::join_all(deliveries.into_iter().map(|delivery| self.handle(delivery)))
    }
}
