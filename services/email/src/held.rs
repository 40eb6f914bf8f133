//! The ledger leases of the sends in progress: renewed together, and each
//! known to be still held, or not, when its send is about to hand the
//! message over.
//!
//! A lease is valid until the end of its last confirmed term: from the
//! moment the statement that took or renewed it was sent, plus the lease
//! duration, on this process's monotonic clock (the database computed the
//! term from its own clock, later than that moment, so the row's term ends
//! no sooner). A renewal that finds the lease taken over, or that fails,
//! ends its validity at once: a send whose lease is not valid stops before
//! `DATA` (see [`crate::mailer::Mailer::send`]), so a send that outlived
//! its lease never goes out beside its successor's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::ledger::{Lease, Ledger};

/// Until when a held lease is known valid; `None` once it is not.
type Term = Arc<Mutex<Option<Instant>>>;

/// The leases of the sends in progress, by notification id: generation and
/// term.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashMap<String, (i64, Term)>>>);

impl InFlight {
    /// Starts renewing the leases in this set on `ledger`, three times per
    /// lease duration, in one statement, until the set is dropped.
    pub fn renew_on(&self, ledger: Ledger) {
        tokio::spawn(renew_leases(ledger, Arc::downgrade(&self.0)));
    }

    /// Holds `lease`, taken by a statement sent at `taken_at` for
    /// `duration`, in the set while its send runs.
    pub fn hold(&self, (id, generation): &Lease, taken_at: Instant, duration: Duration) -> Holding {
        let term: Term = Arc::new(Mutex::new(Some(taken_at + duration)));
        self.0
            .lock()
            .expect("in-flight leases")
            .insert(id.clone(), (*generation, term.clone()));
        Holding {
            in_flight: self.clone(),
            id: id.clone(),
            term,
        }
    }
}

/// A lease in the in-flight set while its send runs; dropped when its
/// outcome is recorded (or its send given back).
pub struct Holding {
    in_flight: InFlight,
    id: String,
    term: Term,
}

impl Holding {
    /// Whether the lease is still this sender's: its last confirmed term
    /// has not ended, and no renewal has failed or found it lost since.
    pub fn is_valid(&self) -> bool {
        self.term
            .lock()
            .expect("lease term")
            .is_some_and(|until| Instant::now() < until)
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.in_flight
            .0
            .lock()
            .expect("in-flight leases")
            .remove(&self.id);
    }
}

/// Renews the leases of the sends in progress every third of a lease
/// duration, until the set is dropped: a renewed lease's term is extended,
/// a lost one's, or every one's when the renewal fails, ended.
async fn renew_leases(ledger: Ledger, in_flight: Weak<Mutex<HashMap<String, (i64, Term)>>>) {
    let duration = ledger.lease_duration();
    let mut ticker = tokio::time::interval(duration / 3);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(in_flight) = in_flight.upgrade() else {
            return;
        };
        let held: Vec<(Lease, Term)> = in_flight
            .lock()
            .expect("in-flight leases")
            .iter()
            .map(|(id, (generation, term))| ((id.clone(), *generation), term.clone()))
            .collect();
        drop(in_flight);
        if held.is_empty() {
            continue;
        }
        let leases: Vec<Lease> = held.iter().map(|(lease, _)| lease.clone()).collect();
        let sent_at = Instant::now();
        match ledger.renew_all(&leases).await {
            Ok(lost) => {
                if !lost.is_empty() {
                    tracing::warn!(
                        lost = lost.len(),
                        "leases lost while their sends ran; those not yet handed over stop"
                    );
                }
                for (lease, term) in &held {
                    let renewed = !lost.contains(lease);
                    *term.lock().expect("lease term") = renewed.then_some(sent_at + duration);
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "renewing send leases failed; sends not yet handed over stop"
                );
                for (_, term) in &held {
                    *term.lock().expect("lease term") = None;
                }
            }
        }
    }
}
