//! Event store throughput: how many envelopes per second comms can append to a
//! stream, and how many one consumer-group worker can take off it again.
//!
//! The spec gives two directions for the event store: publishing at no less
//! than half the raw `XADD` rate of the same Redis, and consuming at least
//! 100,000 events/s on a 2-core machine. `bench/eventstore.sh` runs this
//! program against a private `redis-server`, next to `redis-benchmark`'s raw
//! `XADD` figure on that same server, so the two can be compared; it can also
//! be run by hand:
//!
//! ```sh
//! cargo run --release -p eventstore --example throughput -- \
//!     --redis-url redis://127.0.0.1:PORT [--events 1000000]
//! ```
//!
//! `--publishers`, `--batch-size`, `--concurrency` and `--readers` override the tuned
//! values below, for experiments.
//!
//! The two stages, each timed on its own:
//! 1. publish: N envelopes through `Publisher::publish_batch`, split between
//!    `PUBLISHERS` concurrent tasks (pipelines of 2,000 `XADD`s each);
//! 2. consume: one `Worker` with a no-op handler reads the N entries as a new
//!    consumer group (`XREADGROUP` → handler → `XACK`), timed from its start
//!    until its counters show N handled (that is, acked).
//!
//! It prints one line of JSON. The stream it uses is deleted first: point it
//! at a server of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use eventstore::{Delivery, Envelope, Event, HandleError, Publisher, RedisTarget, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const STREAM: &str = "bench:throughput";
const GROUP: &str = "bench";
const DEFAULT_EVENTS: u64 = 1_000_000;
/// Concurrent publishing tasks, each on a connection of its own. Publishing is
/// bound by CPU (about 1.5 µs per event in this process and 1.6 µs in Redis,
/// whatever the setting); more tasks keep Redis busy while the next pipeline
/// is encoded. Medians of 10 interleaved runs of 1M events on 2 cores: 1 task
/// 352k/s, 4 tasks 517k/s, 8 tasks 467k/s; 4 tasks sharing one connection ran
/// as fast as 4 with one each (medians 339k/s and 335k/s, 8 busier pairs). The
/// pipeline size (500, 2,000 or 10,000 `XADD`s) did not change the CPU per
/// event.
const PUBLISHERS: usize = 4;
/// Worker tuning for throughput. With the service defaults (256 and 64) a read
/// fetches at most 64 entries: consuming cost about 10 µs of CPU per event
/// (this process and Redis together) and ran at 72-105k/s; with 500 and 1,000
/// it cost 7.7 µs and ran at 123-133k/s in the same runs. Larger values
/// (1,000/1,000, 1,000/2,000, 2,000/4,000) were no faster.
const BATCH_SIZE: usize = 500;
const CONCURRENCY: usize = 1_000;
/// Read loops of the worker: one reads while the other's batch is parsed and
/// dispatched (two workers of one group in one process ran at 235-258k/s
/// where one ran at 155-163k/s, with less CPU per event).
const READERS: usize = 2;
/// Longest the consume stage may take before the run is declared failed.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(600);

/// A typical small event: a notification to send.
#[derive(Serialize, Deserialize)]
struct NotificationRequested {
    campaign_id: u64,
    user_id: u64,
    channel: String,
}

impl Event for NotificationRequested {
    const TYPE: &'static str = "bench.notification_requested";
    const VERSION: u32 = 1;
}

const USAGE: &str = "usage: throughput --redis-url URL [--events N] \
    [--publishers P] [--batch-size B] [--concurrency C] [--readers R]";

struct Args {
    redis_url: String,
    events: u64,
    publishers: usize,
    batch_size: usize,
    concurrency: usize,
    readers: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        redis_url: String::new(),
        events: DEFAULT_EVENTS,
        publishers: PUBLISHERS,
        batch_size: BATCH_SIZE,
        concurrency: CONCURRENCY,
        readers: READERS,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--redis-url" => args.redis_url = value,
            "--events" => args.events = number(&flag, &value)?,
            "--publishers" => args.publishers = number(&flag, &value)?,
            "--batch-size" => args.batch_size = number(&flag, &value)?,
            "--concurrency" => args.concurrency = number(&flag, &value)?,
            "--readers" => args.readers = number(&flag, &value)?,
            _ => bail!("unknown argument {flag}\n{USAGE}"),
        }
    }
    ensure!(!args.redis_url.is_empty(), "--redis-url is required\n{USAGE}");
    ensure!(
        args.events > 0
            && args.publishers > 0
            && args.batch_size > 0
            && args.concurrency > 0
            && args.readers > 0,
        "the counts must be positive\n{USAGE}"
    );
    Ok(args)
}

