//! The errors the event store reports to its callers.
//!
//! Every variant that concerns a connection names the Redis target in its
//! redacted form, so an error can be logged as it is without leaking a
//! password.

/// What went wrong talking to the event store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Redis URL could not be understood.
    #[error("invalid Redis URL {url}: {reason}")]
    InvalidUrl {
        /// The URL with any password replaced by `***`.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// Redis could not be reached, or refused the credentials.
    #[error("cannot connect to Redis at {target}: {source}")]
    Connect {
        /// The redacted target.
        target: String,
        /// The client's own error (it never carries the password).
        source: redis::RedisError,
    },
    /// A command failed once connected.
    #[error("Redis command failed: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stream id given by a caller is not of the form `<ms>-<seq>`: the
    /// request is wrong (an HTTP layer answers 400), not the store.
    #[error("invalid stream id `{0}`: expected <milliseconds>-<sequence>")]
    InvalidId(String),
    /// A dead letter was asked for by id over several partitions, and more
    /// than one holds that id: partitions number their entries on their own,
    /// so two can dead-letter in the same millisecond. The caller names the
    /// partition (an HTTP layer answers 409).
    #[error("dead letter {id} is in more than one partition ({}); name the partition", streams.join(", "))]
    AmbiguousId {
        /// The id asked for.
        id: String,
        /// The partitions that hold it.
        streams: Vec<String>,
    },
    /// A dead letter holds no fields to re-publish: its entry had none
    /// left (it was deleted), or its `dead.fields` was written by hand and
    /// cannot be read. It stays where it is, for an operator to delete
    /// (an HTTP layer answers 409).
    #[error("dead letter {id} holds nothing to replay: {reason}")]
    NothingToReplay {
        /// The dead letter's id.
        id: String,
        /// Why.
        reason: String,
    },
    /// This process was configured with another partition count than the
    /// one the store's streams are split into (see [`crate::partition`]).
    #[error(
        "STREAM_PARTITIONS is {asked}, but the streams in this Redis are split into {recorded} \
         (key comms:partitions); set STREAM_PARTITIONS={recorded}, or drain the streams, stop \
         every service and delete that key to change it"
    )]
    PartitionsDiffer {
        /// The count this process was given.
        asked: u32,
        /// The count recorded in Redis.
        recorded: u32,
    },
    /// An event could not be serialized into an envelope.
    #[error("cannot encode event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Shorthand for results of the event store.
pub type Result<T, E = Error> = std::result::Result<T, E>;
