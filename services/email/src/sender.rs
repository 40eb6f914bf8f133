//! The handler of `comms:emails`: send each requested email once, and
//! publish its outcome to `comms:deliveries`.
//!
//! Before a send, its campaign is looked up on the control board
//! ([`contracts::control`], the whole batch in one round trip): an email
//! of a paused campaign is not sent but answered `held` (its notification
//! waits in notification-service's records until the campaign resumes),
//! one of a cancelled campaign `cancelled`. Either gives its lease back.
//!
//! Before the leases, the sends take their slots under the send limits
//! ([`crate::limits`]), in one round trip for the batch, and each is given
//! its relay ([`crate::relays`]): one without a slot now is answered
//! "later" and touches nothing else; one with a slot waits for it (holding
//! its lease), then for a place among its domain's connections when the
//! domain has a limit ([`crate::domains`]), before its send. A send whose
//! relay failed before anything was handed over gives its lease back and
//! comes again at once for another relay that is up.
//!
//! Order of effects: take the ledger lease → send (the lease renewed while
//! it runs, and checked before `DATA`) → record the outcome in the ledger
//! → publish it → (the worker) ack. The requests of one read go through
//! these steps together: their leases taken in one transaction, the leased
//! ones sent concurrently over the SMTP pool, each outcome recorded as its
//! send ends (by the [`Recorder`], which writes the outcomes that end
//! together in one transaction), all published in one pipeline. A crash
//! after the server's `250 OK` but before the ledger write is one window
//! that can send a duplicate: it spans the sends in flight and the last
//! few milliseconds of outcomes, never a batch, and each duplicate carries
//! the same `Message-ID`.
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use contracts::control::{Control, ControlBoard};
use contracts::{DeliveryStatus, EmailRequested, Streams};
use eventstore::rate::Slot;
use eventstore::{Delivery, Envelope, HandleError, Partitioned, Publisher};
use servicekit::batch::{decode_each, Answers};

use crate::held::InFlight;
use crate::ledger::{Claim, Final, Lease, Ledger};
use crate::limits::SendSlots;
use crate::mailer::{Mailer, SendError};
use crate::outcome::{hard_bounce, outcome_event, outcome_label};
use crate::recorder::Recorder;
use crate::unrecorded::Unrecorded;
use servicekit::suppressed::SuppressedAddresses;

mod handler;

/// The email handler's state.
#[derive(Clone)]
pub struct Sender {
    mailer: Arc<Mailer>,
    ledger: Ledger,
    publisher: Publisher,
    /// `comms:deliveries`, where outcomes go, by recipient.
    deliveries: Partitioned,
    /// The leases of the sends in progress, renewed while they run.
    in_flight: InFlight,
    /// The ledger's writer, recording each outcome as its send ends.
    recorder: Recorder,
    /// Sent (or failed) outcomes that the ledger has not taken yet.
    unrecorded: Unrecorded,
    /// The addresses on the suppression list, checked for each batch.
    suppressed: SuppressedAddresses,
    /// `comms:consent`, where hard bounces go.
    consent: Partitioned,
    /// Which campaigns are paused or cancelled, checked for each batch.
    board: ControlBoard,
    /// The send limits' slots, taken for each batch.
    slots: SendSlots,
}

/// What became of one request of a batch before its outcome is published.
enum Step {
    /// Answered already (retry or poison): nothing to publish.
    Answered,
    /// Its final outcome, known from the ledger: publish it.
    Known(DeliveryStatus, Option<String>),
    /// Its lease was taken: send it at its slot (not before this instant),
    /// through this relay.
    Leased(Lease, Instant, usize),
    /// Its lease was taken, but it is not to be sent (its recipient is
    /// suppressed, its campaign paused or cancelled): give the lease back,
    /// send nothing, publish this outcome and detail.
    NotSent(Lease, DeliveryStatus, String),
    /// Its outcome is known but not yet in the ledger: record it.
    Unrecorded(Final),
}

