//! The event store of comms: the one place that knows Redis Streams.
//!
//! Services see four things:
//! - [`Envelope`] and [`Event`]: every entry is a versioned envelope with a
//!   JSON payload, decoded into a typed event;
//! - [`Publisher`]: `publish` one event, or thousands in pipelines
//!   (`publish_batch` to one stream, `publish_many` each to its own);
//! - [`Worker`]: a consumer-group member that runs a [`Handler`] on each
//!   entry with at-least-once delivery, claims what dead consumers left,
//!   retries transient failures within a budget in time, gives up on
//!   poison (letting the handler settle it, [`Handler::give_up`]) and
//!   dead-letters it, and survives Redis restarts;
//! - operations for the dashboard and operators: [`stream_stats`],
//!   [`deadletter`] listing and replay, safe [`trim`]ming, and
//!   [`ensure_group`], which says what a group created late can never see;
//! - a [`board`](board::Board) of values every instance reads before each
//!   step (a campaign's pause, say);
//! - a [`lease`](lease::Lease), for the work that one instance of a service
//!   does for all of them (trimming, say);
//! - [`Partitioned`] streams, split so that a Redis Cluster spreads them
//!   over its masters.
//!
//! ```no_run
//! # async fn demo() -> eventstore::Result<()> {
//! use eventstore::{Delivery, Envelope, Event, HandleError, Publisher, RedisTarget, Worker, WorkerConfig};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Hello { name: String }
//! impl Event for Hello { const TYPE: &'static str = "demo.hello"; const VERSION: u32 = 1; }
//!
//! let target = RedisTarget::parse("redis://127.0.0.1:6379")?;
//! let publisher = Publisher::new(target.shared().await?);
//! publisher.publish("demo", &Envelope::new(&Hello { name: "Ada".into() })?).await?;
//!
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let worker = Worker::new(target, WorkerConfig::new("demo", "greeter", "greeter-1"));
//! worker.run(|delivery: Delivery| async move {
//!     let hello: Hello = delivery.envelope.decode()?;
//!     println!("hello, {}", hello.name);
//!     Ok::<(), HandleError>(())
//! }, shutdown).await;
//! # Ok(()) }
//! ```

mod batch;
pub mod board;
mod cluster_link;
mod connection;
pub mod deadletter;
mod entry;
mod envelope;
pub mod erase;
mod error;
mod group;
mod keys;
pub mod lease;
pub mod partition;
pub mod pending;
mod publisher;
pub mod range;
pub mod rate;
mod stats;
pub mod trim;
mod worker;

pub use connection::{redact, Redis, RedisTarget};
pub use deadletter::DeadLetter;
pub use entry::{RawEntry, StreamId};
pub use envelope::{DecodeError, Envelope, Event};
pub use error::{Error, Result};
pub use group::{ensure_group, GroupStart};
pub use keys::{dead_letter_stream, is_dead_letter_stream};
pub use partition::Partitioned;
pub use publisher::Publisher;
pub use stats::{partitioned_stats, stream_stats, ConsumerStats, GroupStats, PartitionStats, StreamStats};
pub use worker::{
    unique_consumer_name, CounterSnapshot, Delivery, HandleError, Handler, Worker, WorkerConfig,
    WorkerCounters,
};
