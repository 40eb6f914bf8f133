//! The one shape every stream entry has.
//!
//! An entry is a flat list of Redis fields:
//!
//! | field     | holds                                                     |
//! |-----------|-----------------------------------------------------------|
//! | `type`    | the event type, e.g. `campaign.created`                   |
//! | `v`       | the schema version of that type, a positive integer       |
//! | `id`      | the event id: unique, and deterministic where it must be  |
//! | `time`    | when the event was made, milliseconds since the Unix epoch |
//! | `trace`   | W3C `traceparent` of the request that caused it (optional) |
//! | `payload` | the event itself as JSON                                  |
//!
//! Decoding never panics: a missing or malformed field, an unexpected type or
//! an unsupported version is a [`DecodeError`], which the worker turns into a
//! dead letter.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

const FIELD_TYPE: &str = "type";
const FIELD_VERSION: &str = "v";
const FIELD_ID: &str = "id";
const FIELD_TIME: &str = "time";
const FIELD_TRACE: &str = "trace";
const FIELD_PAYLOAD: &str = "payload";

/// A typed event: its wire name and schema version travel in the envelope.
///
/// Bump `VERSION` when the payload changes incompatibly; consumers that do not
/// know the new version dead-letter it instead of misreading it.
pub trait Event: Serialize + DeserializeOwned {
    /// The event type written to the `type` field.
    const TYPE: &'static str;
    /// The schema version written to the `v` field.
    const VERSION: u32;
}

/// One stream entry, decoded as far as the envelope; the payload stays JSON
/// text until [`Envelope::decode`] gives it a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The event type (`type`).
    pub event_type: String,
    /// The payload's schema version (`v`).
    pub version: u32,
    /// The event id (`id`); consumers deduplicate on it.
    pub event_id: String,
    /// Milliseconds since the Unix epoch (`time`).
    pub time_ms: u64,
    /// The W3C `traceparent` of the cause, if any (`trace`).
    pub trace: Option<String>,
    /// The JSON payload (`payload`).
    pub payload: String,
}

/// Why a stream entry or its payload could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// A required envelope field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field is present but not of the expected form.
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The entry holds another event type than the one asked for.
    #[error("unexpected event type `{found}` (expected `{expected}`)")]
    UnexpectedType {
        /// The type the consumer understands.
        expected: &'static str,
        /// The type the entry holds.
        found: String,
    },
    /// The entry's schema version is not one this consumer understands.
    #[error("unsupported version {found} of `{event_type}` (this consumer reads version {supported})")]
    UnsupportedVersion {
        /// The event type.
        event_type: String,
        /// The version in the entry.
        found: u32,
        /// The version this consumer reads.
        supported: u32,
    },
    /// The payload is not valid JSON for the event.
    #[error("payload of `{event_type}` does not decode: {reason}")]
    Payload {
        /// The event type.
        event_type: String,
        /// The JSON error.
        reason: String,
    },
}

impl Envelope {
    /// Wraps `event` with a fresh random id and the current time.
    pub fn new<E: Event>(event: &E) -> Result<Self, serde_json::Error> {
        Self::with_id(event, uuid::Uuid::new_v4().to_string())
    }

    /// Wraps `event` with a caller-chosen id: a deterministic id lets every
    /// later step deduplicate a re-published event.
    pub fn with_id<E: Event>(event: &E, event_id: String) -> Result<Self, serde_json::Error> {
        Ok(Self {
            event_type: E::TYPE.to_string(),
            version: E::VERSION,
            event_id,
            time_ms: now_ms(),
            trace: None,
            payload: serde_json::to_string(event)?,
        })
    }

    /// Attaches the `traceparent` of the request that caused this event.
    pub fn traced(mut self, traceparent: Option<String>) -> Self {
        self.trace = traceparent;
        self
    }

