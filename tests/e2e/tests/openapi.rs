//! Each service's OpenAPI document (`/api-docs/openapi.json`) and its
//! browsable reference (`/api-docs/`): an OpenAPI 3 document of the
//! service, listing exactly its routes, with the one error shape on every
//! error answer. `tests/api/schemathesis.sh` checks the services' answers
//! against these documents.

use e2e::Stack;
use serde_json::Value;

/// The routes every service serves.
const SHARED: &[&str] = &["/health", "/metrics", "/ready"];

/// Each service's own routes.
fn own_paths(service: &str) -> &'static [&'static str] {
    match service {
        "campaign-service" => &[
            "/",
            "/api/v1/campaign/create",
            "/api/v1/campaigns",
            "/api/v1/campaigns/events",
            "/api/v1/campaigns/preview",
            "/api/v1/campaigns/test-send",
            "/api/v1/campaigns/{id}",
            "/api/v1/campaigns/{id}/cancel",
            "/api/v1/campaigns/{id}/failures",
            "/api/v1/campaigns/{id}/pause",
            "/api/v1/campaigns/{id}/resend",
            "/api/v1/campaigns/{id}/resume",
            "/api/v1/campaigns/{id}/schedule",
            "/api/v1/campaigns/{id}/test-send",
            "/api/v1/dead-letters",
            "/api/v1/dead-letters/replay",
            "/api/v1/dead-letters/replay-all",
            "/api/v1/messages",
            "/api/v1/messages/{id}",
            "/api/v1/streams",
            "/api/v1/templates",
            "/api/v1/templates/{name}",
            "/api/v1/templates/{name}/versions/{version}",
            "/api/v1/webhooks",
            "/api/v1/webhooks/{id}",
            "/api/v1/webhooks/{id}/dead",
            "/api/v1/webhooks/{id}/replay",
            "/unsubscribe/{token}",
        ],
        "user-service" => &[
            "/api/v1/bounces",
            "/api/v1/suppressions",
            "/api/v1/suppressions/import",
            "/api/v1/suppressions/{address}",
            "/api/v1/users",
            "/api/v1/users/count",
            "/api/v1/users/import",
            "/api/v1/users/{id}",
        ],
        "notification-service" => &[
            "/api/v1/notifications/{id}",
            "/api/v1/campaigns/{id}/export",
            "/api/v1/campaigns/{id}/notifications",
        ],
        "email-service" => &["/api/v1/dkim"],
        other => panic!("unknown service {other}"),
    }
}

/// Every documented error answer (4xx, 5xx) of `document`, as
/// `(path, method, status, schema reference)`.
fn error_responses(document: &Value) -> Vec<(String, String, String, String)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = response["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .unwrap_or("(none)")
                        .to_string();
                    found.push((path.clone(), method.clone(), status.clone(), schema));
                }
            }
        }
    }
    found
}

#[test]
fn every_service_serves_an_openapi_document_of_its_routes() {
    let stack = Stack::start(10);
    for service in [
        "campaign-service",
        "user-service",
        "notification-service",
        "email-service",
    ] {
        let document = stack.get(service, "/api-docs/openapi.json");
        let version = document["openapi"].as_str().expect("openapi version");
        assert!(version.starts_with("3."), "{service}: OpenAPI {version}");
        assert_eq!(document["info"]["title"], service);

        let mut expected: Vec<&str> = SHARED.iter().chain(own_paths(service)).copied().collect();
        expected.sort_unstable();
        let mut listed: Vec<&str> = document["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, expected, "{service}: the documented paths");

        let schemas = &document["components"]["schemas"];
        assert_eq!(
            schemas["ErrorBody"]["required"],
            serde_json::json!(["error"]),
            "{service}: {}",
            schemas["ErrorBody"]
        );
        for (path, method, status, schema) in error_responses(&document) {
            // `/ready`'s 503 names what does not answer, in its own body.
            let expected = if path == "/ready" && status == "503" {
                "#/components/schemas/Readiness"
            } else {
                "#/components/schemas/ErrorBody"
            };
            assert_eq!(schema, expected, "{service}: {method} {path} {status}");
        }

        let port = stack.port(service);
        let page = ureq::get(&format!("http://127.0.0.1:{port}/api-docs/"))
            .call()
            .unwrap_or_else(|e| panic!("GET /api-docs/ on {service}: {e}"));
        assert_eq!(page.content_type(), "text/html", "{service}");
        let page = page.into_string().expect("text");
        assert!(
            page.contains("/api-docs/scalar.js") && !page.contains("http"),
            "{service}: the reference's script is the service's own: {page}"
        );
    }

    // An error the routes themselves do not make has the same shape: a
    // method a route does not take.
    let (status, body) = stack.call("DELETE", "campaign-service", "/api/v1/streams", None, None);
    assert_eq!(status, 405);
    assert!(body["error"].is_string(), "{body}");
}
