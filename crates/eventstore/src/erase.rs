//! Erasing what the streams hold of one person: every entry that names
//! them (their address, say), wherever comms can remove it without losing
//! work.
//!
//! - A stream's entries that every group has acknowledged are trimmed
//!   ([`crate::trim`]), as they would be anyway, but now.
//! - An entry some group still needs (a campaign in progress) cannot be
//!   removed without losing its work: it is counted as still in flight,
//!   and goes with the stream's trimming once handled. Erasing again then
//!   finds none.
//! - A dead letter that names them (in its reason, or its entry's fields,
//!   decoded) is deleted: nothing reads it but an operator, and its
//!   outcome was counted when it was dead-lettered.

use crate::connection::Redis;
use crate::deadletter::fields::original;
use crate::entry::RawEntry;
use crate::error::Result;
use crate::keys::dead_letter_stream;
use crate::range::entries_after;
use crate::trim::trim;

/// Entries read per `XRANGE`.
const PAGE: usize = 500;

/// What [`erase`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    /// Entries trimmed (acknowledged by every group).
    pub trimmed: u64,
    /// Dead letters deleted for naming the person.
    pub dead_letters: u64,
    /// Entries naming the person that a group still needs.
    pub in_flight: u64,
}

/// Erases `needle` (bytes that name one person) from `streams` and their
/// dead-letter streams.
pub async fn erase(conn: &mut Redis, streams: &[String], needle: &[u8]) -> Result<Erased> {
    let mut erased = Erased::default();
    for stream in streams {
        erased.trimmed += trim(conn, stream).await?;
        erased.in_flight += scan(conn, stream, |entry| names(&entry.fields, needle))
            .await?
            .len() as u64;
        let dead = dead_letter_stream(stream);
        let letters = scan(conn, &dead, |letter| {
            names(&letter.fields, needle)
                || original(&letter.fields).is_ok_and(|fields| names(&fields, needle))
        })
        .await?;
        if !letters.is_empty() {
            let deleted: u64 = redis::cmd("XDEL")
                .arg(&dead)
                .arg(&letters)
                .query_async(conn)
                .await?;
            erased.dead_letters += deleted;
        }
    }
    Ok(erased)
}

/// Whether a name or a value of `fields` holds `needle`.
fn names(fields: &[(Vec<u8>, Vec<u8>)], needle: &[u8]) -> bool {
    fields
        .iter()
        .any(|(name, value)| contains(name, needle) || contains(value, needle))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}

/// The ids of the entries of `stream` for which `matches` holds, read a
/// page at a time.
async fn scan(conn: &mut Redis, stream: &str, matches: impl Fn(&RawEntry) -> bool) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let entries = entries_after(conn, stream, after.as_deref(), PAGE).await?;
        let Some(last) = entries.last().map(|entry| entry.id.clone()) else {
            return Ok(found);
        };
        found.extend(
            entries
                .iter()
                .filter(|entry| matches(entry))
                .map(|entry| entry.id.clone()),
        );
        if entries.len() < PAGE {
            return Ok(found);
        }
        after = Some(last);
    }
}
