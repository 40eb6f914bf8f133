//! Who may change things.
//!
//! In `prod` every write endpoint needs `Authorization: Bearer <API_TOKEN>`,
//! and the demo `GET /api/v1/campaign/create` (a write behind a GET, handy
//! from a browser) is switched off. In `dev` writes are open, unless an
//! `API_TOKEN` is set, which is then required as in `prod`. Reads are open.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use servicekit::config::AppEnv;
use servicekit::http::ApiError;

/// The access policy of the write endpoints.
#[derive(Clone)]
pub struct Access {
    env: AppEnv,
    token: Option<Arc<str>>,
}

impl Access {
    /// The policy for `env` and `token` (empty: none). `prod` without a
    /// token is refused: it would leave writes open.
    pub fn new(env: AppEnv, token: &str) -> anyhow::Result<Self> {
        let token = (!token.is_empty()).then(|| Arc::from(token));
        if env == AppEnv::Prod && token.is_none() {
            anyhow::bail!("API_TOKEN must be set when APP_ENV=prod (write endpoints need it)");
        }
        Ok(Self { env, token })
    }

    /// Whether the demo endpoint is on.
    pub fn demo_enabled(&self) -> bool {
        self.env == AppEnv::Dev
    }

    fn allows(&self, request: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
    }
}

/// Middleware for write routes: 401 with a JSON error unless allowed.
pub async fn require_token(
    State(access): State<Access>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if access.allows(&request) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "this endpoint needs `Authorization: Bearer <API_TOKEN>`".into(),
        })
    }
}

/// Compares without stopping at the first difference, so the time taken
/// does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prod_without_a_token_is_refused() {
        let error = Access::new(AppEnv::Prod, "").err().unwrap();
        assert!(error.to_string().contains("API_TOKEN"));
        assert!(Access::new(AppEnv::Prod, "t").is_ok());
        assert!(Access::new(AppEnv::Dev, "").unwrap().demo_enabled());
        assert!(!Access::new(AppEnv::Prod, "t").unwrap().demo_enabled());
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
