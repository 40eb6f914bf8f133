//! The outcomes a send could not record yet: kept by the instance that
//! sent, for the worker's retry of the entry to record instead of sending
//! again ([`crate::sender`]'s doc says when that window opens and closes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ledger::Final;

/// Final outcomes whose ledger write failed, by notification id, each
/// with whether a batch is recording it right now: what the worker's retry
/// of the entry records instead of sending it again. An id here is never
/// claimed: another request for it, while it is here, is retried later.
#[derive(Clone, Default)]
pub struct Unrecorded(Arc<Mutex<HashMap<String, (Final, bool)>>>);

impl Unrecorded {
    /// Keeps `outcome` for a later retry, not being recorded.
    pub fn keep(&self, outcome: Final) {
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
    pub fn take(&self, ids: &[String]) -> (Vec<Option<Result<Final, ()>>>, Recording) {
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
    pub fn forget(&self, id: &str) {
        self.0.lock().expect("unrecorded outcomes").remove(id);
    }
}

/// The outcomes a batch took from [`Unrecorded`] to record: whatever
/// becomes of the batch (its ledger write fails, or the worker drops it
/// past its timeout), those still there are free for the next retry once
/// it ends.
pub struct Recording {
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
