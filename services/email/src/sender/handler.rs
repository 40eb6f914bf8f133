//! How the worker drives the [`Sender`]: each read's requests handed over
//! together, and an entry given up published as `dead_lettered`.

use contracts::{DeliveryStatus, EmailRequested};
use eventstore::{Delivery, HandleError, Handler};

use super::Sender;
use crate::outcome::outcome_event;

/// The worker runs [`Sender::handle_requests`] on the requests of each
/// read; when it gives an entry up (its retry budget spent, or it crashed
/// the process too often) the request is `dead_lettered`, so its
/// notification and campaign are final. The ledger is left as it is: a
/// replayed dead letter may still send once.
impl Handler for Sender {
    fn handle_batch(
        &self,
        deliveries: Vec<Delivery>,
    ) -> impl std::future::Future<Output = Vec<Result<(), HandleError>>> + Send {
        self.handle_requests(deliveries)
    }

    async fn give_up(&self, delivery: Delivery, reason: &str) -> Result<(), HandleError> {
        let email: EmailRequested = delivery.envelope.decode()?;
        self.unrecorded.forget(&email.notification_id);
        let detail = format!("dead-lettered: {reason}");
        metrics::counter!("comms_emails_total", "outcome" => "dead_lettered").increment(1);
        let (stream, envelope) = outcome_event(
            &self.deliveries,
            &delivery,
            email,
            DeliveryStatus::DeadLettered,
            Some(detail),
        )?;
        self.publisher
            .publish(stream, &envelope)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(())
    }
}
