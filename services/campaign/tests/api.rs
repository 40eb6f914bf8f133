//! campaign-service's HTTP API against a real Redis and SQLite: status
//! codes, JSON errors, and the bearer token of `prod`.

mod common;

use campaign_service::config::Config;
use serde_json::{json, Value};
use testkit::http::call;
use testkit::{RedisServer, ServiceHome};

/// campaign-service in `app_env` with `api_token`.
async fn spawn_app(app_env: &str, api_token: &str) -> anyhow::Result<ServiceHome> {
    spawn_app_with(app_env, api_token, |_| {}).await
}

/// [`spawn_app`], with the configuration changed by `adjust` next.
async fn spawn_app_with(
    app_env: &str,
    api_token: &str,
    adjust: impl FnOnce(&mut Config),
) -> anyhow::Result<ServiceHome> {
    let app_env = app_env.parse()?;
    common::spawn_app(|config| {
        config.app_env = app_env;
        config.api_token = api_token.into();
        adjust(config);
    })
    .await
}

/// GETs `path` from `app` without a token; returns status and JSON body.
async fn get(app: &ServiceHome, path: &str) -> (u16, Value) {
    call("GET", app.url(path), None, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_are_created_and_bad_input_gets_a_json_error() {
    let app = spawn_app("dev", "").await.unwrap();

    let (status, demo) = get(&app, "/api/v1/campaign/create").await;
    assert_eq!(status, 201);
    let id = demo["id"].as_str().unwrap().to_string();
    assert_eq!(demo["status"], "expanding");
    assert_eq!(
        demo["progress"],
        json!({ "total": 0, "sent": 0, "failed": 0, "dead_lettered": 0, "suppressed": 0, "cancelled": 0, "pending": 0 })
    );

    let body = r#"{"name": "Spring", "subject": "Hi {{ name }}", "body": "Dear {{ name }}"}"#;
    let (status, created) = call("POST", app.url("/api/v1/campaigns"), None, Some(body)).await;
    assert_eq!(status, 201);
    assert_eq!(created["name"], "Spring");

    let (status, one) = get(&app, &format!("/api/v1/campaigns/{id}")).await;
    assert_eq!((status, one["id"].as_str()), (200, Some(id.as_str())));
    let (status, list) = get(&app, "/api/v1/campaigns").await;
    assert_eq!((status, list["campaigns"].as_array().unwrap().len()), (200, 2));
    assert_eq!(list["next_after"], Value::Null);
    // A page at a time, the newest first.
    let (_, first) = get(&app, "/api/v1/campaigns?limit=1").await;
    let next = first["next_after"].as_str().expect("a next page").to_string();
    assert_eq!(first["campaigns"][0]["id"].as_str(), Some(next.as_str()));
    let (_, second) = get(&app, &format!("/api/v1/campaigns?limit=1&after={next}")).await;
    assert_eq!(second["campaigns"][0]["id"], list["campaigns"][1]["id"]);
    let (status, error) = get(&app, "/api/v1/campaigns?after=nope").await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("after: no campaign with id nope"))
    );
    // A campaign id that names no campaign: there is no such page.
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (status, error) = get(&app, &format!("/api/v1/campaigns?after={unknown}")).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (
            404,
            Some(format!("after: no campaign with id {unknown}").as_str())
        )
    );

    for (body, expected) in [
        ("{not json", "Failed to parse the request body as JSON"),
        (r#"{"name": "x"}"#, "missing field `subject`"),
        (
            r#"{"name": "", "subject": "s", "body": "b"}"#,
            "name must not be empty",
        ),
        (
            r#"{"name": "n", "subject": "{{ oops", "body": "b"}"#,
            "subject is not a valid template",
        ),
    ] {
        let (status, error) = call("POST", app.url("/api/v1/campaigns"), None, Some(body)).await;
        assert!((400..500).contains(&status), "{body}: {status}");
        let message = error["error"]
            .as_str()
            .unwrap_or_else(|| panic!("JSON error for {body}: {error}"));
        assert!(message.contains(expected), "{body}: {message}");
    }
    let huge = format!(
        r#"{{"name": "n", "subject": "s", "body": "{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let (status, error) = call("POST", app.url("/api/v1/campaigns"), None, Some(&huge)).await;
    assert_eq!(status, 413, "{error}");
    assert!(error["error"].as_str().is_some(), "{error}");
    let (status, error) = get(&app, "/api/v1/nothing-here").await;
    assert_eq!((status, error["error"].as_str()), (404, Some("no such route")));
    let (status, error) = get(&app, "/api/v1/campaigns/nope").await;
    assert_eq!(
        (status, error["error"].as_str()),
        (404, Some("no campaign with id nope"))
    );
    let (status, _) = get(&app, "/api/v1/campaigns?limit=0").await;
    assert_eq!(status, 400);
    let (status, error) = get(&app, "/api/v1/dead-letters?stream=nope").await;
    assert_eq!(status, 400, "{error}");
    let replay = app.url("/api/v1/dead-letters/replay?stream=comms:emails&id=oops");
    let (status, error) = call("POST", replay, None, None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (
            400,
            Some("invalid stream id `oops`: expected <milliseconds>-<sequence>")
        )
    );

    let dashboard = app.url("/");
    let page =
        tokio::task::spawn_blocking(move || ureq::get(&dashboard).call().unwrap().into_string().unwrap())
            .await
            .unwrap();
    assert!(
        page.contains("<h2>Campaigns</h2>") && page.contains("/dashboard/dashboard.js"),
        "the dashboard is served"
    );

    let (status, streams) = get(&app, "/api/v1/streams").await;
    assert_eq!(status, 200);
    assert_eq!(streams[0]["stream"], "comms:campaigns");
    assert_eq!(streams[0]["length"], 2, "both campaigns were announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_that_cannot_render_within_their_bounds_are_refused_at_creation() {
    let app = spawn_app("dev", "").await.unwrap();
    let chars = "x".repeat(1000);
    let nested_loops = format!(
        "{{% for i in '{chars}' %}}{{% for j in '{chars}' %}}{{{{ i }}}}{{% endfor %}}{{% endfor %}}"
    );
    let oversized = format!("{{% for i in [1, 2, 3] %}}{}{{% endfor %}}", "x".repeat(99_000));
    let hostile = r#"{% set a = "x"*100000000 %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a|length }}"#;
    for (subject, body, expected) in [
        (
            "Hi {{ name }}",
            "Dear {{ nope }}",
            "body uses an undefined variable",
        ),
        ("Hi {{ user.name }}", "b", "subject uses an undefined variable"),
        (
            "s",
            r#"{% if name != "Ada Lovelace" %}{{ nope }}{% endif %}"#,
            "body uses an undefined variable (templates see `name`, `email` and `unsubscribe_url`): nope",
        ),
        (
            "s",
            hostile,
            "body uses `set` statements, which templates may not use",
        ),
        ("{{ name * 100 }}", "b", "subject uses the `*` operator"),
        ("s", &oversized, "body renders to more than 200000 bytes"),
        ("s", &nested_loops, "body is too costly to render"),
        (&"s".repeat(501), "b", "subject must be at most 500 characters"),
        (
            "s",
            &"b".repeat(100_001),
            "body must be at most 100000 characters",
        ),
    ] {
        let request = json!({ "name": "n", "subject": subject, "body": body }).to_string();
        // A preview refuses them the same way, before anything is created.
        for path in ["/api/v1/campaigns/preview", "/api/v1/campaigns"] {
            let (status, error) = call("POST", app.url(path), None, Some(&request)).await;
            let message = error["error"].as_str().unwrap_or_default();
            assert_eq!(status, 400, "{path}: {expected}: {error}");
            assert!(message.contains(expected), "{path}: {expected}: {message}");
        }
    }
    // Conditions, loops and filters are what templates are made of.
    let body = r#"{% if name is startingwith("g") %}To {{ email }}{% endif %}{% for word in name|split %} {{ loop.index }}:{{ word|upper }}{% endfor %}"#;
    let request = json!({ "subject": "Hi {{ name|title }}", "body": body, "name": "grace hopper", "email": "grace@example.com" });
    let (status, preview) = call(
        "POST",
        app.url("/api/v1/campaigns/preview"),
        None,
        Some(&request.to_string()),
    )
    .await;
    assert_eq!(
        (status, preview),
        (
            200,
            json!({
                "subject": "Hi Grace Hopper",
                "body": format!(
                    "To grace@example.com 1:GRACE 2:HOPPER{}",
                    templates::footer(templates::SAMPLE_UNSUBSCRIBE_URL)
                ),
                "html": null
            })
        )
    );
    // An HTML body: escaped values, and the text derived from it.
    let request = json!({ "subject": "Hi", "html": "<p>Dear {{ name }}</p>", "name": "<b>&\"" });
    let (status, preview) = call(
        "POST",
        app.url("/api/v1/campaigns/preview"),
        None,
        Some(&request.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["body"],
        format!(
            "Dear <b>&\"\n{}",
            templates::footer(templates::SAMPLE_UNSUBSCRIBE_URL)
        )
    );
    assert_eq!(
        preview["html"],
        format!(
            "<p>Dear &lt;b&gt;&amp;&quot;</p>\n{}",
            templates::html::footer(templates::SAMPLE_UNSUBSCRIBE_URL)
        )
    );
    let (_, list) = get(&app, "/api/v1/campaigns").await;
    assert_eq!(list["campaigns"], json!([]), "nothing refused was stored");
    let (_, streams) = get(&app, "/api/v1/streams").await;
    assert_eq!(streams[0]["length"], 0, "nothing refused was announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_id_held_by_two_partitions_is_replayed_only_when_one_is_named() {
    let app = spawn_app_with("dev", "", |config| config.service.stream_partitions = 2)
        .await
        .unwrap();
    // Partitions number their entries on their own: two dead-lettered in
    // the same millisecond.
    for dead in ["comms:emails:{0}:dead", "comms:emails:{1}:dead"] {
        app.redis
            .command(&["XADD", dead, "5-0", "event", "{}", "dead.reason", "test"]);
    }
    let replay = |stream: &str| {
        let stream = stream.replace('{', "%7B").replace('}', "%7D");
        format!("{}/api/v1/dead-letters/replay?stream={stream}&id=5-0", app.base())
    };

    let (status, error) = call("POST", replay("comms:emails"), None, None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (
            409,
            Some(
                "dead letter 5-0 is in more than one partition (comms:emails:{0}, comms:emails:{1}); \
                 name the partition"
            )
        )
    );
    assert_eq!(
        app.redis.command(&["XLEN", "comms:emails:{1}"]),
        ":0",
        "nothing replayed"
    );
    let (status, replayed) = call("POST", replay("comms:emails:{1}"), None, None).await;
    assert_eq!(
        (status, replayed["replayed"].as_str()),
        (200, Some("5-0")),
        "{replayed}"
    );
    assert_eq!(app.redis.command(&["XLEN", "comms:emails:{1}"]), ":1");
    // The other is now the only one: the whole stream finds it.
    let (status, replayed) = call("POST", replay("comms:emails"), None, None).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(app.redis.command(&["XLEN", "comms:emails:{0}"]), ":1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_prod_writes_the_demo_and_dead_letters_need_the_bearer_token() {
    let error = spawn_app("prod", "")
        .await
        .err()
        .expect("prod without a token is refused");
    assert!(error.to_string().contains("API_TOKEN must be set"), "{error}");

    let app = spawn_app("prod", "s3cret-token").await.unwrap();
    let body = r#"{"name": "n", "subject": "s", "body": "b"}"#;

    let (status, error) = call("POST", app.url("/api/v1/campaigns"), None, Some(body)).await;
    assert_eq!(status, 401);
    assert!(error["error"].as_str().unwrap().contains("Bearer"));
    let (status, _) = call("POST", app.url("/api/v1/campaigns"), Some("wrong"), Some(body)).await;
    assert_eq!(status, 401);
    let (status, _) = call(
        "POST",
        app.url("/api/v1/campaigns"),
        Some("s3cret-token"),
        Some(body),
    )
    .await;
    assert_eq!(status, 201);
    // A scheduled campaign's cancel and move are writes too.
    let later = r#"{"name": "n", "subject": "s", "body": "b", "send_at": "2999-01-01T00:00:00Z"}"#;
    let (status, scheduled) = call(
        "POST",
        app.url("/api/v1/campaigns"),
        Some("s3cret-token"),
        Some(later),
    )
    .await;
    assert_eq!(status, 201, "{scheduled}");
    let id = scheduled["id"].as_str().unwrap();
    let moved = r#"{"send_at": "2998-01-01T00:00:00Z"}"#;
    for (path, body) in [("schedule", Some(moved)), ("cancel", None)] {
        let url = app.url(&format!("/api/v1/campaigns/{id}/{path}"));
        let (status, _) = call("POST", url.clone(), None, body).await;
        assert_eq!(status, 401, "{path} needs the token in prod");
        let (status, answer) = call("POST", url, Some("s3cret-token"), body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let (status, _) = get(&app, "/api/v1/campaign/create").await;
    assert_eq!(status, 401, "the demo endpoint needs the token in prod");
    let (status, _) = call(
        "GET",
        app.url("/api/v1/campaign/create"),
        Some("s3cret-token"),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let dead_letters = || app.url("/api/v1/dead-letters?stream=comms:emails");
    let (status, _) = call("GET", dead_letters(), None, None).await;
    assert_eq!(status, 401, "dead-letter payloads are personal data");
    let (status, _) = call("GET", dead_letters(), Some("s3cret-token"), None).await;
    assert_eq!(status, 200);
    let (status, _) = get(&app, "/api/v1/campaigns").await;
    assert_eq!(status, 200, "progress stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dev_a_set_token_guards_the_demo_endpoint_too() {
    let app = spawn_app("dev", "dev-token").await.unwrap();
    let (status, error) = get(&app, "/api/v1/campaign/create").await;
    assert_eq!(status, 401);
    assert!(
        !error.to_string().contains("dev-token"),
        "the token never shows in an answer: {error}"
    );
    let (status, _) = call("GET", app.url("/api/v1/campaign/create"), Some("dev-token"), None).await;
    assert_eq!(status, 201);
}

/// POSTs a campaign with `traceparent` (if any); returns the campaign's id
/// and the `traceparent` answered.
async fn create_traced(base: &str, traceparent: Option<&str>) -> (String, String) {
    let url = format!("{base}/api/v1/campaigns");
    let traceparent = traceparent.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut request = ureq::post(&url);
        if let Some(traceparent) = traceparent {
            request = request.set("traceparent", &traceparent);
        }
        let response = request
            .send_json(json!({ "name": "traced", "subject": "Hi", "body": "Dear {{ name }}" }))
            .expect("201");
        let answered = response
            .header("traceparent")
            .expect("a traceparent answered")
            .to_string();
        let campaign: Value = response.into_json().unwrap();
        (campaign["id"].as_str().unwrap().to_string(), answered)
    })
    .await
    .unwrap()
}

/// The `trace` field of every entry of `stream` about `campaign_id`, read
/// with `redis-cli`.
fn traces_of(redis: &RedisServer, stream: &str, campaign_id: &str) -> Vec<String> {
    let text = redis.entries(stream);
    let lines: Vec<&str> = text.lines().collect();
    // Each entry: its id, then field and value lines; `id` is the campaign.
    let mut traces = Vec::new();
    let (mut id, mut trace) = (None, None);
    for pair in lines.windows(2) {
        match pair[0] {
            "id" => id = Some(pair[1]),
            "trace" => trace = Some(pair[1]),
            "payload" => {
                if id == Some(campaign_id) {
                    traces.push(trace.unwrap_or_default().to_string());
                }
                (id, trace) = (None, None);
            }
            _ => {}
        }
    }
    traces
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_keeps_the_trace_of_its_creating_request_through_re_announcements() {
    keeps_its_trace(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_campaign_keeps_the_trace_of_its_creating_request() {
    let postgres = testkit::Postgres::start();
    keeps_its_trace(Some(postgres.database("campaign"))).await;
}

/// Creates campaigns with and without a `traceparent`, on `database` (by
/// default SQLite), and follows their announcements.
async fn keeps_its_trace(database: Option<String>) {
    // No user-service: every campaign stalls, and is re-announced each
    // 200 ms once its group has settled the last announcement.
    let app = spawn_app_with("dev", "", |config| {
        config.reannounce_ms = 200;
        if let Some(database) = database {
            config.service.database_url = database.into();
        }
    })
    .await
    .unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let given = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let (traced, answered) = create_traced(&app.base(), Some(&given)).await;
    assert_eq!(
        contracts::trace_id_of(&answered).as_deref(),
        Some(trace_id),
        "{answered}"
    );
    // Without a traceparent, or with an invalid one, the trace id is the
    // campaign's id.
    for header in [None, Some("00-not-a-traceparent-01")] {
        let (id, answered) = create_traced(&app.base(), header).await;
        assert_eq!(
            contracts::trace_id_of(&answered),
            Some(id.replace('-', "")),
            "{answered}"
        );
    }
    // The group, created past the announcements, has settled them all.
    let created = app.redis.command(&[
        "XGROUP",
        "CREATE",
        "comms:campaigns",
        contracts::AUDIENCE_GROUP,
        "$",
    ]);
    assert_eq!(created, "+OK");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let traces = loop {
        let traces = traces_of(&app.redis, "comms:campaigns", &traced);
        if traces.len() >= 2 || std::time::Instant::now() > deadline {
            break traces;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(traces.len() >= 2, "announced and re-announced: {traces:?}");
    for trace in &traces {
        assert_eq!(
            contracts::trace_id_of(trace).as_deref(),
            Some(trace_id),
            "{traces:?}"
        );
    }
    assert_eq!(traces[0], answered, "the first announcement is the one answered");
}
