//! The demo service the integration tests of
//! [`Service`](servicekit::service::Service) build: its spec,
//! the one event it consumes and its (empty) OpenAPI document, shared so
//! that each test file says only what it checks.

use eventstore::Event;
use serde::{Deserialize, Serialize};
use servicekit::service::Spec;

/// The demo service: one table of names.
pub const SPEC: Spec = Spec::new(
    "demo-service",
    "DEMO_PORT",
    "CREATE TABLE IF NOT EXISTS demo (name TEXT PRIMARY KEY)",
);

/// What the demo service consumes from `demo:hellos`.
#[derive(Serialize, Deserialize)]
pub struct Hello {
    /// Who is greeted.
    pub name: String,
}

impl Event for Hello {
    const TYPE: &'static str = "demo.hello";
    const VERSION: u32 = 1;
}

/// The demo service's own document: no paths of its own.
#[derive(utoipa::OpenApi)]
#[openapi(info(title = "demo-service"))]
pub struct ApiDoc;
