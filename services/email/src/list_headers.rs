//! The headers of one-click unsubscribe: `List-Unsubscribe` (RFC 2369),
//! the link and, where configured, a `mailto:` beside it; and
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), which
//! tells mail providers that a `POST` to the link unsubscribes at once,
//! with no page to click through. lettre has no type for either.
//! Beside them, `X-Comms-Test: 1`, the mark of a test send's email.

use lettre::message::header::{Header, HeaderName, HeaderValue};

/// `List-Unsubscribe: <https://…>, <mailto:…>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe(String);

impl ListUnsubscribe {
    /// The header for `url`, and `mailto` if any.
    pub fn new(url: &str, mailto: Option<&str>) -> Self {
        match mailto {
            Some(mailto) => Self(format!("<{url}>, <{mailto}>")),
            None => Self(format!("<{url}>")),
        }
    }
}

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(value.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

/// `X-Comms-Test: 1`: the email is a test send (a campaign's email sent
/// to a few chosen addresses), so a filter or a reader can tell it apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommsTest;

impl Header for CommsTest {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Comms-Test")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "1".into())
    }
}
