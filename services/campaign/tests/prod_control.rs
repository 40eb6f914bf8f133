//! In prod, the writes that change a campaign's course or send mail
//! (pause, resume, cancel, resend, test sends, messages, templates,
//! webhooks) and a message's status (it names its address) or the
//! webhooks (their URLs) need the bearer token, against a real
//! Redis and SQLite.

mod common;

use testkit::http::call;

const TOKEN: &str = "s3cret-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_prod_pause_resume_cancel_resend_test_sends_and_messages_need_the_bearer_token() {
    let app = common::spawn_app(|config| {
        config.app_env = "prod".parse().unwrap();
        config.api_token = TOKEN.into();
    })
    .await
    .unwrap();
    let body = r#"{"name": "n", "subject": "s", "body": "b"}"#;
    let (status, created) = call("POST", app.url("/api/v1/campaigns"), Some(TOKEN), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();

    let test = r#"{"to": ["ada@example.com"]}"#;
    for (path, body) in [
        ("pause", None),
        ("resume", None),
        ("cancel", None),
        ("resend", None),
        ("test-send", Some(test)),
    ] {
        let url = app.url(&format!("/api/v1/campaigns/{id}/{path}"));
        let (status, _) = call("POST", url, None, body).await;
        assert_eq!(status, 401, "{path} needs the token in prod");
    }
    let draft = r#"{"to": ["ada@example.com"], "subject": "s", "body": "b"}"#;
    let (status, _) = call("POST", app.url("/api/v1/campaigns/test-send"), None, Some(draft)).await;
    assert_eq!(status, 401, "a draft's test send needs the token in prod");
    let message = r#"{"to": "ada@example.com", "subject": "s", "body": "b"}"#;
    let (status, _) = call("POST", app.url("/api/v1/messages"), None, Some(message)).await;
    assert_eq!(status, 401, "a message needs the token in prod");
    let (status, queued) = call("POST", app.url("/api/v1/messages"), Some(TOKEN), Some(message)).await;
    assert_eq!(status, 202, "{queued}");
    let message_url = app.url(&format!("/api/v1/messages/{}", queued["id"].as_str().unwrap()));
    let (status, _) = call("GET", message_url.clone(), None, None).await;
    assert_eq!(status, 401, "a message's status needs the token in prod");
    let template = r#"{"name": "t", "subject": "s", "body": "b"}"#;
    let (status, _) = call("POST", app.url("/api/v1/templates"), None, Some(template)).await;
    assert_eq!(status, 401, "storing a template needs the token in prod");
    let hook = r#"{"url": "http://127.0.0.1:9/hooks", "events": ["email.sent"]}"#;
    let (status, _) = call("POST", app.url("/api/v1/webhooks"), None, Some(hook)).await;
    assert_eq!(status, 401, "registering a webhook needs the token in prod");
    let (status, _) = call("GET", app.url("/api/v1/webhooks"), None, None).await;
    assert_eq!(status, 401, "the webhooks (their URLs) need the token in prod");
    let (status, registered) = call("POST", app.url("/api/v1/webhooks"), Some(TOKEN), Some(hook)).await;
    assert_eq!(status, 201, "{registered}");
    let hook_url = app.url(&format!(
        "/api/v1/webhooks/{}",
        registered["id"].as_str().unwrap()
    ));
    for (method, url) in [
        ("GET", hook_url.clone()),
        ("DELETE", hook_url.clone()),
        ("GET", format!("{hook_url}/dead")),
        ("POST", format!("{hook_url}/replay")),
    ] {
        let (status, _) = call(method, url.clone(), None, None).await;
        assert_eq!(status, 401, "{method} {url} needs the token in prod");
    }
    let (status, shown) = call("GET", message_url, Some(TOKEN), None).await;
    assert_eq!(
        (status, shown["to"].as_str()),
        (200, Some("ada@example.com")),
        "{shown}"
    );

    // With it, the change is made.
    let url = app.url(&format!("/api/v1/campaigns/{id}/pause"));
    let (status, paused) = call("POST", url, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["status"], "paused");
}
