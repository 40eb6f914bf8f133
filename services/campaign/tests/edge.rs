//! campaign-service's HTTP edge over a real socket, as a browser would
//! reach it: the `Host` it names (DNS rebinding), the page it comes from
//! (`Origin`, `Sec-Fetch-Site`: forged requests, the demo GET and
//! `replay-all` included, in dev without a token), and the headers that
//! keep its pages from loading or running anything but their own files.

mod common;

use common::spawn_app;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer: status, headers (lowercase names) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `method path` to `port` with exactly the headers given (a
/// browser's `Host`, `Origin`, `Sec-Fetch-Site`: a client library would
/// set its own `Host`), over HTTP/1.1.
async fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect::<Vec<_>>()
        .concat();
    let request = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: 0\r\n{head}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect::<Vec<_>>();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value == "chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// The body of a chunked answer.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 4 + size..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_not_the_service_s_is_refused_with_421() {
    let app = spawn_app(|_| {}).await.unwrap();
    let port = app.port();
    let list = "/api/v1/campaigns";
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "campaign-service:8080".to_string(),
    ] {
        let answer = send(port, "GET", list, &[("host", &host)]).await;
        assert_eq!(answer.status, 200, "{host}");
    }
    // A name that resolves to 127.0.0.1 only through a rebinding attack.
    let answer = send(port, "GET", list, &[("host", "rebind.evil.example:8080")]).await;
    assert_eq!(answer.status, 421);
    let error = answer.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("rebind.evil.example:8080"), "{error}");
    // Every route, the unknown ones and the health check too.
    for path in ["/", "/ready", "/nowhere", "/api-docs/"] {
        let answer = send(port, "GET", path, &[("host", "rebind.evil.example")]).await;
        assert_eq!(answer.status, 421, "{path}");
    }
    // A client sending no Host at all (HTTP/1.0) goes on.
    assert_eq!(send(port, "GET", list, &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_host_and_origin_are_allowed() {
    let app = spawn_app(|config| {
        config.service.site.allowed_hosts = "comms.example.org".into();
        config.service.site.allowed_origins = "https://comms.example.org".into();
    })
    .await
    .unwrap();
    let host = format!("127.0.0.1:{}", app.port());
    let answer = send(
        app.port(),
        "GET",
        "/api/v1/campaigns",
        &[("host", "comms.example.org")],
    )
    .await;
    assert_eq!(answer.status, 200);
    let proxied = [("host", host.as_str()), ("origin", "https://comms.example.org")];
    let answer = send(
        app.port(),
        "POST",
        "/api/v1/dead-letters/replay-all?stream=comms:emails",
        &proxied,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_origin_s_pages_may_read_with_a_token_and_no_other_may() {
    let app = spawn_app(|config| {
        config.service.site.allowed_origins = "https://comms.example.org".into();
    })
    .await
    .unwrap();
    let host = format!("127.0.0.1:{}", app.port());
    let list = "/api/v1/campaigns";
    let preflight = |origin: &'static str| {
        [
            ("host", host.as_str()),
            ("origin", origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ]
    };
    let listed = preflight("https://comms.example.org");
    let answer = send(app.port(), "OPTIONS", list, &listed).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://comms.example.org")
    );
    let allowed = answer.header("access-control-allow-headers").unwrap_or_default();
    assert!(allowed.contains("authorization"), "{allowed}");
    let read = send(
        app.port(),
        "GET",
        list,
        &[("host", &host), ("origin", "https://comms.example.org")],
    )
    .await;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.header("access-control-allow-origin"),
        Some("https://comms.example.org")
    );

    let foreign = preflight("https://evil.example");
    let answer = send(app.port(), "OPTIONS", list, &foreign).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_another_page_are_refused_with_403_and_curl_goes_on() {
    let app = spawn_app(|_| {}).await.unwrap();
    let port = app.port();
    let host = format!("localhost:{port}");
    let own = format!("http://localhost:{port}");
    let replay_all = "/api/v1/dead-letters/replay-all?stream=comms:emails";
    let demo = "/api/v1/campaign/create";

    // A hostile page's form or fetch: its Origin, or its site.
    let from_elsewhere = [("host", host.as_str()), ("origin", "http://evil.example")];
    let same_site_page = [("host", host.as_str()), ("origin", "http://localhost:3000")];
    let cross_site = [("host", host.as_str()), ("sec-fetch-site", "cross-site")];
    let same_site = [("host", host.as_str()), ("sec-fetch-site", "same-site")];
    let opaque = [("host", host.as_str()), ("origin", "null")];
    let read = "/api/v1/dead-letters?stream=comms:emails";
    for (method, path, headers, what) in [
        ("POST", replay_all, &from_elsewhere, "replay-all, foreign origin"),
        ("GET", demo, &from_elsewhere, "demo, foreign origin"),
        ("GET", read, &from_elsewhere, "a read, foreign origin"),
        ("POST", replay_all, &same_site_page, "another port's page"),
        ("POST", replay_all, &cross_site, "replay-all, cross-site"),
        // A link or a redirect to the demo GET: a navigation, no Origin.
        ("GET", demo, &cross_site, "demo, cross-site link"),
        ("GET", demo, &same_site, "demo, same-site link"),
        ("POST", replay_all, &opaque, "opaque origin"),
    ] {
        let answer = send(port, method, path, headers).await;
        assert_eq!(answer.status, 403, "{what}: {}", answer.json());
        assert!(answer.json()["error"].is_string(), "{what}: a JSON error");
    }

    // The dashboard's own button and form, a URL typed in, and curl.
    let own_page = [
        ("host", host.as_str()),
        ("origin", own.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    assert_eq!(send(port, "GET", demo, &own_page).await.status, 201);
    assert_eq!(send(port, "POST", replay_all, &own_page).await.status, 200);
    let typed = [("host", host.as_str()), ("sec-fetch-site", "none")];
    assert_eq!(send(port, "GET", demo, &typed).await.status, 201);
    let curl = [("host", host.as_str()), ("accept", "*/*")];
    assert_eq!(send(port, "GET", demo, &curl).await.status, 201);
    assert_eq!(send(port, "POST", replay_all, &curl).await.status, 200);
    // Reading pages from a link elsewhere still works.
    assert_eq!(send(port, "GET", "/", &cross_site).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_run_only_their_own_files_and_no_answer_can_be_framed_or_sniffed() {
    let app = spawn_app(|_| {}).await.unwrap();
    let port = app.port();
    let host = format!("127.0.0.1:{port}");
    let get = |path: &'static str| {
        let host = host.clone();
        async move { send(port, "GET", path, &[("host", &host)]).await }
    };
    for path in [
        "/",
        "/api-docs/",
        "/api/v1/campaigns",
        "/nowhere",
        "/dashboard/dashboard.js",
    ] {
        let answer = get(path).await;
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"), "{path}");
        let policy = answer.header("content-security-policy").unwrap_or_default();
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(!policy.contains("script-src 'unsafe"), "{path}: {policy}");
        // Nothing from elsewhere but the reads (and the import) of
        // user-service (`USER_SERVICE_URL`) and notification-service
        // (`NOTIFICATION_SERVICE_URL`).
        let elsewhere: Vec<&str> = policy
            .split(';')
            .map(str::trim)
            .filter(|directive| directive.contains("http"))
            .collect();
        assert!(
            elsewhere
                .iter()
                .all(|directive| *directive
                    == "connect-src 'self' http://localhost:8082 http://localhost:8083"),
            "{path}: {policy}"
        );
    }
    let dashboard = get("/").await;
    let policy = dashboard.header("content-security-policy").unwrap();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("style-src 'self';"),
        "{policy}"
    );
    let page = String::from_utf8(dashboard.body).unwrap();
    // No inline handler either (` onclick=`, ...).
    let handler = page.split(" on").skip(1).any(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert!(
        !page.contains("<style") && !page.contains("<script>") && !handler,
        "inline code"
    );
    for file in ["/dashboard/dashboard.js", "/dashboard/dashboard.css"] {
        let answer = get(file).await;
        assert_eq!(answer.status, 200, "{file}");
        assert!(page.contains(file), "the page loads {file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reference_is_served_by_the_service_pinned() {
    let app = spawn_app(|_| {}).await.unwrap();
    let host = format!("127.0.0.1:{}", app.port());
    let page = send(app.port(), "GET", "/api-docs/", &[("host", &host)]).await;
    let page = String::from_utf8(page.body).unwrap();
    assert!(!page.contains("http"), "nothing loaded from elsewhere: {page}");
    assert!(page.contains("/api-docs/scalar.js"), "{page}");
    let script = send(app.port(), "GET", "/api-docs/scalar.js", &[("host", &host)]).await;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.body,
        include_bytes!("../../../crates/servicekit/assets/scalar/standalone.js"),
        "the pinned bundle (crates/servicekit/assets/scalar)"
    );
}
