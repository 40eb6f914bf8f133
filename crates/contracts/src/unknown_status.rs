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

/// Implements `FromStr` for an enum stored as text (a status column, a
/// kind in a row): the one of the values listed whose `as_str()` is the
/// text read back, or an [`UnknownStatus`] of `kind`. One definition for
/// every such enum, so that each reads back exactly what it wrote.
///
/// `read_back_by_name!(LedgerStatus, "send ledger", [Self::Sending, Self::Sent, Self::Failed]);`
#[macro_export]
macro_rules! read_back_by_name {
    ($type:ty, $kind:literal, $values:expr) => {
        impl ::std::str::FromStr for $type {
            type Err = $crate::UnknownStatus;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                $values
                    .into_iter()
                    .find(|known| known.as_str() == value)
                    .ok_or_else(|| $crate::UnknownStatus::new($kind, value))
            }
        }
    };
}
