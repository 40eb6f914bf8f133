//! Group commit: many concurrent sends, one database transaction.
//!
//! The emails of a batch are sent concurrently and finish at different
//! times, but writing each send's ledger record in its own transaction
//! would make the database the bottleneck. A [`Batcher`]
//! collects the items submitted while the previous batch was being written
//! and writes them together; each submitter waits for the batch that holds
//! its item, so it still acknowledges its entry only after the write is
//! durable.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

type Reply<R> = oneshot::Sender<Result<R, String>>;

/// A handle to submit items to a background writer.
pub struct Batcher<T, R> {
    items: mpsc::Sender<(T, Reply<R>)>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            items: self.items.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the writer: `write` gets up to `max_batch` items and returns
    /// one result per item, in order. The writer stops when every handle is
    /// dropped.
    pub fn spawn<F, Fut>(max_batch: usize, mut write: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<Vec<R>>> + Send,
    {
        let (items, mut rx) = mpsc::channel::<(T, Reply<R>)>(max_batch * 2);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            while rx.recv_many(&mut batch, max_batch).await > 0 {
                let (values, replies): (Vec<T>, Vec<Reply<R>>) = batch.drain(..).unzip();
                match write(values).await {
                    Ok(results) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(error) => {
                        let message = format!("{error:#}");
                        for reply in replies {
                            let _ = reply.send(Err(message.clone()));
                        }
                    }
                }
            }
        });
        Self { items }
    }

    /// Submits `item` and waits until the batch holding it is written.
    pub async fn submit(&self, item: T) -> anyhow::Result<R> {
        let (reply, result) = oneshot::channel();
        self.items
            .send((item, reply))
            .await
            .map_err(|_| anyhow::anyhow!("the batch writer has stopped"))?;
        result
            .await
            .map_err(|_| anyhow::anyhow!("the batch writer has stopped"))?
            .map_err(|error| anyhow::anyhow!(error))
    }
}

/// Events published by many concurrent handlers, sent to Redis in shared
/// pipelines: a handler waits until its event is in the stream, as with
/// `Publisher::publish`, but the round trip is shared with the others.
pub type PipelinedPublisher = Batcher<(&'static str, eventstore::Envelope), ()>;

/// Starts a [`PipelinedPublisher`] on `publisher`.
pub fn pipelined(publisher: eventstore::Publisher) -> PipelinedPublisher {
    Batcher::spawn(512, move |events: Vec<(&'static str, eventstore::Envelope)>| {
        let publisher = publisher.clone();
        async move {
            publisher.publish_many(&events).await?;
            Ok(vec![(); events.len()])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_submissions_share_batches_and_get_their_own_results() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let batcher = Batcher::spawn(100, move |items: Vec<u32>| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(items.into_iter().map(|n| n * 2).collect())
            }
        });
        let results = futures_join(&batcher, 500).await;
        assert_eq!(results, (0..500).map(|n| n * 2).collect::<Vec<_>>());
        assert!(batches.load(Ordering::SeqCst) < 100, "items were grouped");
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_item_of_its_batch() {
        let batcher = Batcher::spawn(10, |_: Vec<u32>| async {
            anyhow::bail!("disk full") as anyhow::Result<Vec<()>>
        });
        let error = batcher.submit(1).await.unwrap_err();
        assert!(error.to_string().contains("disk full"));
    }

    async fn futures_join(batcher: &Batcher<u32, u32>, n: u32) -> Vec<u32> {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let batcher = batcher.clone();
            tasks.spawn(async move { (i, batcher.submit(i).await.unwrap()) });
        }
        let mut results = tasks.join_all().await;
        results.sort();
        results.into_iter().map(|(_, r)| r).collect()
    }
}