    /// Reads the payload as `E`, refusing another type or version.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::TYPE {
            return Err(DecodeError::UnexpectedType {
                expected: E::TYPE,
                found: self.event_type.clone(),
            });
        }
        if self.version != E::VERSION {
            return Err(DecodeError::UnsupportedVersion {
                event_type: self.event_type.clone(),
                found: self.version,
                supported: E::VERSION,
            });
        }
        serde_json::from_str(&self.payload).map_err(|e| DecodeError::Payload {
            event_type: self.event_type.clone(),
            reason: e.to_string(),
        })
    }

    /// The Redis fields of this envelope, in a fixed order, for `XADD`.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            (FIELD_TYPE, self.event_type.clone()),
            (FIELD_VERSION, self.version.to_string()),
            (FIELD_ID, self.event_id.clone()),
            (FIELD_TIME, self.time_ms.to_string()),
        ];
        if let Some(trace) = &self.trace {
            fields.push((FIELD_TRACE, trace.clone()));
        }
        fields.push((FIELD_PAYLOAD, self.payload.clone()));
        fields
    }

    /// Reads an envelope back from the fields of a stream entry, names and
    /// values as stored (a name that is not UTF-8 is no field of the
    /// envelope; a value of one that is not UTF-8 is an error).
    pub fn from_fields<N: AsRef<[u8]>>(fields: &[(N, Vec<u8>)]) -> Result<Self, DecodeError> {
        let text = |name: &'static str| -> Result<Option<String>, DecodeError> {
            match fields.iter().find(|(field, _)| field.as_ref() == name.as_bytes()) {
                None => Ok(None),
                Some((_, value)) => {
                    String::from_utf8(value.clone())
                        .map(Some)
                        .map_err(|_| DecodeError::InvalidField {
                            field: name,
                            reason: "not UTF-8".into(),
                        })
                }
            }
        };
        let required = |name: &'static str| text(name)?.ok_or(DecodeError::MissingField(name));
        let number = |name: &'static str| -> Result<u64, DecodeError> {
            let raw = required(name)?;
            raw.parse().map_err(|_| DecodeError::InvalidField {
                field: name,
                reason: format!("`{raw}` is not a non-negative integer"),
            })
        };

        let event_type = required(FIELD_TYPE)?;
        if event_type.is_empty() {
            return Err(DecodeError::InvalidField {
                field: FIELD_TYPE,
                reason: "empty".into(),
            });
        }
        let version = u32::try_from(number(FIELD_VERSION)?).map_err(|_| DecodeError::InvalidField {
            field: FIELD_VERSION,
            reason: "too large".into(),
        })?;
        Ok(Self {
            event_type,
            version,
            event_id: required(FIELD_ID)?,
            time_ms: number(FIELD_TIME)?,
            trace: text(FIELD_TRACE)?,
            payload: required(FIELD_PAYLOAD)?,
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Greeting {
        to: String,
    }

    impl Event for Greeting {
        const TYPE: &'static str = "test.greeting";
        const VERSION: u32 = 2;
    }

    fn as_redis_fields(envelope: &Envelope) -> Vec<(String, Vec<u8>)> {
        envelope
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_bytes()))
            .collect()
    }

    #[test]
    fn an_envelope_survives_the_round_trip_through_fields() {
        let envelope = Envelope::new(&Greeting { to: "Ada".into() })
            .unwrap()
            .traced(Some("00-abc-def-01".into()));
        let back = Envelope::from_fields(&as_redis_fields(&envelope)).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(back.decode::<Greeting>().unwrap(), Greeting { to: "Ada".into() });
    }

    #[test]
    fn another_type_or_version_is_refused() {
        let mut envelope = Envelope::new(&Greeting { to: "Ada".into() }).unwrap();
        envelope.version = 3;
        assert!(matches!(
            envelope.decode::<Greeting>(),
            Err(DecodeError::UnsupportedVersion {
                found: 3,
                supported: 2,
                ..
            })
        ));
        envelope.event_type = "test.other".into();
        assert!(matches!(
            envelope.decode::<Greeting>(),
            Err(DecodeError::UnexpectedType { .. })
        ));
    }

    #[test]
    fn malformed_entries_are_errors_not_panics() {
        let mut fields = as_redis_fields(&Envelope::new(&Greeting { to: "Ada".into() }).unwrap());
        fields.retain(|(name, _)| name != "payload");
        assert_eq!(
            Envelope::from_fields(&fields),
            Err(DecodeError::MissingField("payload"))
        );
        fields.push(("payload".into(), b"{".to_vec()));
        fields.retain(|(name, _)| name != "v");
        fields.push(("v".into(), b"two".to_vec()));
        assert!(matches!(
            Envelope::from_fields(&fields),
            Err(DecodeError::InvalidField { field: "v", .. })
        ));
        fields.retain(|(name, _)| name != "v");
        fields.push(("v".into(), b"2".to_vec()));
        let envelope = Envelope::from_fields(&fields).unwrap();
        assert!(matches!(
            envelope.decode::<Greeting>(),
            Err(DecodeError::Payload { .. })
        ));
    }
}
