//! How a dead letter keeps the fields of its entry: exactly, whatever
//! they are.
//!
//! An entry is dead-lettered because something about it is wrong, so its
//! fields may be anything Redis can hold: names or values that are not
//! UTF-8, names that clash with the dead letter's own (`dead.reason`), a
//! thousand fields, ten megabytes. They are kept in one field,
//! `dead.fields`, as a JSON list of `[name, value]` pairs, each base64
//! (standard alphabet, padded): readable by any tool, the bytes intact
//! for a replay, and apart from the dead letter's own fields.
//!
//! Dead letters written before this layout hold the original fields
//! verbatim beside the `dead.` ones; they are read as they are.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The field of a dead letter that holds its entry's fields.
pub(super) const FIELD_FIELDS: &str = "dead.fields";

/// The prefix of a dead letter's own fields.
const OWN_PREFIX: &[u8] = b"dead.";

/// Raw field pairs, as an entry holds them.
pub(crate) type RawFields = Vec<(Vec<u8>, Vec<u8>)>;

/// Field pairs as text, to be read.
type ShownFields = Vec<(String, String)>;

/// `fields` as the value of [`FIELD_FIELDS`].
pub(super) fn encode(fields: &[(Vec<u8>, Vec<u8>)]) -> String {
    let pairs: Vec<[String; 2]> = fields
        .iter()
        .map(|(name, value)| [STANDARD.encode(name), STANDARD.encode(value)])
        .collect();
    serde_json::to_string(&pairs).expect("a list of strings serializes")
}

/// The original fields of a dead letter whose own fields are `letter`:
/// decoded from [`FIELD_FIELDS`], or, in a letter without it, the fields
/// that are not the letter's own. An error says why `dead.fields` cannot
/// be read (someone wrote it by hand).
pub(crate) fn original(letter: &[(Vec<u8>, Vec<u8>)]) -> Result<RawFields, String> {
    let Some((_, encoded)) = letter.iter().find(|(name, _)| name == FIELD_FIELDS.as_bytes()) else {
        return Ok(letter
            .iter()
            .filter(|(name, _)| !name.starts_with(OWN_PREFIX))
            .cloned()
            .collect());
    };
    let pairs: Vec<[String; 2]> = serde_json::from_slice(encoded)
        .map_err(|error| format!("`{FIELD_FIELDS}` is not a list of pairs: {error}"))?;
    pairs
        .into_iter()
        .map(|[name, value]| {
            let decode = |text: String| {
                STANDARD
                    .decode(text)
                    .map_err(|error| format!("`{FIELD_FIELDS}` holds a value that is not base64: {error}"))
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// `fields` for reading: names and values as text (bytes that are not
/// UTF-8 shown as U+FFFD), and as base64 (exact).
pub(super) fn shown(fields: &[(Vec<u8>, Vec<u8>)]) -> (ShownFields, ShownFields) {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    fields
        .iter()
        .map(|(name, value)| {
            (
                (text(name), text(value)),
                (STANDARD.encode(name), STANDARD.encode(value)),
            )
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_survive_the_round_trip() {
        let fields: RawFields = vec![
            (b"\xff".to_vec(), b"x".to_vec()),
            (b"dead.reason".to_vec(), b"\x00\xfe".to_vec()),
            (Vec::new(), Vec::new()),
        ];
        let letter = vec![
            (b"dead.reason".to_vec(), b"why".to_vec()),
            (FIELD_FIELDS.as_bytes().to_vec(), encode(&fields).into_bytes()),
        ];
        assert_eq!(original(&letter).unwrap(), fields);
    }

    #[test]
    fn a_letter_of_the_older_layout_keeps_its_fields_verbatim() {
        let letter = vec![
            (b"dead.reason".to_vec(), b"why".to_vec()),
            (b"type".to_vec(), b"t".to_vec()),
        ];
        assert_eq!(
            original(&letter).unwrap(),
            vec![(b"type".to_vec(), b"t".to_vec())]
        );
    }

    #[test]
    fn a_garbled_list_is_an_error() {
        let letter = vec![(FIELD_FIELDS.as_bytes().to_vec(), b"[[\"!\",\"\"]]".to_vec())];
        assert!(original(&letter).unwrap_err().contains("not base64"));
        let letter = vec![(FIELD_FIELDS.as_bytes().to_vec(), b"{".to_vec())];
        assert!(original(&letter).is_err());
    }
}
