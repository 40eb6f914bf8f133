//! `POST /api/v1/messages` and `GET /api/v1/messages/{id}` against a real
//! Redis and SQLite: a message is stored, its email is in `comms:messages`
//! when it is answered, a retry under its `Idempotency-Key` sends nothing
//! more, bad requests are refused naming why with nothing sent, its email's
//! first final outcome settles it, a message whose entry was lost is
//! published again, and one asked for while Redis is away is a 503 with
//! nothing stored; a message to a user id goes to user-service
//! unrendered and learns its address from its outcome.

mod common;

use std::time::{Duration, Instant};

use common::spawn_app;
use contracts::messages::MESSAGE_USERS;
use contracts::{DeliveryStatus, EmailDelivery, Streams, DELIVERIES, MESSAGES, MESSAGE_CAMPAIGN};
use eventstore::{Envelope, Publisher};
use serde_json::{json, Value};
use testkit::ServiceHome;

const CODE: &str = r#"{"to": "ada@example.com", "subject": "Your code, {{ name }}",
    "body": "Code {{ code }} for {{ email }}", "variables": {"code": "482913"}}"#;

/// POSTs `body` to `/api/v1/messages`, with `Idempotency-Key: key` when
/// given; the status and the JSON answer.
async fn send(app: &ServiceHome, key: Option<&str>, body: &str) -> (u16, Value) {
    let (status, _, answer) = common::post_with_key(app, "/api/v1/messages", key, body).await;
    (status, answer)
}

/// How many entries of `comms:messages` have the envelope id `id` (a line
/// of its own in `redis-cli --raw`'s output).
fn emails_of(app: &ServiceHome, id: &str) -> usize {
    app.redis
        .entries(MESSAGES)
        .lines()
        .filter(|line| line.trim() == id)
        .count()
}

/// Publishes `status` as the outcome of message `id`.
async fn outcome(publisher: &Publisher, id: &str, status: DeliveryStatus, n: u32) {
    let outcome = EmailDelivery {
        notification_id: id.to_string(),
        campaign_id: MESSAGE_CAMPAIGN.into(),
        status,
        detail: Some(format!("outcome {n}")),
        recipient: Some("ada@example.com".into()),
        tries: Some(u64::from(n)),
    };
    let envelope = Envelope::with_id(&outcome, format!("delivery:{id}:{n}")).unwrap();
    publisher.publish(DELIVERIES, &envelope).await.unwrap();
}

