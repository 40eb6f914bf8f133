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
    /// An event could not be serialized into an envelope.
    #[error("cannot encode event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Shorthand for results of the event store.
pub type Result<T, E = Error> = std::result::Result<T, E>;
