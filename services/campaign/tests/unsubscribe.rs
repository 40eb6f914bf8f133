//! The unsubscribe link (`/unsubscribe/{token}`, RFC 8058) over a real
//! socket, against a real Redis: the page changes nothing, a one-click
//! POST and a resubscribe each publish one `consent.changed` on
//! `comms:consent` before answering, a token that is altered, malformed or
//! expired is a 400 that publishes nothing, the route takes POSTs from
//! other sites (and no API token, in prod too) while the other writes
//! still refuse them, and a Redis that is away is a 503.

use campaign_service::config::Config;
use contracts::consent::{ConsentChanged, SuppressionReason, CONSENT};
use contracts::unsubscribe::{key_for, TokenError, TokenKey, VALIDITY_SECS};
use eventstore::Envelope;
use serde_json::Value;
use servicekit::app_env::AppEnv;
use servicekit::config::ServiceSettings;
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

const CAMPAIGN: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
const ONE_CLICK: &[(&str, &str)] = &[("List-Unsubscribe", "One-Click")];
const RESUBSCRIBE: &[(&str, &str)] = &[("action", "resubscribe")];
const JSON: (&str, &str) = ("accept", "application/json");

/// The fields of a stream entry.
type Fields = Vec<(String, Vec<u8>)>;

/// A running campaign-service with its own Redis and database.
struct TestApp {
    base: String,
    redis: RedisServer,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// The URL of the link of `token`.
    fn link(&self, token: &str) -> String {
        format!("{}/unsubscribe/{token}", self.base)
    }

    /// Every entry of `comms:consent`, decoded.
    async fn consent_changes(&self) -> Vec<ConsentChanged> {
        let client = redis::Client::open(self.redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let entries: Vec<(String, Fields)> = redis::cmd("XRANGE")
            .arg(CONSENT)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        entries
            .iter()
            .map(|(_, fields)| {
                let envelope = Envelope::from_fields(fields).unwrap();
                assert_eq!(envelope.event_type, "consent.changed");
                envelope.decode().unwrap()
            })
            .collect()
    }
}

/// campaign-service in dev without `UNSUBSCRIBE_KEY` (so on the dev key),
/// adjusted by `adjust`.
async fn spawn_app(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        service: ServiceSettings {
            redis_url: redis.url().into(),
            database_url: format!("sqlite://{}/campaigns.db", dir.path().display()).into(),
            ..ServiceSettings::new(0)
        },
        ..Config::default()
    };
    adjust(&mut config);
    let app = campaign_service::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    TestApp {
        base,
        redis,
        shutdown,
        _dir: dir,
    }
}

/// The key the service uses in dev when `UNSUBSCRIBE_KEY` is unset.
fn dev_key() -> TokenKey {
    key_for(false, "").unwrap()
}

fn now_secs() -> i64 {
    servicekit::now_ms() / 1000
}

/// An answer: status, `Content-Type`, `Content-Security-Policy`, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    policy: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn is_page(&self) -> bool {
        self.content_type.starts_with("text/html")
    }
}

/// The [`Answer`] of `method url`, whatever its status.
fn answer(method: &str, url: &str, response: Result<ureq::Response, ureq::Error>) -> Answer {
    let response = match response {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {url}: {error}"),
    };
    Answer {
        status: response.status(),
        content_type: response.content_type().to_string(),
        policy: response
            .header("content-security-policy")
            .unwrap_or_default()
            .to_string(),
        body: response.into_string().unwrap(),
    }
}

