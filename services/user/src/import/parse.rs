//! Reading an import's rows, CSV or NDJSON, from any `Read`, a batch at a
//! time: each row becomes a [`Item::Row`] (a checked address, name and
//! profile: [`crate::profile`]) or
//! an [`Item::Rejected`] (its line and why), so one bad row never stops the
//! others. Only what makes the rest unreadable stops the reading: a CSV
//! header without `email` and `name` or with a column it does not know, a
//! line over [`MAX_LINE`], a body that stops coming.

use std::io::{BufRead, BufReader, Read};

use serde::Deserialize;
use serde_json::Value;

use super::lines::{LineBound, Lines, Newlines};
use crate::profile::{Given, ProfileChange, RawProfile};
use crate::user_writes::{checked_email, checked_name, UpsertRow};

/// The longest line read, in bytes: a longer one stops the import (a file
/// that is not a list of users, or an attempt to fill the memory).
pub const MAX_LINE: usize = 1024 * 1024;

/// The columns an import knows: the address and name (both needed), and
/// the profile's (NDJSON's `attributes` alone: a JSON object has no CSV
/// cell). A CSV's column sets its attribute on every row (an empty cell
/// clears it); an NDJSON key sets it on its row (`null` clears it), and an
/// attribute not given is left as it is.
pub const COLUMNS: [&str; 7] = [
    "email",
    "name",
    "country",
    "locale",
    "plan",
    "signed_up_at",
    "tags",
];

/// Tags in a CSV cell are separated by either of these.
const TAG_SEPARATORS: [char; 2] = [';', '|'];

/// How an import's rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/csv`: a header line naming the columns, then a row per line
    /// (RFC 4180 quoting; CRLF or LF; a UTF-8 byte-order mark is skipped).
    Csv,
    /// `application/x-ndjson`: a JSON object per line.
    Ndjson,
}

/// One row read.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A user to add, or whose name and attributes to set.
    Row {
        /// Its line, from 1.
        line: u64,
        /// The address (checked), name (checked and trimmed) and profile
        /// (checked).
        row: UpsertRow,
    },
    /// A row that cannot be imported.
    Rejected {
        /// Its line, from 1.
        line: u64,
        /// Why.
        reason: String,
    },
}

/// Reads `input` as `format`, handing `batch` items at a time to `each`
/// (which answers `false` to stop: nobody waits for the rest). An error
/// stops the reading once the rows before it are handed over.
pub fn read(
    format: Format,
    input: impl Read,
    batch: usize,
    mut each: impl FnMut(Vec<Item>) -> bool,
) -> Result<(), String> {
    let newlines = Newlines::default();
    let input = BufReader::new(LineBound::new(input, newlines.clone()));
    let mut items = Vec::with_capacity(batch);
    let mut go_on = true;
    let read = read_items(format, input, newlines, |item| {
        items.push(item);
        if items.len() == batch {
            go_on = each(std::mem::replace(&mut items, Vec::with_capacity(batch)));
        }
        go_on
    });
    // The rows before a line that stops the reading are good ones.
    if go_on && !items.is_empty() {
        each(items);
    }
    read
}

