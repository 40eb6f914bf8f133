//! Answering a batch of stream entries ([`eventstore::Handler::handle_batch`])
//! entry by entry, while their effects share one database transaction or
//! one publish pipeline.
//!
//! A batch's entries are settled one by one: one that does not decode is
//! poison on its own; one whose shared write failed is retried with the
//! others of that write; the rest are unaffected.

use std::future::Future;

use eventstore::{Delivery, Envelope, Event, HandleError, Publisher};

/// One answer per entry of a batch, filled in as the entries are settled.
/// Answers not given by the end are a bug of the handler: they are retried.
pub struct Answers {
    answers: Vec<Option<Result<(), HandleError>>>,
}

impl Answers {
    /// Room for the answers of `len` entries.
    pub fn new(len: usize) -> Self {
        Self {
            answers: (0..len).map(|_| None).collect(),
        }
    }

    /// Answers entry `index`, unless it has an answer already.
    pub fn answer(&mut self, index: usize, answer: Result<(), HandleError>) {
        self.answers[index].get_or_insert(answer);
    }

    /// Answers each entry of `indexes` with the outcome of one shared write:
    /// success, or a retry naming the write's error.
    pub fn answer_all(&mut self, indexes: impl IntoIterator<Item = usize>, result: &anyhow::Result<()>) {
        for index in indexes {
            let answer = match result {
                Ok(()) => Ok(()),
                Err(error) => Err(HandleError::Retry(anyhow::anyhow!("{error:#}"))),
            };
            self.answer(index, answer);
        }
    }

    /// Publishes the events built for entries of the batch in one pipeline
    /// and answers each of those entries: a retry where its event could not
    /// be built, else the pipeline's outcome (all published, or all
    /// retried).
    pub async fn publish<S: AsRef<str>>(
        &mut self,
        publisher: &Publisher,
        built: impl IntoIterator<Item = (usize, anyhow::Result<(S, Envelope)>)>,
    ) {
        let mut published = Vec::new();
        let mut events = Vec::new();
        for (index, event) in built {
            match event {
                Ok(event) => {
                    published.push(index);
                    events.push(event);
                }
                Err(error) => self.answer(index, Err(HandleError::Retry(error))),
            }
        }
        if events.is_empty() {
            return;
        }
        let result = publisher
            .publish_many(&events)
            .await
            .map(drop)
            .map_err(anyhow::Error::from);
        self.answer_all(published, &result);
    }

    /// The answers, in the entries' order.
    pub fn into_results(self) -> Vec<Result<(), HandleError>> {
        self.answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    Err(HandleError::Retry(anyhow::anyhow!(
                        "the entry was left unanswered"
                    )))
                })
            })
            .collect()
    }
}

/// Decodes each delivery as `E` and returns the decoded events with their
/// indexes in the batch; the entries that do not decode are answered as
/// poison in `answers`.
pub fn decode_each<E: Event>(deliveries: &[Delivery], answers: &mut Answers) -> Vec<(usize, E)> {
    deliveries
        .iter()
        .enumerate()
        .filter_map(|(index, delivery)| match delivery.envelope.decode::<E>() {
            Ok(event) => Some((index, event)),
            Err(error) => {
                answers.answer(index, Err(error.into()));
                None
            }
        })
        .collect()
}

/// The whole of a simple batch handler: decodes each delivery as `E`, runs
/// `write` once on the events that decoded, and answers each entry:
/// poison if it did not decode, else the shared outcome of `write`.
pub async fn decode_then<E, F, Fut>(deliveries: Vec<Delivery>, write: F) -> Vec<Result<(), HandleError>>
where
    E: Event,
    F: FnOnce(Vec<E>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut answers = Answers::new(deliveries.len());
    let (indexes, events): (Vec<usize>, Vec<E>) = decode_each(&deliveries, &mut answers).into_iter().unzip();
    if !events.is_empty() {
        let result = write(events).await;
        answers.answer_all(indexes, &result);
    }
    answers.into_results()
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventstore::Envelope;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Numbered {
        n: u64,
    }

    impl Event for Numbered {
        const TYPE: &'static str = "test.numbered";
        const VERSION: u32 = 1;
    }

    #[derive(Serialize, Deserialize)]
    struct Other {}

    impl Event for Other {
        const TYPE: &'static str = "test.other";
        const VERSION: u32 = 1;
    }

    fn delivery(envelope: Envelope) -> Delivery {
        Delivery {
            entry_id: "1-0".into(),
            envelope,
            deliveries: 1,
        }
    }

    fn batch() -> Vec<Delivery> {
        vec![
            delivery(Envelope::new(&Numbered { n: 1 }).unwrap()),
            delivery(Envelope::new(&Other {}).unwrap()),
            delivery(Envelope::new(&Numbered { n: 3 }).unwrap()),
        ]
    }

    fn kinds(results: &[Result<(), HandleError>]) -> Vec<&'static str> {
        results
            .iter()
            .map(|result| match result {
                Ok(()) => "ok",
                Err(HandleError::Retry(_)) => "retry",
                Err(HandleError::Poison(_)) => "poison",
                Err(HandleError::Later(..)) => "later",
            })
            .collect()
    }

    #[tokio::test]
    async fn each_entry_is_answered_on_its_own_and_the_write_is_shared() {
        let results = decode_then(batch(), |events: Vec<Numbered>| async move {
            assert_eq!(events, vec![Numbered { n: 1 }, Numbered { n: 3 }]);
            Ok(())
        })
        .await;
        assert_eq!(kinds(&results), vec!["ok", "poison", "ok"]);
    }

    #[tokio::test]
    async fn a_failed_write_retries_its_entries_and_only_them() {
        let results = decode_then(batch(), |_: Vec<Numbered>| async { anyhow::bail!("disk full") }).await;
        assert_eq!(kinds(&results), vec!["retry", "poison", "retry"]);
        let Err(HandleError::Retry(error)) = &results[0] else {
            unreachable!()
        };
        assert!(error.to_string().contains("disk full"));
    }

    #[test]
    fn an_unanswered_entry_is_retried() {
        let mut answers = Answers::new(2);
        answers.answer(1, Ok(()));
        assert_eq!(kinds(&answers.into_results()), vec!["retry", "ok"]);
    }
}
