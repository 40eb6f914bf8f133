//! The handler of `comms:emails`: send each requested email once, and
//! publish its outcome to `comms:deliveries`.
//!
//! Order of effects: take the ledger lease → send (the lease renewed while
//! it runs) → record the outcome in the ledger → publish it → (the worker)
//! ack. The requests of one read go through these steps together: their
//! leases taken in one transaction, the leased ones sent concurrently over
//! the SMTP pool, their outcomes recorded in one transaction and published
//! in one pipeline. A crash after the server's `250 OK` but before the ledger write is
//! one window that can send a duplicate; it carries the same `Message-ID`.
//!
//! The other is an uncertain send: the message went out and no reply came.
//! The server may have taken it, or not; losing an email is worse than a
//! duplicate that receivers can drop by its `Message-ID`, so it is sent
//! again, but not at once: its lease is kept, not released, so the retry
//! comes only after the lease lapses, when a slow server has long answered.
//!
//! Retrying is the worker's alone (its backoff and retry budget): a
//! transient failure gives the lease back and answers
//! [`HandleError::Retry`]. That holds for a failed ledger write after the
//! server's `250 OK` too, with one thing kept: the outcome itself, in
//! [`Unrecorded`], so that the worker's retry of the entry records it
//! instead of claiming and sending again. The entry stays held by this
//! worker between its retries (the worker keeps it from looking idle), so
//! its retry comes here, where the outcome is; only if this process dies,
//! or Redis is away at the retry and another instance claims the entry,
//! is the outcome lost with it, and the email sent again once its lease
//! lapses: the same window as a crash between the `250 OK` and the write,
//! with the same `Message-ID`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use contracts::{DeliveryStatus, EmailDelivery, EmailRequested};
use eventstore::{Delivery, Envelope, HandleError, Handler, Partitioned, Publisher};
use servicekit::batch::{decode_each, Answers};

use crate::ledger::{Claim, Final, Lease, Ledger};
use crate::mailer::{Mailer, SendError};

/// The leases of the sends in progress, renewed together.
type InFlight = Arc<Mutex<HashMap<String, i64>>>;

/// Holds a lease in the in-flight set while a send runs.
struct Holding {
    in_flight: InFlight,
    id: String,
}

impl Holding {
    fn new(in_flight: &InFlight, (id, generation): &Lease) -> Self {
        in_flight
            .lock()
            .expect("in-flight leases")
            .insert(id.clone(), *generation);
        Self {
            in_flight: in_flight.clone(),
            id: id.clone(),
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.in_flight.lock().expect("in-flight leases").remove(&self.id);
    }
}

/// Final outcomes whose ledger write failed, by notification id, each
/// with whether a batch is recording it right now: what the worker's retry
/// of the entry records instead of sending it again. An id here is never
/// claimed: another request for it, while it is here, is retried later.
#[derive(Clone, Default)]
struct Unrecorded(Arc<Mutex<HashMap<String, (Final, bool)>>>);

impl Unrecorded {
    /// Keeps `outcome` for a later retry, not being recorded.
    fn keep(&self, outcome: Final) {
        let ((id, _), _, _) = &outcome;
        let id = id.clone();
        self.0
            .lock()
            .expect("unrecorded outcomes")
            .insert(id, (outcome, false));
    }

    /// For each of `ids`: its outcome to record now (`Some(Ok)`, marked as
    /// being recorded until the returned guard is dropped), `Some(Err(()))`
    /// when it is here but being recorded already (by another batch, or for
    /// an earlier copy in this one), or `None` when it is not here.
    fn take(&self, ids: &[String]) -> (Vec<Option<Result<Final, ()>>>, Recording) {
        let mut unrecorded = self.0.lock().expect("unrecorded outcomes");
        let mut taken = Vec::new();
        let outcomes = ids
            .iter()
            .map(|id| {
                let (outcome, recording) = unrecorded.get_mut(id)?;
                if *recording {
                    return Some(Err(()));
                }
                *recording = true;
                taken.push(id.clone());
                Some(Ok(outcome.clone()))
            })
            .collect();
        let guard = Recording {
            unrecorded: self.clone(),
            ids: taken,
        };
        (outcomes, guard)
    }