/// Reads `input` as `format`, handing each item to `push` until it
/// answers `false`.
fn read_items(
    format: Format,
    input: impl BufRead,
    newlines: Newlines,
    mut push: impl FnMut(Item) -> bool,
) -> Result<(), String> {
    match format {
        Format::Csv => {
            let mut rows = csv::ReaderBuilder::new()
                .flexible(true)
                .has_headers(false)
                .from_reader(input);
            let mut records = rows.byte_records();
            let header = match records.next() {
                None => return Ok(()),
                Some(header) => header.map_err(|error| unreadable(&error))?,
            };
            let columns = columns_of(&header)?;
            let mut lines = Lines::new(newlines);
            for record in records {
                let record = record.map_err(|error| unreadable(&error))?;
                let line = lines.of(record.position().map_or(0, csv::Position::byte));
                if !push(csv_item(line, &record, &columns)) {
                    break;
                }
            }
        }
        Format::Ndjson => {
            let mut input = input;
            let mut text = Vec::new();
            let mut line = 0;
            loop {
                text.clear();
                if input
                    .read_until(b'\n', &mut text)
                    .map_err(|error| error.to_string())?
                    == 0
                {
                    break;
                }
                line += 1;
                // Lines are counted here; the newlines' offsets are not needed.
                newlines.borrow_mut().clear();
                let trimmed = text.trim_ascii();
                if trimmed.is_empty() {
                    continue;
                }
                if !push(json_item(line, trimmed)) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Where each known column of [`COLUMNS`] is in a CSV header, in its
/// order (`None`: not there); an unknown or missing one is an error
/// naming it.
fn columns_of(header: &csv::ByteRecord) -> Result<[Option<usize>; 7], String> {
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(at, name)| {
            let name = String::from_utf8_lossy(name);
            let name = if at == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                &name
            };
            name.trim().to_ascii_lowercase()
        })
        .collect();
    if let Some(unknown) = names.iter().find(|name| !COLUMNS.contains(&name.as_str())) {
        return Err(format!(
            "line 1: unknown column `{}` (the columns are {})",
            unknown.escape_default(),
            COLUMNS.join(", ")
        ));
    }
    let columns = COLUMNS.map(|column| names.iter().position(|name| name == column));
    for (column, at) in COLUMNS.iter().zip(columns).take(2) {
        if at.is_none() {
            return Err(format!(
                "line 1: no `{column}` column (the columns are {})",
                COLUMNS.join(", ")
            ));
        }
    }
    Ok(columns)
}

/// The item of a CSV row.
fn csv_item(line: u64, record: &csv::ByteRecord, columns: &[Option<usize>; 7]) -> Item {
    let field = |at: Option<usize>, column: &str| -> Result<Option<&str>, String> {
        let Some(at) = at else { return Ok(None) };
        let bytes = record
            .get(at)
            .ok_or_else(|| format!("no {column} (the row has {} fields)", record.len()))?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{column} is not UTF-8"))
    };
    let row = || -> Result<UpsertRow, String> {
        let [email, name, country, locale, plan, signed_up_at, tags] = *columns;
        let email = checked_email(field(email, "email")?.unwrap_or_default())?;
        let name = checked_name(field(name, "name")?.unwrap_or_default())?;
        // A column given sets its attribute; an empty cell clears it.
        let cell = |at, column| -> Result<Given<String>, String> {
            Ok(match field(at, column)?.map(str::trim) {
                None => Given::Absent,
                Some("") => Given::Cleared,
                Some(text) => Given::Set(text.to_string()),
            })
        };
        let tags = match field(tags, "tags")? {
            None => Given::Absent,
            Some(text) => Given::Set(
                text.split(TAG_SEPARATORS)
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
        };
        let change = RawProfile {
            country: cell(country, "country")?,
            locale: cell(locale, "locale")?,
            plan: cell(plan, "plan")?,
            signed_up_at: cell(signed_up_at, "signed_up_at")?,
            tags,
            attributes: Given::Absent,
        }
        .check()?;
        Ok(UpsertRow { email, name, change })
    };
    match row() {
        Ok(row) => Item::Row { line, row },
        Err(reason) => Item::Rejected { line, reason },
    }
}

/// One NDJSON line: exactly the known keys, `email` and `name` needed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow {
    email: String,
    name: String,
    #[serde(default)]
    country: Given<String>,
    #[serde(default)]
    locale: Given<String>,
    #[serde(default)]
    plan: Given<String>,
    #[serde(default)]
    signed_up_at: Given<String>,
    #[serde(default)]
    tags: Given<Vec<String>>,
    #[serde(default)]
    attributes: Given<Value>,
}

/// The item of an NDJSON line.
fn json_item(line: u64, text: &[u8]) -> Item {
    let row = serde_json::from_slice::<JsonRow>(text)
        .map_err(|error| format!("not a user: {error}"))
        .and_then(|row| {
            let change: ProfileChange = RawProfile {
                country: row.country,
                locale: row.locale,
                plan: row.plan,
                signed_up_at: row.signed_up_at,
                tags: row.tags,
                attributes: row.attributes,
            }
            .check()?;
            Ok(UpsertRow {
                email: checked_email(&row.email)?,
                name: checked_name(&row.name)?,
                change,
            })
        });
    match row {
        Ok(row) => Item::Row { line, row },
        Err(reason) => Item::Rejected { line, reason },
    }
}

/// What stops a CSV's reading, said with its line.
fn unreadable(error: &csv::Error) -> String {
    match error.position() {
        Some(at) => format!("line {}: {error}", at.line()),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(format: Format, text: &str) -> Result<Vec<Item>, String> {
        let mut items = Vec::new();
        read(format, text.as_bytes(), 2, |batch| {
            items.extend(batch);
            true
        })?;
        Ok(items)
    }

    fn row(line: u64, email: &str, name: &str) -> Item {
        Item::Row {
            line,
            row: UpsertRow {
                email: email.into(),
                name: name.into(),
                change: ProfileChange::default(),
            },
        }
    }

    #[test]
    fn csv_with_a_bom_crlf_quotes_and_columns_in_any_order() {
        let text = "\u{feff}Name,Email\r\nAda Lovelace,ada@example.com\r\n\"King, Ada\",ada.king@example.com\r\n\"Grace\nHopper\",grace@example.com\r\nBob,Bob <bob@example.com>\r\n";
        let items = all(Format::Csv, text).unwrap();
        assert_eq!(items[0], row(2, "ada@example.com", "Ada Lovelace"));
        assert_eq!(items[1], row(3, "ada.king@example.com", "King, Ada"));
        // A quoted field may span lines; a name may not hold a line break.
        assert!(
            matches!(&items[2], Item::Rejected { line: 4, reason } if reason.contains("control character")),
            "{:?}",
            items[2]
        );
        assert!(
            matches!(&items[3], Item::Rejected { line: 6, reason } if reason.contains("space")),
            "an address with a display name: {:?}",
            items[3]
        );
    }

    #[test]
    fn a_csv_row_short_of_a_field_or_not_utf8_is_rejected_alone() {
        let items = all(Format::Csv, "email,name\nada@example.com\nbob@example.com,Bob\n").unwrap();
        assert!(matches!(&items[0], Item::Rejected { line: 2, reason } if reason.starts_with("no name")));
        assert_eq!(items[1], row(3, "bob@example.com", "Bob"));
        let mut bytes = b"email,name\nx@example.com,\xff\n".to_vec();
        bytes.extend_from_slice(b"y@example.com,Y\n");
        let mut items = Vec::new();
        read(Format::Csv, bytes.as_slice(), 10, |batch| {
            items.extend(batch);
            true
        })
        .unwrap();
        assert!(matches!(&items[0], Item::Rejected { line: 2, reason } if reason == "name is not UTF-8"));
        assert_eq!(items[1], row(3, "y@example.com", "Y"));
    }

    #[test]
    fn a_csv_header_with_an_unknown_or_missing_column_stops_the_import() {
        let unknown = all(Format::Csv, "email,name,team\nada@example.com,Ada,ops\n").unwrap_err();
        assert_eq!(
            unknown,
            "line 1: unknown column `team` (the columns are email, name, country, locale, plan, signed_up_at, tags)"
        );
        let attributes = all(Format::Csv, "email,name,attributes\n").unwrap_err();
        assert!(attributes.contains("unknown column `attributes`"), "{attributes}");
        let missing = all(Format::Csv, "email\nada@example.com\n").unwrap_err();
        assert!(missing.starts_with("line 1: no `name` column"), "{missing}");
        assert_eq!(all(Format::Csv, "").unwrap(), []);
    }

    #[test]
    fn ndjson_takes_exactly_the_known_keys_a_line_each() {
        let text = "{\"email\": \"ada@example.com\", \"name\": \"Ada\"}\r\n\n{\"email\": \"bob@example.com\", \"name\": \"Bob\", \"team\": \"ops\"}\nnot json\n";
        let items = all(Format::Ndjson, text).unwrap();
        assert_eq!(items[0], row(1, "ada@example.com", "Ada"));
        assert!(
            matches!(&items[1], Item::Rejected { line: 3, reason } if reason.contains("unknown field `team`"))
        );
        assert!(matches!(&items[2], Item::Rejected { line: 4, .. }));
    }

    #[test]
    fn the_profile_columns_set_clear_or_refuse_attributes() {
        let text = "email,name,country,plan,tags,signed_up_at\n\
                    ada@example.com,Ada,DE,pro,beta;vip| newsletter,2025-01-31\n\
                    bob@example.com,Bob,,,,\n\
                    carl@example.com,Carl,de,pro,,\n\
                    dan@example.com,Dan,DE,pro,a b,\n\
                    eve@example.com,Eve,DE,pro,,last week\n";
        let items = all(Format::Csv, text).unwrap();
        let Item::Row { row: ada, .. } = &items[0] else {
            panic!("{:?}", items[0])
        };
        assert_eq!(ada.change.country, Given::Set("DE".into()));
        assert_eq!(ada.change.locale, Given::Absent, "no column: left as it is");
        assert_eq!(
            ada.change.tags,
            Given::Set(vec!["beta".to_string(), "newsletter".into(), "vip".into()])
        );
        assert_eq!(ada.change.signed_up_at, Given::Set(1_738_281_600_000));
        let Item::Row { row: bob, .. } = &items[1] else {
            panic!("{:?}", items[1])
        };
        assert_eq!(
            (&bob.change.country, &bob.change.tags),
            (&Given::Cleared, &Given::Set(vec![]))
        );
        for (item, line, field) in [
            (&items[2], 4, "country"),
            (&items[3], 5, "tags"),
            (&items[4], 6, "signed_up_at"),
        ] {
            assert!(
                matches!(item, Item::Rejected { line: l, reason } if *l == line && reason.starts_with(field)),
                "{item:?}"
            );
        }
        let text = "{\"email\": \"ada@example.com\", \"name\": \"Ada\", \"tags\": [\"beta\"], \"attributes\": {\"team\": \"ops\"}, \"locale\": null}\n\
                    {\"email\": \"bob@example.com\", \"name\": \"Bob\", \"attributes\": [1]}\n\
                    {\"email\": \"cy@example.com\", \"name\": \"Cy\", \"tags\": \"beta\"}\n";
        let items = all(Format::Ndjson, text).unwrap();
        let Item::Row { row: ada, .. } = &items[0] else {
            panic!("{:?}", items[0])
        };
        assert_eq!(
            ada.change.attributes,
            Given::Set(serde_json::json!({"team": "ops"}))
        );
        assert_eq!(
            (&ada.change.locale, &ada.change.country),
            (&Given::Cleared, &Given::Absent)
        );
        assert!(
            matches!(&items[1], Item::Rejected { line: 2, reason } if reason.starts_with("attributes")),
            "{:?}",
            items[1]
        );
        assert!(
            matches!(&items[2], Item::Rejected { line: 3, .. }),
            "{:?}",
            items[2]
        );
    }

    #[test]
    fn a_line_over_the_bound_stops_the_import() {
        let long = format!("email,name\nada@example.com,{}\n", "a".repeat(MAX_LINE + 1));
        let error = all(Format::Csv, &long).unwrap_err();
        assert!(error.contains("longer than 1024 KiB"), "{error}");
    }
}
