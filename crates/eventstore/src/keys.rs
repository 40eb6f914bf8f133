//! The names the event store gives to what it keeps beside each stream:
//! its dead-letter stream and the hash of its groups' worker counters, and
//! to its leases. One
//! place owns them, so that the writers (the worker, dead-lettering) and
//! the readers (stats, trimming) cannot drift apart.

/// The suffix that makes a stream's name its dead-letter stream's.
const DEAD_SUFFIX: &str = ":dead";

/// The dead-letter stream of `stream`.
pub fn dead_letter_stream(stream: &str) -> String {
    format!("{stream}{DEAD_SUFFIX}")
}

/// Whether `stream` is a dead-letter stream (which nothing may trim).
pub fn is_dead_letter_stream(stream: &str) -> bool {
    stream.ends_with(DEAD_SUFFIX)
}

/// The key of the lease `name` (see [`crate::lease`]).
pub(crate) fn lease_key(name: &str) -> String {
    format!("comms:lease:{name}")
}

/// The hash holding the worker counters of `group` on `stream`.
pub(crate) fn stats_key(stream: &str, group: &str) -> String {
    format!("{stream}:stats:{group}")
}

/// Counter of entries handled, in [`stats_key`]'s hash.
pub(crate) const HANDLED: &str = "handled";
/// Counter of retries, in [`stats_key`]'s hash.
pub(crate) const RETRIED: &str = "retried";
/// Counter of entries dead-lettered, in [`stats_key`]'s hash.
pub(crate) const DEAD_LETTERED: &str = "dead_lettered";
