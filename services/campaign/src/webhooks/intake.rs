//! The webhooks' consumer group on the outcome streams: each outcome
//! (`comms:deliveries`) and each bounce or complaint (`comms:consent`)
//! becomes an event kept for every endpoint that asked for its kind. A
//! group of its own, so that webhooks never hold up the counts or the
//! sending; with no endpoint registered, it only reads and acknowledges.

use contracts::consent::ConsentChanged;
use contracts::EmailDelivery;
use eventstore::{Delivery, Event as _, HandleError, Handler};
use servicekit::now_ms;

use super::event::{entry_time, Event};
use super::store::{Subscriber, WebhookStore};
use super::subscribers::Subscribers;

/// The handler of the webhooks' group.
#[derive(Clone)]
pub struct Intake {
    store: WebhookStore,
    subscribers: Subscribers,
}

impl Intake {
    /// The intake into `store`, for the endpoints in `subscribers`.
    pub fn new(store: WebhookStore, subscribers: Subscribers) -> Self {
        Self { store, subscribers }
    }

    /// Keeps the events of `deliveries` for their endpoints: one result per
    /// delivery.
    async fn take(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandleError>> {
        let subscribers = match self.subscribers.current().await {
            Ok(subscribers) => subscribers,
            Err(error) => return retry_all(deliveries.len(), &error),
        };
        let mut results = Vec::with_capacity(deliveries.len());
        let mut kept = Vec::new();
        for delivery in &deliveries {
            match event_of(delivery) {
                Ok(Some(event)) => {
                    kept.extend(for_subscribers(&subscribers, &event));
                    results.push(Ok(()));
                }
                Ok(None) => results.push(Ok(())),
                Err(poison) => results.push(Err(poison)),
            }
        }
        if kept.is_empty() {
            return results;
        }
        match self.store.enqueue(&kept, now_ms()).await {
            Ok(()) => results,
            Err(error) => retry_all(deliveries.len(), &error),
        }
    }
}

impl Handler for Intake {
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl std::future::Future<Output = Vec<Result<(), HandleError>>> + Send {
        self.take(deliveries)
    }
}

/// The event of one entry: none for an entry that is no event of a kind
/// (an outcome `cancelled`, an unsubscribe); poison for one that does not
/// decode.
fn event_of(delivery: &Delivery) -> Result<Option<Event>, HandleError> {
    let envelope = &delivery.envelope;
    if envelope.event_type == EmailDelivery::TYPE {
        let outcome: EmailDelivery = envelope.decode()?;
        Ok(Event::of_delivery(&outcome, entry_time(&delivery.entry_id)))
    } else if envelope.event_type == ConsentChanged::TYPE {
        let change: ConsentChanged = envelope.decode()?;
        Ok(Event::of_consent(&change))
    } else {
        Ok(None)
    }
}

/// `event` for each subscriber that asked for its kind and was registered
/// by the time it happened.
pub fn for_subscribers(subscribers: &[Subscriber], event: &Event) -> Vec<(String, Event)> {
    subscribers
        .iter()
        .filter(|subscriber| {
            subscriber.events.contains(&event.kind) && subscriber.created_at <= event.occurred_at
        })
        .map(|subscriber| (subscriber.id.clone(), event.clone()))
        .collect()
}

fn retry_all(count: usize, error: &anyhow::Error) -> Vec<Result<(), HandleError>> {
    (0..count)
        .map(|_| Err(HandleError::Retry(anyhow::anyhow!("{error:#}"))))
        .collect()
}