/// Waits until message `id` has `status`; the message.
async fn wait_status(app: &ServiceHome, id: &str, status: &str) -> Value {
    let start = Instant::now();
    loop {
        let (code, message) =
            testkit::http::call("GET", app.url(&format!("/api/v1/messages/{id}")), None, None).await;
        assert_eq!(code, 200, "{message}");
        if message["status"] == status {
            return message;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{message} never became {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_in_the_stream_when_answered_once_per_key_and_settled_by_its_first_outcome() {
    let app = spawn_app(|_| {}).await.unwrap();

    let (status, queued) = send(&app, Some("reset-42"), CODE).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["status"], "queued");
    let id = queued["id"].as_str().unwrap().to_string();
    let entries = app.redis.entries(MESSAGES);
    assert_eq!(emails_of(&app, &id), 1, "its email is in the stream: {entries}");
    assert!(entries.contains("Code 482913 for ada@example.com"), "{entries}");
    assert!(
        entries.contains("Your code, ada"),
        "the name defaults to the local part: {entries}"
    );
    assert!(
        !entries.contains("unsubscribe"),
        "a message has no unsubscribe link: {entries}"
    );

    // A retry under the key: the same message, no second email.
    let (status, again) = send(&app, Some("reset-42"), CODE).await;
    assert_eq!(
        (status, again["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    assert_eq!(emails_of(&app, &id), 1);
    // The key with another body: refused, naming the message.
    let other = CODE.replace("482913", "000000");
    let (status, refused) = send(&app, Some("reset-42"), &other).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains(&id), "{refused}");
    // Without a key, a second request is a second message.
    let (status, second) = send(&app, None, CODE).await;
    assert_eq!(status, 202, "{second}");
    assert_ne!(second["id"], queued["id"]);

    let message = wait_status(&app, &id, "queued").await;
    assert_eq!(message["to"], "ada@example.com");
    assert_eq!(message["subject"], "Your code, ada");
    assert_eq!(message["settled_at"], Value::Null);

    // The first final outcome stands; a dead letter is replaced by a real
    // outcome, and only it.
    let publisher = common::publisher(&app).await;
    outcome(&publisher, &id, DeliveryStatus::DeadLettered, 1).await;
    wait_status(&app, &id, "dead_lettered").await;
    outcome(&publisher, &id, DeliveryStatus::Sent, 2).await;
    let sent = wait_status(&app, &id, "sent").await;
    assert!(sent["settled_at"].as_i64().unwrap() >= message["created_at"].as_i64().unwrap());
    outcome(&publisher, &id, DeliveryStatus::Failed, 3).await;
    let second_id = second["id"].as_str().unwrap();
    outcome(&publisher, second_id, DeliveryStatus::Suppressed, 4).await;
    let suppressed = wait_status(&app, second_id, "suppressed").await;
    assert_eq!(suppressed["detail"], "outcome 4");
    let sent = wait_status(&app, &id, "sent").await;
    assert_eq!(sent["detail"], "outcome 2", "a later failure changes nothing");
    // Every outcome is an attempt, in order, with email-service's tries.
    let attempts: Vec<(&str, &str, i64)> = sent["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| {
            (
                attempt["outcome"].as_str().unwrap(),
                attempt["detail"].as_str().unwrap(),
                attempt["tries"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("dead_lettered", "outcome 1", 1),
            ("sent", "outcome 2", 2),
            ("failed", "outcome 3", 3)
        ],
        "{sent}"
    );

    let (status, missing) = testkit::http::call("GET", app.url("/api/v1/messages/nope"), None, None).await;
    assert_eq!(status, 404, "{missing}");
    // Messages are no campaign: none is listed.
    let (_, list) = testkit::http::call("GET", app.url("/api/v1/campaigns"), None, None).await;
    assert_eq!(list["campaigns"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_is_refused_naming_why_and_nothing_is_sent() {
    let app = spawn_app(|_| {}).await.unwrap();
    let cases = [
        (
            r#"{"to": "ada@example.com", "subject": "s", "body": "{{ code }} {{ total }}", "variables": {"code": "1"}}"#,
            "total",
        ),
        (
            r#"{"to": "ada@example.com", "subject": "s", "body": "{{ unsubscribe_url }}"}"#,
            "unsubscribe_url",
        ),
        (
            r#"{"to": "Ada <ada@example.com>", "subject": "s", "body": "b"}"#,
            "not a bare address",
        ),
        (r#"{"to": "nobody", "subject": "s", "body": "b"}"#, "nobody"),
        (
            r#"{"to": "ada@example.com", "subject": "s", "body": "b", "variables": {"name": "x"}}"#,
            "recipient",
        ),
        (
            r#"{"to": "ada@example.com", "subject": "s", "body": "b", "variables": {"a-b": "x"}}"#,
            "a-b",
        ),
        (
            r#"{"to": "ada@example.com", "subject": "s\nt", "body": "b"}"#,
            "single line",
        ),
        (r#"{"to": "ada@example.com", "subject": "s"}"#, "body is required"),
        (
            r#"{"to": "ada@example.com", "subject": "{% set a = 1 %}", "body": "b"}"#,
            "set",
        ),
    ];
    for (body, named) in cases {
        let (status, refused) = send(&app, None, body).await;
        assert_eq!(status, 400, "{body}: {refused}");
        let error = refused["error"].as_str().unwrap();
        assert!(error.contains(named), "{body}: {error} should name {named}");
    }
    let (status, refused) = send(&app, Some("has space"), CODE).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(app.redis.entries(MESSAGES).trim(), "", "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_entry_was_lost_is_published_again_with_the_same_id() {
    let app = spawn_app(|_| {}).await.unwrap();
    let (status, queued) = send(&app, None, CODE).await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap();
    // Redis loses the entry (its last second, before a restart).
    app.redis.command(&["DEL", MESSAGES]);
    assert_eq!(emails_of(&app, id), 0);

    let db = servicekit::db::connect(&app.sqlite_url("campaigns.db"), "")
        .await
        .unwrap();
    let store = campaign_service::store::CampaignStore::new(db);
    let publisher = common::publisher(&app).await;
    let streams = Streams::new(1);
    // Not yet: it was published a moment ago.
    campaign_service::messages::reannounce(&store, &publisher, &streams, Duration::from_secs(60)).await;
    assert_eq!(emails_of(&app, id), 0);
    campaign_service::messages::reannounce(&store, &publisher, &streams, Duration::ZERO).await;
    assert_eq!(emails_of(&app, id), 1, "published again, under its own id");
    assert!(app.redis.entries(MESSAGES).contains("Code 482913"));
    // Settled, it is never published again.
    outcome(&publisher, id, DeliveryStatus::Sent, 1).await;
    wait_status(&app, id, "sent").await;
    campaign_service::messages::reannounce(&store, &publisher, &streams, Duration::ZERO).await;
    assert_eq!(emails_of(&app, id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_asked_for_while_redis_is_away_is_a_503_and_nothing_is_stored() {
    let mut app = spawn_app(|_| {}).await.unwrap();
    app.redis.kill();
    let (status, refused) = send(&app, Some("while-away"), CODE).await;
    assert_eq!(status, 503, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("suppression list"),
        "{refused}"
    );
    // Back, the same request is a new message: nothing was kept of it.
    app.redis.restart();
    let start = Instant::now();
    let (status, queued) = loop {
        let (status, answer) = send(&app, Some("while-away"), CODE).await;
        if status != 503 || start.elapsed() > Duration::from_secs(20) {
            break (status, answer);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, 202, "{queued}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_message_keeps_no_copy_of_its_email() {
    let app = spawn_app(|_| {}).await.unwrap();
    let (_, queued) = send(&app, None, CODE).await;
    let id = queued["id"].as_str().unwrap();
    let db = servicekit::db::connect(&app.sqlite_url("campaigns.db"), "")
        .await
        .unwrap();
    let kept = || async {
        let email: String = sqlx::query_scalar("SELECT email FROM messages WHERE id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
        email
    };
    assert!(
        kept().await.contains("482913"),
        "kept while queued, to publish again"
    );
    outcome(&common::publisher(&app).await, id, DeliveryStatus::Sent, 1).await;
    wait_status(&app, id, "sent").await;
    assert_eq!(kept().await, "", "gone once settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_names_a_stored_template_its_latest_version_or_the_one_it_asks_for() {
    let app = spawn_app(|_| {}).await.unwrap();
    let store = |body: Value| {
        let app = &app;
        async move {
            testkit::http::call(
                "POST",
                app.url("/api/v1/templates"),
                None,
                Some(&body.to_string()),
            )
            .await
        }
    };
    let (status, first) = store(json!({"name": "login-code", "subject": "Code for {{ name }}",
        "body": "v1: {{ code }}", "variables": ["code"]}))
    .await;
    assert_eq!((status, first["version"].as_i64()), (201, Some(1)), "{first}");
    let (status, second) = store(json!({"name": "login-code", "subject": "Your code",
        "body": "v2: {{ code }} until {{ until }}", "variables": ["until", "code"]}))
    .await;
    assert_eq!((status, second["version"].as_i64()), (201, Some(2)), "{second}");
    assert_eq!(second["variables"], json!(["code", "until"]));
    // Checked when stored: a variable not declared, a bad name.
    let (status, refused) = store(json!({"name": "x", "subject": "s", "body": "{{ code }}"})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("code"), "{refused}");
    let (status, _) = store(json!({"name": "Bad Name", "subject": "s", "body": "b"})).await;
    assert_eq!(status, 400);
    let (status, latest) =
        testkit::http::call("GET", app.url("/api/v1/templates/login-code"), None, None).await;
    assert_eq!((status, latest["version"].as_i64()), (200, Some(2)), "{latest}");
    let (status, _) = testkit::http::call(
        "GET",
        app.url("/api/v1/templates/login-code/versions/3"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, first_again) = testkit::http::call(
        "GET",
        app.url("/api/v1/templates/login-code/versions/1"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, first_again["body"].as_str()),
        (200, Some("v1: {{ code }}")),
        "{first_again}"
    );
    let (status, _) = testkit::http::call(
        "GET",
        app.url("/api/v1/templates/login-code/versions/0"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 400);

    let latest_message =
        r#"{"to": "ada@example.com", "template": "login-code", "variables": {"code": "7", "until": "noon"}}"#;
    let (status, queued) = send(&app, None, latest_message).await;
    assert_eq!(status, 202, "{queued}");
    let first_message =
        r#"{"to": "bob@example.com", "template": "login-code", "version": 1, "variables": {"code": "8"}}"#;
    let (status, _) = send(&app, None, first_message).await;
    assert_eq!(status, 202);
    let entries = app.redis.entries(MESSAGES);
    assert!(entries.contains("v2: 7 until noon"), "{entries}");
    assert!(
        entries.contains("v1: 8") && entries.contains("Code for bob"),
        "{entries}"
    );

    for (body, named) in [
        (
            r#"{"to": "a@example.com", "template": "login-code", "variables": {"code": "7"}}"#,
            "declares [code, until]",
        ),
        (
            r#"{"to": "a@example.com", "template": "login-code", "version": 1, "variables": {"code": "7", "x": "1"}}"#,
            "gives [code, x]",
        ),
        (
            r#"{"to": "a@example.com", "template": "nope"}"#,
            "no template nope",
        ),
        (
            r#"{"to": "a@example.com", "template": "login-code", "version": 9, "variables": {}}"#,
            "no version 9",
        ),
        (
            r#"{"to": "a@example.com", "template": "login-code", "subject": "s", "variables": {"code": "7", "until": "x"}}"#,
            "not both",
        ),
        (r#"{"to": "a@example.com", "body": "b"}"#, "subject is required"),
    ] {
        let (status, refused) = send(&app, None, body).await;
        assert_eq!(status, 400, "{body}: {refused}");
        assert!(
            refused["error"].as_str().unwrap().contains(named),
            "{body}: {refused}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_a_user_id_goes_unrendered_to_user_service_and_learns_the_address_from_its_outcome() {
    let app = spawn_app(|_| {}).await.unwrap();
    let publisher = common::publisher(&app).await;

    let to_user = r#"{"to": 7, "subject": "Your code, {{ name }}", "body": "Code {{ code }}",
        "variables": {"code": "482913"}}"#;
    let (status, queued) = send(&app, Some("user-7"), to_user).await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_str().unwrap().to_string();
    let to_users = app.redis.entries(MESSAGE_USERS);
    assert_eq!(
        to_users.lines().filter(|line| line.trim() == id).count(),
        1,
        "the message is on comms:message-users: {to_users}"
    );
    assert!(to_users.contains("\"user_id\":7"), "{to_users}");
    assert!(
        to_users.contains("Your code, {{ name }}"),
        "unrendered: {to_users}"
    );
    assert_eq!(
        emails_of(&app, &id),
        0,
        "no email before user-service addresses it"
    );
    let shown = wait_status(&app, &id, "queued").await;
    assert_eq!(shown["to"], "user 7");
    // 7.0 is the integer 7 to JSON Schema, and so to the API.
    let (status, also) = send(&app, None, &to_user.replace("\"to\": 7", "\"to\": 7.0")).await;
    assert_eq!(status, 202, "{also}");
    let also = wait_status(&app, also["id"].as_str().unwrap(), "queued").await;
    assert_eq!(also["to"], "user 7");

    // Checked at the door all the same: a variable the request lacks.
    let (status, refused) = send(&app, None, r#"{"to": 7, "subject": "{{ code }}", "body": "x"}"#).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("code"), "{refused}");

    outcome(&publisher, &id, DeliveryStatus::Sent, 1).await;
    let sent = wait_status(&app, &id, "sent").await;
    assert_eq!(
        sent["to"], "ada@example.com",
        "the outcome brought the address: {sent}"
    );
}
