//! An email with an HTML body reaches a real SMTP server (MailDev) as
//! `multipart/alternative`, the text part first and the HTML second; one
//! without stays a single `text/plain` part; a test send is marked.

mod common;

use email_service::config::Config;
use email_service::mailer::Mailer;
use testkit::MailDev;

use common::email;

fn mailer(server: &MailDev) -> Mailer {
    Mailer::new(&Config {
        smtp_port: server.smtp_port(),
        smtp_timeout_ms: 5_000,
        ..Config::default()
    })
    .unwrap()
}

fn received(server: &MailDev) -> Vec<serde_json::Value> {
    ureq::get(&format!("{}/email", server.api_url()))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

/// The raw message MailDev received, as it came over SMTP.
fn source(server: &MailDev, id: &str) -> String {
    ureq::get(&format!("{}/email/{id}/source", server.api_url()))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

#[tokio::test]
async fn an_html_body_goes_as_multipart_alternative_text_first() {
    let server = MailDev::start();
    let mut request = email("html-1");
    request.body = "Hi Ada, plain".into();
    request.html = Some("<p>Hi <b>Ada</b>, &lt;rich&gt;</p>".into());
    mailer(&server).send(&request, 0, &|| true).await.unwrap();

    let received = received(&server);
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message["text"].as_str().unwrap().trim(), "Hi Ada, plain");
    assert_eq!(
        message["html"].as_str().unwrap().trim(),
        "<p>Hi <b>Ada</b>, &lt;rich&gt;</p>"
    );
    assert_eq!(message["headers"]["x-comms-test"], serde_json::Value::Null);
    let raw = source(&server, message["id"].as_str().unwrap());
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("content-type: multipart/alternative;"), "{raw}");
    let text = lower.find("content-type: text/plain").expect("a text part");
    let html = lower.find("content-type: text/html").expect("an HTML part");
    assert!(text < html, "the text part comes first: {raw}");
    assert!(
        lower.contains("list-unsubscribe: <http://localhost:8080/unsubscribe/t>"),
        "the headers stay on the message: {raw}"
    );
}

#[tokio::test]
async fn a_text_email_stays_one_part_and_a_test_send_is_marked() {
    let server = MailDev::start();
    let mut request = email("text-1");
    request.test = true;
    mailer(&server).send(&request, 0, &|| true).await.unwrap();
    let received = received(&server);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["headers"]["x-comms-test"], "1");
    let raw = source(&server, received[0]["id"].as_str().unwrap()).to_ascii_lowercase();
    assert!(raw.contains("content-type: text/plain"), "{raw}");
    assert!(!raw.contains("multipart"), "{raw}");
    assert!(!raw.contains("text/html"), "{raw}");
}
