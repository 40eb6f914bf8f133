//! Who may change things, and who may read personal data.
//!
//! Every write endpoint, the demo `GET /api/v1/campaign/create` (a write
//! behind a GET, handy from a browser) and every read that returns personal
//! data (user lists, dead-letter payloads) go behind [`require_token`]:
//! they need `Authorization: Bearer <API_TOKEN>` whenever a token is set.
//! `prod` refuses to start without one; in `dev` they are open until one is
//! set. Other reads (campaign progress, stream figures) are open. A
//! published example token is no token: `prod` refuses it too
//! ([`crate::examples`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};

use crate::app_env::AppEnv;
use crate::http::ApiError;

/// The access policy of the guarded endpoints.
#[derive(Clone)]
pub struct Access {
    token: Option<Arc<SecretString>>,
}

impl Access {
    /// The policy for `env` and `token` (empty: none). `prod` without a
    /// token, or with a published example one, is refused: either would
    /// leave writes and personal data open.
    pub fn new(env: AppEnv, token: &SecretString) -> anyhow::Result<Self> {
        crate::examples::refuse_examples(env, &[("API_TOKEN", token)])?;
        let token = (!token.expose_secret().is_empty()).then(|| Arc::new(token.clone()));
        if env == AppEnv::Prod && token.is_none() {
            anyhow::bail!("API_TOKEN must be set when APP_ENV=prod (writes and personal data need it)");
        }
        Ok(Self { token })
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
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.expose_secret().as_bytes()))
    }
}

/// Middleware for guarded routes: 401 with a JSON error unless allowed.
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

    fn request(authorization: Option<&str>) -> Request {
        let mut request = Request::new(axum::body::Body::empty());
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, value.parse().unwrap());
        }
        request
    }

    #[test]
    fn prod_without_a_token_is_refused() {
        let error = Access::new(AppEnv::Prod, &"".into()).err().unwrap();
        assert!(error.to_string().contains("API_TOKEN"));
        assert!(Access::new(AppEnv::Prod, &"t".into()).is_ok());
    }

    #[test]
    fn prod_with_the_example_token_is_refused() {
        let example = "comms-prod-example-token".into();
        let error = Access::new(AppEnv::Prod, &example).err().unwrap().to_string();
        assert!(
            error.contains("API_TOKEN is a published example value"),
            "{error}"
        );
        assert!(Access::new(AppEnv::Dev, &example).is_ok());
    }

    #[test]
    fn a_set_token_is_required_in_any_environment() {
        let open = Access::new(AppEnv::Dev, &"".into()).unwrap();
        assert!(open.allows(&request(None)));
        for env in [AppEnv::Dev, AppEnv::Prod] {
            let guarded = Access::new(env, &"s3cret".into()).unwrap();
            assert!(guarded.allows(&request(Some("Bearer s3cret"))));
            assert!(!guarded.allows(&request(None)));
            assert!(!guarded.allows(&request(Some("Bearer s3cre"))));
            assert!(!guarded.allows(&request(Some("s3cret"))));
        }
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