/// Sends `method url` with `headers`, and `form` as a form body when given.
async fn send(method: &str, url: &str, headers: &[(&str, &str)], form: Option<&[(&str, &str)]>) -> Answer {
    let (method, url) = (method.to_string(), url.to_string());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
        .collect();
    let form: Option<Vec<(String, String)>> = form.map(|form| {
        form.iter()
            .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
            .collect()
    });
    tokio::task::spawn_blocking(move || {
        let mut request = ureq::request(&method, &url);
        for (name, value) in &headers {
            request = request.set(name, value);
        }
        let response = match &form {
            Some(form) => {
                let pairs: Vec<(&str, &str)> = form
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect();
                request.send_form(&pairs)
            }
            None => request.call(),
        };
        answer(&method, &url, response)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_of_a_link_asks_to_confirm_and_changes_nothing() {
    let app = spawn_app(|_| {}).await;
    let token = dev_key().sign(42, CAMPAIGN, now_secs());
    // A mail scanner's prefetch, a preview, the recipient's click: all GETs.
    for _ in 0..3 {
        let page = send("GET", &app.link(&token), &[], None).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.is_page(), "{}", page.content_type);
        assert!(
            page.body.contains("Unsubscribe from these emails?"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("<form method=\"post\">")
                && page
                    .body
                    .contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
            "a button that POSTs the one-click body: {}",
            page.body
        );
        assert!(!page.body.contains("<script"), "{}", page.body);
        assert!(page.policy.contains("form-action 'self'"), "{}", page.policy);
        assert!(page.policy.contains("default-src 'none'"), "{}", page.policy);
    }
    assert!(app.consent_changes().await.is_empty(), "a GET publishes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribes_and_resubscribe_takes_it_back_each_published_before_the_answer() {
    let app = spawn_app(|_| {}).await;
    let link = app.link(&dev_key().sign(42, CAMPAIGN, now_secs()));

    let before = servicekit::now_ms();
    let done = send("POST", &link, &[], Some(ONE_CLICK)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.is_page() && done.body.contains("You are unsubscribed"),
        "{}",
        done.body
    );
    assert!(
        done.body.contains("name=\"action\" value=\"resubscribe\"") && done.body.contains("Resubscribe"),
        "{}",
        done.body
    );
    let changes = app.consent_changes().await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = &changes[0];
    assert_eq!(change.user_id, Some(42));
    assert_eq!(change.address, None);
    assert!(change.suppress);
    assert_eq!(change.reason, SuppressionReason::Unsubscribed);
    assert_eq!(change.campaign_id.as_deref(), Some(CAMPAIGN));
    assert!(
        change.at >= before && change.at <= servicekit::now_ms(),
        "{}",
        change.at
    );

    let back = send("POST", &link, &[], Some(RESUBSCRIBE)).await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(back.body.contains("subscribed again"), "{}", back.body);
    assert!(
        back.body.contains("value=\"One-Click\""),
        "the unsubscribe button again"
    );
    let changes = app.consent_changes().await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(!changes[1].suppress);
    assert_eq!(changes[1].reason, SuppressionReason::Unsubscribed);
    assert_eq!(changes[1].user_id, Some(42));
    assert!(changes[1].at >= changes[0].at);

    // A client that asks for JSON gets it; a repeat publishes again.
    let json = send("POST", &link, &[JSON], Some(ONE_CLICK)).await;
    assert_eq!(json.status, 200);
    assert_eq!(json.json(), serde_json::json!({"subscribed": false}));
    assert_eq!(app.consent_changes().await.len(), 3);

    // Any other body is a 400 that changes nothing; a body that is not a
    // form, a 415.
    for other in [
        &[][..],
        &[("List-Unsubscribe", "one-click")],
        &[("action", "unsubscribe")],
        &[("List-Unsubscribe", "One-Click"), ("action", "resubscribe")],
    ] {
        let refused = send("POST", &link, &[JSON], Some(other)).await;
        assert_eq!(refused.status, 400, "{other:?}: {}", refused.body);
        let error = refused.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains("List-Unsubscribe=One-Click"), "{error}");
    }
    let not_a_form = send("POST", &link, &[JSON, ("content-type", "text/plain")], None).await;
    assert_eq!(not_a_form.status, 415, "{}", not_a_form.body);
    assert!(not_a_form.json()["error"].is_string(), "{}", not_a_form.body);
    assert_eq!(app.consent_changes().await.len(), 3);
}

/// Posts `body` as `content_type` to `url`, with a JSON answer asked for.
async fn post_raw(url: &str, content_type: &str, body: &str) -> Answer {
    let (url, content_type, body) = (url.to_string(), content_type.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || {
        let response = ureq::post(&url)
            .set("content-type", &content_type)
            .set("accept", "application/json")
            .send_string(&body);
        answer("POST", &url, response)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_one_click_as_in_rfc_8058s_example_unsubscribes_and_a_broken_one_is_a_400() {
    let app = spawn_app(|_| {}).await;
    let link = app.link(&dev_key().sign(7, CAMPAIGN, now_secs()));
    // RFC 8058, section 8: the body a mail provider posts.
    let boundary = "---FormBoundaryjWmhtjORrn";
    let example = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    let done = post_raw(
        &link,
        &format!("multipart/form-data; boundary={boundary}"),
        &example,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json(), serde_json::json!({"subscribed": false}));
    let changes = app.consent_changes().await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(changes[0].suppress);
    assert_eq!(changes[0].user_id, Some(7));

    // No boundary, or a body cut short: a 400 in the error shape, nothing
    // published.
    for (content_type, body) in [
        ("multipart/form-data", example.as_str()),
        (
            &*format!("multipart/form-data; boundary={boundary}"),
            &example[..40],
        ),
    ] {
        let refused = post_raw(&link, content_type, body).await;
        assert_eq!(refused.status, 400, "{content_type}: {}", refused.body);
        assert!(refused.json()["error"].is_string(), "{}", refused.body);
    }
    assert_eq!(app.consent_changes().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_malformed_foreign_or_expired_token_is_a_400_that_changes_nothing() {
    let app = spawn_app(|_| {}).await;
    let now = now_secs();
    let token = dev_key().sign(42, CAMPAIGN, now);
    let foreign = TokenKey::new(&"f".repeat(32)).unwrap().sign(42, CAMPAIGN, now);
    let expired = dev_key().sign(42, CAMPAIGN, now - VALIDITY_SECS - 60);
    let cases = [
        (token.replacen("42.", "43.", 1), TokenError::Forged),
        (foreign, TokenError::Forged),
        ("42.not-a-token".to_string(), TokenError::Malformed),
        (token.replace('.', "_"), TokenError::Malformed),
        (expired, TokenError::Expired),
    ];
    for (token, problem) in &cases {
        let problem = problem.to_string();
        let problem = problem.as_str();
        let link = app.link(token);
        let page = send("GET", &link, &[], None).await;
        assert_eq!(page.status, 400, "{token}: {}", page.body);
        assert!(
            page.is_page() && page.body.contains(problem),
            "{token}: {}",
            page.body
        );
        let json = send("GET", &link, &[JSON], None).await;
        assert_eq!(json.status, 400, "{token}");
        assert_eq!(json.json()["error"], *problem, "{token}");
        for form in [ONE_CLICK, RESUBSCRIBE] {
            let post = send("POST", &link, &[], Some(form)).await;
            assert_eq!(post.status, 400, "{token}: {}", post.body);
            assert!(post.body.contains(problem), "{token}: {}", post.body);
        }
    }
    assert!(app.consent_changes().await.is_empty(), "nothing published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_takes_posts_from_other_sites_and_no_token_while_other_writes_still_refuse_them() {
    let secret = "p".repeat(40);
    let app = spawn_app(|config| {
        config.app_env = AppEnv::Prod;
        config.api_token = "a-prod-token-of-its-own".to_string().into();
        config.unsubscribe_key = secret.clone().into();
    })
    .await;
    let key = key_for(true, &secret).unwrap();
    let link = app.link(&key.sign(7, CAMPAIGN, now_secs()));
    // A provider's one-click POST, or a webmail page's: another origin, no
    // token, no cookie.
    let elsewhere = [
        ("origin", "https://mail.example"),
        ("sec-fetch-site", "cross-site"),
    ];
    let done = send("POST", &link, &elsewhere, Some(ONE_CLICK)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(send("GET", &link, &elsewhere, None).await.status, 200);
    let changes = app.consent_changes().await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].user_id, Some(7));
    // The dev key's tokens are not prod's.
    let dev_link = app.link(&dev_key().sign(7, CAMPAIGN, now_secs()));
    assert_eq!(send("GET", &dev_link, &[], None).await.status, 400);

    // The other writes keep both checks: the page's origin, then the token.
    let replay_all = format!("{}/api/v1/dead-letters/replay-all?stream=comms:emails", app.base);
    let token = ("authorization", "Bearer a-prod-token-of-its-own");
    let refused = send("POST", &replay_all, &[elsewhere[0], token], None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let refused = send("POST", &replay_all, &[elsewhere[1], token], None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(send("POST", &replay_all, &[], None).await.status, 401);
    assert_eq!(send("POST", &replay_all, &[token], None).await.status, 200);
    assert_eq!(app.consent_changes().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_away_is_a_503_the_recipient_can_retry() {
    let mut app = spawn_app(|_| {}).await;
    let link = app.link(&dev_key().sign(42, CAMPAIGN, now_secs()));
    app.redis.kill();
    let page = send("POST", &link, &[], Some(ONE_CLICK)).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.is_page() && page.body.contains("try again"), "{}", page.body);
    let json = send("POST", &link, &[JSON], Some(ONE_CLICK)).await;
    assert_eq!(json.status, 503, "{}", json.body);
    assert!(json.json()["error"]
        .as_str()
        .unwrap_or_default()
        .contains("nothing changed"));
    // The page needs no Redis: it still verifies the link.
    assert_eq!(send("GET", &link, &[], None).await.status, 200);

    // Back, the retry goes through (once the service has reconnected).
    app.redis.restart();
    let mut answers = Vec::new();
    while answers.last() != Some(&200) {
        assert!(answers.len() < 100, "never accepted again: {answers:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answers.push(send("POST", &link, &[], Some(ONE_CLICK)).await.status);
    }
    assert!(
        answers.iter().all(|status| [200, 503].contains(status)),
        "{answers:?}"
    );
    assert_eq!(app.consent_changes().await.len(), 1, "one change per 200");
}

#[tokio::test]
async fn prod_without_a_key_or_with_a_short_one_does_not_start() {
    for (secret, expected) in [("", "UNSUBSCRIBE_KEY"), ("short", "at least 32 characters")] {
        let config = Config {
            app_env: AppEnv::Prod,
            api_token: "a-prod-token-of-its-own".to_string().into(),
            unsubscribe_key: secret.to_string().into(),
            ..Config::default()
        };
        let Err(error) = campaign_service::build(config).await else {
            panic!("started with {secret:?}");
        };
        let error = format!("{error:#}");
        assert!(error.contains(expected) && !error.contains('\n'), "{error}");
    }
}