    /// Forgets `id`'s outcome: it is recorded, or its entry given up.
    fn forget(&self, id: &str) {
        self.0.lock().expect("unrecorded outcomes").remove(id);
    }
}

/// The outcomes a batch took from [`Unrecorded`] to record: whatever
/// becomes of the batch (its ledger write fails, or the worker drops it
/// past its timeout), those still there are free for the next retry once
/// it ends.
struct Recording {
    unrecorded: Unrecorded,
    ids: Vec<String>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        let mut unrecorded = self.unrecorded.0.lock().expect("unrecorded outcomes");
        for id in &self.ids {
            if let Some((_, recording)) = unrecorded.get_mut(id) {
                *recording = false;
            }
        }
    }
}

/// The email handler's state.
#[derive(Clone)]
pub struct Sender {
    mailer: Arc<Mailer>,
    ledger: Ledger,
    publisher: Publisher,
    /// `comms:deliveries`, where outcomes go, by recipient.
    deliveries: Partitioned,
    in_flight: InFlight,
    /// Sent (or failed) outcomes that the ledger has not taken yet.
    unrecorded: Unrecorded,
}

/// What became of one request of a batch before its outcome is published.
enum Step {
    /// Answered already (retry or poison): nothing to publish.
    Answered,
    /// Its final outcome, known from the ledger: publish it.
    Known(DeliveryStatus, Option<String>),
    /// Its lease was taken: send it.
    Leased(Lease),
    /// Its outcome is known but not yet in the ledger: record it.
    Unrecorded(Final),
}

impl Sender {
    /// A handler sending with `mailer`, keeping `ledger`, publishing
    /// outcomes with `publisher` to `deliveries`. A transient failure is
    /// retried by the worker within its retry budget; past it,
    /// [`Handler::give_up`] publishes the final `failed`.
    pub fn new(mailer: Mailer, ledger: Ledger, publisher: Publisher, deliveries: Partitioned) -> Self {
        let in_flight = InFlight::default();
        tokio::spawn(renew_leases(ledger.clone(), Arc::downgrade(&in_flight)));
        Self {
            mailer: Arc::new(mailer),
            ledger,
            publisher,
            deliveries,
            in_flight,
            unrecorded: Unrecorded::default(),
        }
    }

