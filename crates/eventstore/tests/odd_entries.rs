//! No entry can wedge a stream: whatever shape an entry has (a field that
//! is not UTF-8, no envelope, a thousand fields, ten megabytes, deleted
//! while pending), the worker handles it or dead-letters it with its bytes,
//! and the stream is trimmed past it.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{eventually, fast_config, node_with, pending, xrange, Numbered, Seen};
use eventstore::{deadletter, trim, Envelope, HandleError, StreamId};

/// Adds an entry of raw `fields` to stream `s`; returns its id.
async fn add_raw(conn: &mut eventstore::Redis, fields: &[(&[u8], &[u8])]) -> String {
    let mut xadd = redis::cmd("XADD");
    xadd.arg("s").arg("*");
    for (name, value) in fields {
        xadd.arg(*name).arg(*value);
    }
    xadd.query_async(conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_is_not_utf8_is_dead_lettered_and_the_stream_trimmed_past_it() {
    let (_redis, target) = node_with(0..3).await;
    let mut conn = target.shared().await.unwrap();
    let odd = [
        add_raw(&mut conn, &[(b"\xff", b"x")]).await,
        add_raw(&mut conn, &[(b"type", b"\xfe\xff"), (b"v", b"1")]).await,
    ];
    common::publish_numbers(&common::publisher(&target).await, "s", 3..6).await;

    let seen: Seen = Seen::default();
    let mut running = common::spawn_recording(&target, fast_config("s", "g", "c1"), &seen);
    running
        .until_handled("the valid entries handled", Duration::from_secs(10), 6)
        .await;
    eventually(
        "both odd entries dead-lettered",
        Duration::from_secs(10),
        || async { running.counters.snapshot().dead_lettered == 2 },
    )
    .await;
    common::until_nothing_pending(&target, "g", Duration::from_secs(5)).await;
    running.stop().await;

    let letters = deadletter::list(&mut conn, "s", 10).await.unwrap();
    let originals: Vec<&str> = letters.iter().map(|letter| letter.original_id.as_str()).collect();
    assert_eq!(originals, odd.iter().map(String::as_str).collect::<Vec<_>>());
    let min = trim::safe_min_id(&mut conn, "s").await.unwrap().unwrap();
    assert!(
        min > StreamId::parse(&odd[1]).unwrap(),
        "the stream can be trimmed past the odd entries: {min}"
    );
    assert_eq!(pending(&target, "s", "g").await, 0);
}

/// Every entry of `stream`, oldest first, as its id and raw fields.
async fn raw_entries(conn: &mut eventstore::Redis, stream: &str) -> Vec<(String, Fields)> {
    let reply: redis::Value = xrange(conn, stream).await;
    let redis::Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .into_iter()
        .map(|entry| {
            let (id, flat): (String, Vec<Vec<u8>>) = redis::from_redis_value(entry).unwrap();
            let pairs = flat
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            (id, pairs)
        })
        .collect()
}

/// Raw field pairs.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The fields of a valid envelope of `Numbered { n }`.
fn envelope_fields(n: u64) -> Fields {
    Envelope::new(&Numbered { n })
        .unwrap()
        .to_fields()
        .into_iter()
        .map(|(name, value)| (name.as_bytes().to_vec(), value.into_bytes()))
        .collect()
}

async fn add_fields(conn: &mut eventstore::Redis, fields: &Fields) -> String {
    let pairs: Vec<(&[u8], &[u8])> = fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
    add_raw(conn, &pairs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_any_shape_are_handled_or_dead_lettered_with_their_bytes() {
    let (_redis, target) = node_with(0..0).await;
    let mut conn = target.shared().await.unwrap();
    let thousand: Fields = (0..1_000u32)
        .map(|i| (format!("f{i}").into_bytes(), i.to_be_bytes().to_vec()))
        .collect();
    let mut ten_megabytes = vec![0xffu8; 10 * 1024 * 1024];
    ten_megabytes[0] = b'{';
    let mut handled_big = envelope_fields(1);
    handled_big.push((b"attachment".to_vec(), vec![b'a'; 10 * 1024 * 1024]));
    let mut clashing = envelope_fields(2);
    clashing.retain(|(name, _)| name != b"payload");
    clashing.push((b"dead.reason".to_vec(), b"\x00".to_vec()));
    let dead: Vec<Fields> = vec![
        thousand,
        vec![(b"payload".to_vec(), ten_megabytes)],
        clashing,
        vec![(Vec::new(), Vec::new())],
    ];
    let mut dead_ids = Vec::new();
    for fields in &dead {
        dead_ids.push(add_fields(&mut conn, fields).await);
    }
    add_fields(&mut conn, &handled_big).await;

    let seen: Seen = Seen::default();
    let mut running = common::spawn_recording(&target, fast_config("s", "g", "c1"), &seen);
    running
        .until_handled("the one valid entry handled", Duration::from_secs(20), 1)
        .await;
    eventually("the others dead-lettered", Duration::from_secs(20), || async {
        running.counters.snapshot().dead_lettered == dead.len() as u64
    })
    .await;
    common::until_nothing_pending(&target, "g", Duration::from_secs(5)).await;
    running.stop().await;

    let letters = deadletter::list(&mut conn, "s", 10).await.unwrap();
    assert_eq!(letters.len(), dead.len());
    for ((letter, fields), id) in letters.iter().zip(&dead).zip(&dead_ids) {
        assert_eq!(&letter.original_id, id);
        let exact: Fields = letter
            .fields_base64
            .iter()
            .map(|(name, value)| (STANDARD.decode(name).unwrap(), STANDARD.decode(value).unwrap()))
            .collect();
        assert!(
            exact == *fields,
            "the dead letter of {id} holds its bytes exactly"
        );
        assert_eq!(letter.fields.len(), fields.len());
    }
    assert!(
        letters[2].reason.contains("missing field `payload`"),
        "{}",
        letters[2].reason
    );

    // Replayed, each is the entry it was, byte for byte.
    let pace = deadletter::Pace {
        max_backlog: 100,
        until: tokio::time::Instant::now() + Duration::from_secs(10),
    };
    let outcome = deadletter::replay_all(&mut conn, "s", pace).await.unwrap();
    assert_eq!((outcome.replayed, outcome.done), (dead.len(), true));
    let stream = raw_entries(&mut conn, "s").await;
    let replayed: Vec<Fields> = stream[stream.len() - dead.len()..]
        .iter()
        .map(|(_, fields)| fields.clone())
        .collect();
    assert!(replayed == dead, "replayed byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_deleted_while_pending_leave_the_pending_list() {
    // A consumer that died holding three entries, one of which is deleted.
    let (redis, target) = node_with(0..3).await;
    redis.command(&["XGROUP", "CREATE", "s", "g", "0"]);
    redis.command(&["XREADGROUP", "GROUP", "g", "gone", "STREAMS", "s", ">"]);
    let held = common::pending_entries(&target, "s", "g").await;
    redis.command(&["XDEL", "s", &held[1].id]);
    // And one a worker holds while it retries, deleted during its backoff.
    let mut conn = target.shared().await.unwrap();
    common::publish_numbers(&common::publisher(&target).await, "s", 3..4).await;

    let seen: Seen = Seen::default();
    let mut config = fast_config("s", "g", "c1");
    config.claim_idle = Duration::from_millis(500);
    let handler = common::recording(&seen, |n, _| {
        std::future::ready(if n == 3 {
            Err(HandleError::Retry(anyhow::anyhow!("away")))
        } else {
            Ok(())
        })
    });
    let mut running = common::Running::spawn(&target, config, handler);
    eventually("3 ran once", Duration::from_secs(10), || async {
        seen.lock().unwrap().contains_key(&3)
    })
    .await;
    let retrying = common::pending_entries(&target, "s", "g")
        .await
        .into_iter()
        .find(|entry| entry.consumer == "c1")
        .unwrap();
    let _: () = redis::cmd("XDEL")
        .arg("s")
        .arg(&retrying.id)
        .query_async(&mut conn)
        .await
        .unwrap();

    running
        .until_handled("the two left by the dead consumer", Duration::from_secs(10), 2)
        .await;
    common::until_nothing_pending(&target, "g", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.stop().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[&3], vec![1], "a deleted entry is not run again");
    assert!(
        !seen.contains_key(&1),
        "the deleted entry of the dead consumer never ran"
    );
    assert_eq!(running.counters.snapshot().dead_lettered, 0);
    assert_eq!(pending(&target, "s", "g").await, 0);
}
