//! HTTP requests as tests send them: every status is an answer to assert
//! on, where ureq makes a 4xx or 5xx an error.

use serde_json::Value;

/// Sends `method` to `url`, as JSON (`content-type: application/json`),
/// with `Authorization: Bearer <token>` when given and `body` when given;
/// the body goes as written, so a test can send JSON that is not valid.
/// Returns the status and the body, whatever the status; panics only when
/// no answer comes.
pub fn send(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut request = ureq::request(method, url).set("content-type", "application/json");
    if let Some(token) = token {
        request = request.set("authorization", &format!("Bearer {token}"));
    }
    let response = match body {
        Some(body) => request.send_string(body),
        None => request.call(),
    };
    let response = match response {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {url}: {error}"),
    };
    let status = response.status();
    (status, response.into_string().expect("a readable body"))
}

/// [`send`] from async code (on a blocking thread): the status and the
/// JSON body, null for a body that is not JSON.
pub async fn call(
    method: &str,
    url: impl Into<String>,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let (method, url) = (method.to_string(), url.into());
    let (token, body) = (token.map(str::to_string), body.map(str::to_string));
    let (status, text) =
        tokio::task::spawn_blocking(move || send(&method, &url, token.as_deref(), body.as_deref()))
            .await
            .expect("the request's thread");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
