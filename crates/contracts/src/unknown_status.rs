//! The error of reading back a status that its enum does not know.

/// A status read from a database that its enum does not know (a row
/// written by hand, or by a newer version): the services store statuses
/// as text, and read each back through its enum's `FromStr`, so such a
/// row is an error that names the value rather than a string passed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus {
    kind: &'static str,
    value: String,
}

impl UnknownStatus {
    /// `value`, read where a `kind` status (`"delivery"`,
    /// `"notification"`, ...) was expected.
    pub fn new(kind: &'static str, value: &str) -> Self {
        Self {
            kind,
            value: value.to_string(),
        }
    }
}

impl std::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is not a {} status", self.value, self.kind)
    }
}

impl std::error::Error for UnknownStatus {}
