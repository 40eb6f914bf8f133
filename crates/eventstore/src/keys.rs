//! The names the event store gives to what it keeps beside each stream:
//! its dead-letter stream, the hash of its groups' worker counters, the
//! hash of its entries' retry counts, and the leases of work done once per
//! cluster. One place owns them, so that the writers (the worker,
//! dead-lettering) and the readers (stats, trimming) cannot drift apart.
//!
//! Every name beside a stream is the stream's name with a suffix, so a
//! stream named with a Redis Cluster hash tag (`comms:emails:{3}`) shares
//! its slot with all of them, and one transaction can touch them together
//! on a cluster.

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

/// The hash counting, per pending entry of `group`, the deliveries that
/// ended in a retry.
pub(crate) fn retries_key(stream: &str, group: &str) -> String {
    format!("{stream}:retries:{group}")
}

/// Counter of entries handled, in [`stats_key`]'s hash.
pub(crate) const HANDLED: &str = "handled";
/// Counter of retries, in [`stats_key`]'s hash.
pub(crate) const RETRIED: &str = "retried";
/// Counter of entries dead-lettered, in [`stats_key`]'s hash.
pub(crate) const DEAD_LETTERED: &str = "dead_lettered";

#[cfg(test)]
mod tests {
    use redis::cluster_routing::Slot;

    use super::*;

    #[test]
    fn the_keys_beside_a_hash_tagged_stream_share_its_slot() {
        let stream = "comms:emails:{3}";
        let slot = Slot::for_key(stream);
        assert_eq!(Slot::for_key(dead_letter_stream(stream)), slot);
        assert_eq!(Slot::for_key(stats_key(stream, "email-service")), slot);
        assert_eq!(Slot::for_key(retries_key(stream, "email-service")), slot);
    }
}
