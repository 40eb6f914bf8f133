//! What a service a test builds and runs in its own process gets of its
//! own: a Redis, a directory for its database, and the token that stops it.

use std::future::Future;

use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::RedisServer;

/// A Redis and a directory of a service a test runs in-process, and the
/// token that stops the service. Dropped, it cancels the token, then stops
/// the Redis and removes the directory: a test that ends, or panics,
/// leaves nothing running.
pub struct ServiceHome {
    /// The service's Redis.
    pub redis: RedisServer,
    /// The port the service serves on (0 until [`ServiceHome::run`]).
    port: u16,
    dir: TempDir,
    shutdown: CancellationToken,
}

impl ServiceHome {
    /// Starts a Redis (without persistence) and makes the directory.
    pub fn new() -> Self {
        Self {
            redis: RedisServer::start(),
            port: 0,
            dir: tempfile::tempdir().expect("temporary directory"),
            shutdown: CancellationToken::new(),
        }
    }

    /// The URL of the SQLite database `file` in the directory.
    pub fn sqlite_url(&self, file: &str) -> String {
        format!("sqlite://{}/{file}", self.dir.path().display())
    }

    /// Spawns the service built to serve on `port`: `run` is given the
    /// token that dropping this cancels.
    pub fn run<F>(mut self, port: u16, run: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.port = port;
        tokio::spawn(run(self.shutdown.clone()));
        self
    }

    /// The port the service serves on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's URL, without a trailing slash: `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The URL of `path` (from its `/`) on the service.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }
}

impl Default for ServiceHome {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ServiceHome {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
