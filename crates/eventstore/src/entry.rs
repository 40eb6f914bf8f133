//! Raw stream entries as Redis returns them, read without trusting them.
//!
//! The worker must survive anything a stream holds, so replies are parsed
//! here by hand rather than through a typed reply that would fail as a whole
//! on one odd entry. Field names and values are kept as the bytes Redis
//! holds (anyone who can write to Redis can add `\xff`): an entry is never
//! left out of a reply for its content, since an entry read but left out
//! would stay pending for ever, never handled nor dead-lettered, and the
//! stream could not be trimmed past it. An entry whose content was deleted
//! comes back with no fields, and is reported as such.

use redis::Value;

/// One entry of a stream: its id and its fields, in the order stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The entry id (`<ms>-<seq>`).
    pub id: String,
    /// The field/value pairs, as stored (neither need be UTF-8); empty
    /// when the entry was deleted (Redis stores no entry without fields).
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Entries of the first stream in an `XREADGROUP`/`XREAD` reply (we always
/// read one stream); an empty list for a nil reply (the block timed out).
pub(crate) fn read_reply_entries(reply: Value) -> Vec<RawEntry> {
    match reply {
        Value::Array(streams) => streams
            .into_iter()
            .next()
            .map(|stream| match stream {
                Value::Array(mut key_and_entries) if key_and_entries.len() == 2 => {
                    entry_list(key_and_entries.pop().unwrap_or(Value::Nil))
                }
                _ => Vec::new(),
            })
            .unwrap_or_default(),
        Value::Map(streams) => streams
            .into_iter()
            .next()
            .map(|(_, entries)| entry_list(entries))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A list of `[id, [field, value, ...]]` pairs, as in `XRANGE` or the second
/// element of an `XAUTOCLAIM` reply.
pub(crate) fn entry_list(value: Value) -> Vec<RawEntry> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items.into_iter().filter_map(entry).collect()
}

/// One `[id, fields]` pair; `None` only when there is no id to settle it
/// by (never so in a reply of Redis).
fn entry(value: Value) -> Option<RawEntry> {
    let Value::Array(mut parts) = value else {
        return None;
    };
    if parts.len() != 2 {
        return None;
    }
    let fields = parts.pop()?;
    let id = text(parts.pop()?)?;
    let fields = match fields {
        Value::Array(flat) => {
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let Some(name) = flat.next() {
                pairs.push((lossless(name), flat.next().map(lossless).unwrap_or_default()));
            }
            pairs
        }
        Value::Map(map) => map
            .into_iter()
            .map(|(name, value)| (lossless(name), lossless(value)))
            .collect(),
        _ => Vec::new(),
    };
    Some(RawEntry { id, fields })
}

/// A field's name or value as bytes, whatever form the reply gave it.
fn lossless(value: Value) -> Vec<u8> {
    bytes(value).unwrap_or_default()
}

pub(crate) fn text(value: Value) -> Option<String> {
    String::from_utf8(bytes(value)?).ok()
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// A stream id as its two numbers, for ordering ids correctly (`"10-0"`
/// sorts before `"9-0"` as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// Parses `<ms>-<seq>` (or a bare `<ms>`).
    pub fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// Whether `id` is a complete `<ms>-<seq>` id, as Redis gives them.
    pub fn is_exact(id: &str) -> bool {
        id.contains('-') && Self::parse(id).is_some()
    }

    /// The smallest id greater than this one.
    pub fn next(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => Self { ms: self.ms, seq },
            None => Self {
                ms: self.ms + 1,
                seq: 0,
            },
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn a_read_reply_with_a_deleted_entry_keeps_the_others() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![
                Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("a"), bulk("x")])]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
            ]),
        ])]);
        let entries = read_reply_entries(reply);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].fields, vec![(b"a".to_vec(), b"x".to_vec())]);
        assert!(entries[1].fields.is_empty());
        assert!(read_reply_entries(Value::Nil).is_empty());
    }

    #[test]
    fn fields_that_are_not_utf8_are_kept_as_bytes() {
        let raw = |bytes: &[u8]| Value::BulkString(bytes.to_vec());
        let reply = Value::Array(vec![
            Value::Array(vec![bulk("1-0"), Value::Array(vec![raw(b"\xff"), bulk("x")])]),
            Value::Array(vec![bulk("2-0"), Value::Array(vec![bulk("type"), raw(b"\xfe")])]),
        ]);
        let entries = entry_list(reply);
        assert_eq!(entries.len(), 2, "no entry is left out for its content");
        assert_eq!(entries[0].fields, vec![(b"\xff".to_vec(), b"x".to_vec())]);
        assert_eq!(entries[1].fields, vec![(b"type".to_vec(), b"\xfe".to_vec())]);
    }

    #[test]
    fn stream_ids_order_numerically() {
        assert!(StreamId::parse("9-5").unwrap() < StreamId::parse("10-0").unwrap());
        assert_eq!(StreamId::parse("7-1").unwrap().next().to_string(), "7-2");
        assert_eq!(
            StreamId::parse(&format!("7-{}", u64::MAX))
                .unwrap()
                .next()
                .to_string(),
            "8-0"
        );
        assert_eq!(StreamId::parse("oops"), None);
        assert!(StreamId::is_exact("1712-3"));
        assert!(!StreamId::is_exact("1712"));
        assert!(!StreamId::is_exact("1712-x"));
        assert!(!StreamId::is_exact("-"));
    }
}