    /// Handles the `email.requested` entries of one read: their leases are
    /// taken in one transaction, the leased ones sent concurrently (the
    /// SMTP pool bounds how many at once), their outcomes recorded in one
    /// transaction and published in one pipeline.
    pub async fn handle_requests(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandleError>> {
        let mut answers = Answers::new(deliveries.len());
        let (indexes, emails): (Vec<usize>, Vec<EmailRequested>) =
            decode_each(&deliveries, &mut answers).into_iter().unzip();
        if emails.is_empty() {
            return answers.into_results();
        }
        let ids: Vec<String> = emails.iter().map(|email| email.notification_id.clone()).collect();
        let (remembered, _recording) = self.unrecorded.take(&ids);
        let to_claim: Vec<String> = ids
            .iter()
            .zip(&remembered)
            .filter(|(_, remembered)| remembered.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        let claims = if to_claim.is_empty() {
            Vec::new()
        } else {
            match self.ledger.claim_all(&to_claim).await {
                Ok(claims) => claims,
                Err(error) => {
                    answers.answer_all(indexes, &Err(error));
                    return answers.into_results();
                }
            }
        };
        let mut claims = claims.into_iter();
        let mut steps: Vec<Step> = remembered
            .into_iter()
            .zip(&indexes)
            .zip(&ids)
            .map(|((remembered, &index), id)| {
                let claim = match remembered {
                    Some(Ok(outcome)) => return Step::Unrecorded(outcome),
                    Some(Err(())) => Claim::Busy,
                    None => claims.next().expect("one claim per id claimed"),
                };
                match claim {
                    Claim::Sent => Step::Known(DeliveryStatus::Sent, None),
                    Claim::Failed(detail) => Step::Known(DeliveryStatus::Failed, Some(detail)),
                    Claim::Busy => {
                        let error = anyhow::anyhow!("{id} is being sent or recorded elsewhere");
                        answers.answer(index, Err(HandleError::Retry(error)));
                        Step::Answered
                    }
                    Claim::Acquired(generation) => Step::Leased((id.clone(), generation)),
                }
            })
            .collect();
        self.send_leased(&emails, &indexes, &mut steps, &mut answers)
            .await;

        let built = steps
            .into_iter()
            .zip(emails)
            .zip(&indexes)
            .filter_map(|((step, email), &index)| match step {
                Step::Known(status, detail) => Some((
                    index,
                    outcome_event(&self.deliveries, &deliveries[index], email, status, detail),
                )),
                _ => None,
            });
        answers.publish(&self.publisher, built).await;
        answers.into_results()
    }

    /// Sends the leased emails of a batch concurrently, each holding its
    /// lease in the renewed set until its outcome is recorded, and records
    /// their final outcomes, with those of the batch's `Unrecorded` steps,
    /// in one transaction. Each of these steps becomes `Known` (a final
    /// outcome, to publish) or `Answered` (a retry: the lease is released,
    /// or, after an uncertain send, kept to lapse; or the ledger write
    /// failed, and the outcome waits in [`Unrecorded`] for the retry).
    async fn send_leased(
        &self,
        emails: &[EmailRequested],
        indexes: &[usize],
        steps: &mut [Step],
        answers: &mut Answers,
    ) {
        let leased: Vec<usize> = (0..steps.len())
            .filter(|&i| matches!(steps[i], Step::Leased(_)))
            .collect();
        let holdings: Vec<Holding> = leased
            .iter()
            .map(|&i| match &steps[i] {
                Step::Leased(lease) => Holding::new(&self.in_flight, lease),
                _ => unreachable!("only leased steps"),
            })
            .collect();
        let results = futures::future::join_all(leased.iter().map(|&i| self.send(&emails[i]))).await;
        let mut finals: Vec<(usize, Final)> = Vec::new();
        for (i, step) in steps.iter_mut().enumerate() {
            if matches!(step, Step::Unrecorded(_)) {
                let Step::Unrecorded(outcome) = std::mem::replace(step, Step::Answered) else {
                    unreachable!("only unrecorded steps");
                };
                finals.push((i, outcome));
            }
        }
        for (&i, result) in leased.iter().zip(results) {
            let Step::Leased(lease) = std::mem::replace(&mut steps[i], Step::Answered) else {
                unreachable!("only leased steps");
            };
            let id = &emails[i].notification_id;
            let retry = match result {
                Ok(()) => {
                    finals.push((i, (lease, DeliveryStatus::Sent, None)));
                    continue;
                }
                Err(SendError::Permanent(detail)) => {
                    finals.push((i, (lease, DeliveryStatus::Failed, Some(detail))));
                    continue;
                }
                Err(SendError::Uncertain(detail)) => {
                    tracing::warn!(notification = %id, %detail, "uncertain send; it is sent again once its lease lapses");
                    anyhow::anyhow!("sending {id}: {detail}")
                }
                // Nothing about this recipient: never its final outcome.
                Err(error @ (SendError::Transient(_) | SendError::Connection(_))) => {
                    if let Err(release) = self.ledger.release(&lease).await {
                        tracing::warn!(notification = %id, error = format!("{release:#}"), "cannot release a lease; it lapses instead");
                    }
                    anyhow::anyhow!("sending {id}: {error}")
                }
            };
            answers.answer(indexes[i], Err(HandleError::Retry(retry)));
        }
        if finals.is_empty() {
            return;
        }
        let outcomes: Vec<Final> = finals.iter().map(|(_, outcome)| outcome.clone()).collect();
        let recorded = self.record(&outcomes).await;
        drop(holdings);
        match recorded {
            Ok(()) => {
                for (i, ((id, _), status, detail)) in finals {
                    self.unrecorded.forget(&id);
                    steps[i] = Step::Known(status, detail);
                }
            }
            Err(error) => {
                let error = format!("{error:#}");
                tracing::warn!(
                    outcomes = finals.len(),
                    %error,
                    "recording outcomes failed; they are recorded when the worker retries their entries"
                );
                for (i, outcome) in finals {
                    self.unrecorded.keep(outcome);
                    let retry = anyhow::anyhow!("recording the outcome failed: {error}");
                    answers.answer(indexes[i], Err(HandleError::Retry(retry)));
                }
            }
        }
    }

    /// Records `outcomes` in the ledger in one transaction. An outcome
    /// whose lease was lost meanwhile is not recorded by this sender, but
    /// is still its outcome to publish: the email went out.
    async fn record(&self, outcomes: &[Final]) -> anyhow::Result<()> {
        let recorded = self.ledger.finish_all(outcomes).await?;
        for (((id, _), _, _), recorded) in outcomes.iter().zip(recorded) {
            if !recorded {
                tracing::warn!(notification = %id, "lease lost before the outcome was recorded");
            }
        }
        Ok(())
    }

    /// One attempt to send `email`, measured. A transient failure is the
    /// worker's to retry, after its backoff.
    async fn send(&self, email: &EmailRequested) -> Result<(), SendError> {
        let started = std::time::Instant::now();
        let result = self.mailer.send(email).await;
        metrics::histogram!("comms_smtp_send_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("comms_emails_total", "outcome" => outcome_label(&result)).increment(1);
        result
    }
}

/// How a send attempt ended, as the `outcome` label of
/// `comms_emails_total`.
fn outcome_label(result: &Result<(), SendError>) -> &'static str {
    match result {
        Ok(()) => "sent",
        Err(SendError::Permanent(_)) => "failed",
        Err(SendError::Transient(_)) => "transient",
        Err(SendError::Uncertain(_)) => "uncertain",
        Err(SendError::Connection(_)) => "connection",
    }
}

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

/// The `email.delivery` event of `email`'s outcome, traced as `delivery`
/// was, and the partition of `deliveries` it goes to.
fn outcome_event<'s>(
    deliveries: &'s Partitioned,
    delivery: &Delivery,
    email: EmailRequested,
    status: DeliveryStatus,
    detail: Option<String>,
) -> anyhow::Result<(&'s str, Envelope)> {
    let partition = deliveries.for_key(&email.to_email);
    let id = email.notification_id;
    let event = EmailDelivery {
        notification_id: id.clone(),
        campaign_id: email.campaign_id,
        status,
        detail,
        recipient: Some(email.to_email),
    };
    let envelope =
        Envelope::with_id(&event, format!("delivery:{id}"))?.traced(delivery.envelope.trace.clone());
    Ok((partition, envelope))
}

/// Renews the leases of the sends in progress three times per lease
/// duration, in one statement, until the sender is dropped.
async fn renew_leases(ledger: Ledger, in_flight: Weak<Mutex<HashMap<String, i64>>>) {
    let mut ticker = tokio::time::interval(ledger.lease_duration() / 3);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(in_flight) = in_flight.upgrade() else {
            return;
        };
        let leases: Vec<Lease> = in_flight
            .lock()
            .expect("in-flight leases")
            .iter()
            .map(|(id, generation)| (id.clone(), *generation))
            .collect();
        drop(in_flight);
        match ledger.renew_all(&leases).await {
            Ok(lost) if lost.is_empty() => {}
            Ok(lost) => tracing::warn!(lost = lost.len(), "leases lost while their sends ran"),
            Err(error) => tracing::warn!(error = format!("{error:#}"), "renewing send leases failed"),
        }
    }
}