/// A number; `1_000_000` and `1,000,000` are accepted.
fn number<T: std::str::FromStr>(flag: &str, value: &str) -> anyhow::Result<T> {
    let digits: String = value.chars().filter(|c| !matches!(c, '_' | ',')).collect();
    digits
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag}: `{value}` is not a number"))
}

fn envelopes(count: u64) -> anyhow::Result<Vec<Envelope>> {
    (0..count)
        .map(|n| {
            let event = NotificationRequested {
                campaign_id: 42,
                user_id: 1_000_000 + n,
                channel: "email".into(),
            };
            Ok(Envelope::new(&event)?)
        })
        .collect()
}

/// Deletes the benchmark stream (and with it its consumer groups).
async fn reset_stream(target: &RedisTarget) -> anyhow::Result<()> {
    let mut conn = target.shared().await?;
    redis::cmd("DEL").arg(STREAM).query_async::<()>(&mut conn).await?;
    Ok(())
}

async fn stream_length(target: &RedisTarget) -> anyhow::Result<u64> {
    let mut conn = target.shared().await?;
    Ok(redis::cmd("XLEN").arg(STREAM).query_async(&mut conn).await?)
}

/// Publishes `envelopes` split evenly between `publishers` tasks, each with a
/// connection of its own (connected before the clock starts).
async fn publish(
    target: &RedisTarget,
    envelopes: Vec<Envelope>,
    publishers: usize,
) -> anyhow::Result<Duration> {
    let envelopes = Arc::new(envelopes);
    let share = envelopes.len().div_ceil(publishers);
    let mut connected = Vec::with_capacity(publishers);
    for _ in 0..publishers {
        connected.push(Publisher::new(target.shared().await?));
    }
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for (index, publisher) in connected.into_iter().enumerate() {
        let envelopes = envelopes.clone();
        tasks.spawn(async move {
            let from = (index * share).min(envelopes.len());
            let to = (from + share).min(envelopes.len());
            publisher.publish_batch(STREAM, &envelopes[from..to]).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(start.elapsed())
}

fn worker_config(args: &Args) -> WorkerConfig {
    let mut config = WorkerConfig::new(STREAM, GROUP, "bench-1");
    config.batch_size = args.batch_size;
    config.concurrency = args.concurrency;
    config.readers = args.readers;
    config.block = Duration::from_millis(100);
    config
}

async fn no_op(_delivery: Delivery) -> Result<(), HandleError> {
    Ok(())
}

/// Runs a worker from the start of the stream until it has handled (and
/// acked) `events` entries; returns the time from its start.
async fn consume(target: RedisTarget, config: WorkerConfig, events: u64) -> anyhow::Result<Duration> {
    let worker = Worker::new(target, config);
    let counters = worker.counters();
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let running = tokio::spawn(worker.run(no_op, shutdown.clone()));
    while counters.snapshot().handled < events {
        ensure!(
            !running.is_finished(),
            "the worker stopped early: {:?}",
            counters.snapshot()
        );
        ensure!(
            start.elapsed() < CONSUME_TIMEOUT,
            "consuming took longer than {CONSUME_TIMEOUT:?}: {:?}",
            counters.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    shutdown.cancel();
    running.await?;
    Ok(elapsed)
}

fn per_second(events: u64, elapsed: Duration) -> u64 {
    (events as f64 / elapsed.as_secs_f64()).round() as u64
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let target = RedisTarget::parse(&args.redis_url)?;
    reset_stream(&target).await?;

    let envelopes = envelopes(args.events)?;
    let publish_time = publish(&target, envelopes, args.publishers).await?;
    let length = stream_length(&target).await?;
    ensure!(
        length == args.events,
        "the stream holds {length} entries, not {}",
        args.events
    );

    let consume_time = consume(target, worker_config(&args), args.events).await?;

    println!(
        r#"{{"events":{},"publish_s":{:.3},"publish_per_s":{},"consume_s":{:.3},"consume_per_s":{}}}"#,
        args.events,
        publish_time.as_secs_f64(),
        per_second(args.events, publish_time),
        consume_time.as_secs_f64(),
        per_second(args.events, consume_time),
    );
    Ok(())
}
