//! `Answers::publish` against a real Redis: the built events go out in one
//! pipeline and each entry is answered by what happened to its own event.

use eventstore::{Envelope, Event, HandleError, Publisher, RedisTarget};
use serde::{Deserialize, Serialize};
use servicekit::batch::Answers;
use testkit::RedisServer;

#[derive(Serialize, Deserialize)]
struct Numbered {
    n: u64,
}

impl Event for Numbered {
    const TYPE: &'static str = "test.numbered";
    const VERSION: u32 = 1;
}

fn built(n: u64) -> anyhow::Result<(&'static str, Envelope)> {
    Ok(("numbers", Envelope::new(&Numbered { n })?))
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

async fn publisher(redis: &RedisServer) -> Publisher {
    let target = RedisTarget::parse(&redis.url()).unwrap();
    Publisher::new(target.shared().await.unwrap())
}

#[tokio::test]
async fn built_events_are_published_and_an_unbuilt_one_is_retried_alone() {
    let redis = RedisServer::start();
    let publisher = publisher(&redis).await;

    let mut answers = Answers::new(4);
    answers.answer(3, Err(HandleError::Poison("not an event".into())));
    let unbuilt = Err(anyhow::anyhow!("cannot render"));
    answers
        .publish(&publisher, vec![(0, built(0)), (1, unbuilt), (2, built(2))])
        .await;

    assert_eq!(
        kinds(&answers.into_results()),
        vec!["ok", "retry", "ok", "poison"]
    );
    assert_eq!(redis.command(&["XLEN", "numbers"]), ":2");
}

#[tokio::test]
async fn a_failed_pipeline_retries_every_published_entry() {
    let mut redis = RedisServer::start();
    let publisher = publisher(&redis).await;
    redis.kill();

    let mut answers = Answers::new(2);
    answers
        .publish(&publisher, vec![(0, built(0)), (1, built(1))])
        .await;

    let results = answers.into_results();
    assert_eq!(kinds(&results), vec!["retry", "retry"]);
}