impl Sender {
    /// A handler sending with `mailer`, keeping `ledger`, skipping the
    /// addresses in `suppressed` and the campaigns stopped on `board`,
    /// within the limits of `slots`, publishing with `publisher` outcomes
    /// to `streams.deliveries` and hard bounces to `streams.consent`. A
    /// transient failure is retried by the worker within its retry budget;
    /// past it, [`Handler::give_up`] publishes the final `failed`.
    pub fn new(
        mailer: Mailer,
        ledger: Ledger,
        publisher: Publisher,
        streams: &Streams,
        suppressed: SuppressedAddresses,
        board: ControlBoard,
        slots: SendSlots,
    ) -> Self {
        let in_flight = InFlight::default();
        in_flight.renew_on(ledger.clone());
        Self {
            mailer: Arc::new(mailer),
            recorder: Recorder::spawn(ledger.clone()),
            ledger,
            publisher,
            deliveries: streams.deliveries.clone(),
            in_flight,
            unrecorded: Unrecorded::default(),
            suppressed,
            consent: streams.consent.clone(),
            board,
            slots,
        }
    }

    /// Handles the `email.requested` entries of one read: their leases are
    /// taken in one transaction, the leased ones sent concurrently (the
    /// SMTP pool bounds how many at once), each outcome recorded as its
    /// send ends, and all published in one pipeline.
    pub async fn handle_requests(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandleError>> {
        let mut answers = Answers::new(deliveries.len());
        let (indexes, emails): (Vec<usize>, Vec<EmailRequested>) =
            decode_each(&deliveries, &mut answers).into_iter().unzip();
        if emails.is_empty() {
            return answers.into_results();
        }
        let ids: Vec<String> = emails.iter().map(|email| email.notification_id.clone()).collect();
        let addresses: Vec<&str> = emails.iter().map(|email| email.to_email.as_str()).collect();
        let suppressed = match self.suppressed.among(&addresses).await {
            Ok(suppressed) => suppressed,
            Err(error) => {
                answers.answer_all(indexes, &Err(error));
                return answers.into_results();
            }
        };
        let controls = match self
            .board
            .of_batch(emails.iter().map(|email| email.campaign_id.as_str()))
            .await
        {
            Ok(controls) => controls,
            Err(error) => {
                answers.answer_all(indexes, &Err(anyhow::Error::from(error)));
                return answers.into_results();
            }
        };
        let (remembered, _recording) = self.unrecorded.take(&ids);
        let to_send: Vec<bool> = remembered
            .iter()
            .zip(&suppressed)
            .zip(&emails)
            .map(|((remembered, suppressed), email)| {
                remembered.is_none() && suppressed.is_none() && !controls.contains_key(&email.campaign_id)
            })
            .collect();
        let reserved_at = Instant::now();
        let slots = match self.slots.for_batch(&emails, &to_send).await {
            Ok(slots) => slots,
            Err(error) => {
                answers.answer_all(indexes, &Err(error.into()));
                return answers.into_results();
            }
        };
        let to_claim: Vec<String> = ids
            .iter()
            .zip(&remembered)
            .zip(&slots)
            .filter(|((_, remembered), slot)| {
                remembered.is_none() && !matches!(slot, Some((Slot::Later(_), _)))
            })
            .map(|((id, _), _)| id.clone())
            .collect();
        let claimed_at = Instant::now();
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
            .zip(suppressed)
            .zip(&emails)
            .zip(&slots)
            .map(|(((((remembered, &index), id), suppressed), email), slot)| {
                let (slot_at, relay) = match slot {
                    Some((Slot::Later(after), _)) => {
                        let later = HandleError::Later(*after, "a slot under the send limits".into());
                        answers.answer(index, Err(later));
                        return Step::Answered;
                    }
                    Some((Slot::In(wait), relay)) => (reserved_at + *wait, *relay),
                    None => (reserved_at, 0),
                };
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
                    Claim::Acquired(generation) | Claim::Resumed(generation) => {
                        let lease = (id.clone(), generation);
                        // A send in flight when its lease lapsed may have
                        // gone out: it finishes, paused or cancelled since.
                        let control = controls
                            .get(&email.campaign_id)
                            .filter(|_| matches!(claim, Claim::Acquired(_)));
                        match (suppressed, control) {
                            (Some(reason), _) => Step::NotSent(
                                lease,
                                DeliveryStatus::Suppressed,
                                format!("on the suppression list ({reason}) at the send"),
                            ),
                            (None, Some(Control::Cancelled)) => Step::NotSent(
                                lease,
                                DeliveryStatus::Cancelled,
                                "the campaign was cancelled before the send".into(),
                            ),
                            (None, Some(Control::Paused)) => {
                                Step::NotSent(lease, DeliveryStatus::Held, "the campaign is paused".into())
                            }
                            (None, None) => Step::Leased(lease, slot_at, relay),
                        }
                    }
                }
            })
            .collect();
        self.give_back_unsent(&mut steps).await;
        self.send_leased(&emails, &indexes, claimed_at, &mut steps, &mut answers)
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

    /// Gives back the leases of the steps of a batch not to be sent, each
    /// now known by its outcome; a lease not given back lapses, and the
    /// entry's next delivery (if any) finds the same reason not to send,
    /// or, resumed, sends.
    async fn give_back_unsent(&self, steps: &mut [Step]) {
        for step in steps.iter_mut() {
            let Step::NotSent(lease, status, detail) = step else {
                continue;
            };
            self.give_back(lease).await;
            *step = Step::Known(*status, Some(std::mem::take(detail)));
        }
    }

    /// Sends the leased emails of a batch concurrently (their leases
    /// taken by a statement sent at `claimed_at`), and records each final
    /// outcome, with those of the batch's `Unrecorded` steps, as it is
    /// known: through the [`Recorder`], so that outcomes ending together
    /// share a write, and a crash loses only the sends still in flight.
    /// Each of these steps becomes `Known` (a final outcome, to publish)
    /// or `Answered` (a retry: the lease is released, or, after an
    /// uncertain send, kept to lapse; or the ledger write failed, and the
    /// outcome waits in [`Unrecorded`] for the retry).
    async fn send_leased(
        &self,
        emails: &[EmailRequested],
        indexes: &[usize],
        claimed_at: Instant,
        steps: &mut [Step],
        answers: &mut Answers,
    ) {
        let work: Vec<(usize, Step)> = steps
            .iter_mut()
            .enumerate()
            .filter(|(_, step)| matches!(step, Step::Leased(..) | Step::Unrecorded(_)))
            .map(|(i, step)| (i, std::mem::replace(step, Step::Answered)))
            .collect();
        let settled = futures::future::join_all(work.into_iter().map(|(i, step)| {
            let email = &emails[i];
            async move {
                let settled = match step {
                    Step::Leased(lease, slot_at, relay) => {
                        self.send_and_record(email, lease, claimed_at, (slot_at, relay))
                            .await
                    }
                    Step::Unrecorded(outcome) => self.record(outcome).await.map_err(HandleError::Retry),
                    _ => unreachable!("only leased and unrecorded steps"),
                };
                (i, settled)
            }
        }))
        .await;
        for (i, settled) in settled {
            match settled {
                Ok((status, detail)) => steps[i] = Step::Known(status, detail),
                Err(again) => answers.answer(indexes[i], Err(again)),
            }
        }
    }

    /// Sends `email` under `lease` at its slot (its wait counted from the
    /// reservation, whatever the claim took since) through its relay; the
    /// lease is held in the renewed set (and checked before `DATA`) until
    /// its outcome is recorded. Its final outcome, or what the worker is
    /// to do with its entry: retry it, or, when its relay failed and
    /// another is up, deliver it again at once for that one to take.
    async fn send_and_record(
        &self,
        email: &EmailRequested,
        lease: Lease,
        claimed_at: Instant,
        (slot_at, relay): (Instant, usize),
    ) -> Result<(DeliveryStatus, Option<String>), HandleError> {
        let holding = self
            .in_flight
            .hold(&lease, claimed_at, self.ledger.lease_duration());
        if slot_at > Instant::now() {
            tokio::time::sleep_until(slot_at.into()).await;
        }
        let _connection = match self.slots.domain_connection(&email.to_email).await {
            Ok(place) => place,
            Err(later) => {
                drop(holding);
                self.give_back(&lease).await;
                return Err(later);
            }
        };
        let id = &email.notification_id;
        let result = self.send(email, relay, &|| holding.is_valid()).await;
        let failover = self.mailer.relays().settle(relay, &result);
        let outcome = match result {
            Ok(()) => {
                self.slots.accepted(&email.to_email);
                (lease, DeliveryStatus::Sent, None)
            }
            Err(SendError::Permanent(detail)) => (lease, DeliveryStatus::Failed, Some(detail)),
            Err(SendError::RecipientRefused(detail)) => {
                // The bounce is on comms:consent before the failure is
                // final: if it cannot be published, the send is retried.
                if let Err(error) = self.report_hard_bounce(email, &detail).await {
                    drop(holding);
                    self.give_back(&lease).await;
                    return Err(retry(format!("reporting the hard bounce of {id}: {error:#}")));
                }
                (lease, DeliveryStatus::Failed, Some(detail))
            }
            Err(SendError::Uncertain(detail)) => {
                tracing::warn!(notification = %id, %detail, "uncertain send; it is sent again once its lease lapses");
                return Err(retry(format!("sending {id}: {detail}")));
            }
            // Nothing about this recipient: never its final outcome.
            Err(error) => {
                if matches!(error, SendError::Throttled(_)) {
                    self.slots.throttled(&email.to_email);
                }
                drop(holding);
                self.give_back(&lease).await;
                return Err(match failover {
                    Some(other) => {
                        HandleError::Later(Duration::ZERO, format!("{error}; failing over to relay {other}"))
                    }
                    None => retry(format!("sending {id}: {error}")),
                });
            }
        };
        let recorded = self.record(outcome).await.map_err(HandleError::Retry);
        drop(holding);
        recorded
    }

    /// Gives `lease` back, so that the send may be taken again at once;
    /// one that cannot be given back lapses instead.
    async fn give_back(&self, lease: &Lease) {
        if let Err(error) = self.ledger.release(lease).await {
            tracing::warn!(notification = %lease.0, error = format!("{error:#}"), "cannot release a lease; it lapses instead");
        }
    }

    /// Records `outcome` in the ledger with the writer's next flush. An
    /// outcome whose lease was lost meanwhile is not recorded by this
    /// sender, but is still its outcome to publish: the email went out. A
    /// failed write keeps it in [`Unrecorded`] for the entry's retry.
    async fn record(&self, outcome: Final) -> anyhow::Result<(DeliveryStatus, Option<String>)> {
        let ((id, _), status, detail) = outcome.clone();
        match self.recorder.record(outcome.clone()).await {
            Ok(recorded) => {
                if !recorded {
                    tracing::warn!(notification = %id, "lease lost before the outcome was recorded");
                }
                self.unrecorded.forget(&id);
                Ok((status, detail))
            }
            Err(error) => {
                let error = format!("{error:#}");
                tracing::warn!(notification = %id, %error, "recording an outcome failed; it is recorded when the worker retries its entry");
                self.unrecorded.keep(outcome);
                anyhow::bail!("recording the outcome failed: {error}")
            }
        }
    }

    /// Publishes that `email`'s address was refused for good (`detail`,
    /// the server's reply): user-service suppresses it as `hard_bounce`.
    async fn report_hard_bounce(&self, email: &EmailRequested, detail: &str) -> anyhow::Result<()> {
        let bounce = Envelope::new(&hard_bounce(email, detail))?;
        self.publisher.publish(self.consent.name(), &bounce).await?;
        Ok(())
    }

    /// One attempt to send `email`, measured. A transient failure is the
    /// worker's to retry, after its backoff.
    async fn send(
        &self,
        email: &EmailRequested,
        relay: usize,
        held: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), SendError> {
        let started = Instant::now();
        let result = self.mailer.send(email, relay, held).await;
        metrics::histogram!("comms_smtp_send_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("comms_emails_total", "outcome" => outcome_label(&result)).increment(1);
        result
    }
}

/// A retry of the worker, saying why.
fn retry(why: String) -> HandleError {
    HandleError::Retry(anyhow::Error::msg(why))
}
