//! A cluster connection that replaces itself when it stops answering.
//!
//! redis-rs's cluster connection repairs its links to the nodes on its own,
//! but not always: after a master was down long enough for the whole cluster
//! to refuse commands (`CLUSTERDOWN`) and came back, a long-lived connection
//! was seen timing out on every command to that master for good, while a new
//! connection worked at once. So a command that ends in a timeout or a
//! dropped connection makes this link build a new cluster connection (one
//! attempt at a time, within [`REPLACE_TIMEOUT`]) for the commands after it;
//! the failed command's error still reaches its caller, who retries as after
//! any Redis error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// How long building a replacement may take (the client's own connection
/// timeout is per node; this bounds the whole).
const REPLACE_TIMEOUT: Duration = Duration::from_secs(10);

/// A shared cluster connection, and what builds its replacement.
#[derive(Clone)]
pub(crate) struct ClusterLink {
    client: Arc<ClusterClient>,
    current: Arc<Mutex<Current>>,
    /// Held while a replacement is built, so that a burst of failing
    /// commands builds one.
    replacing: Arc<tokio::sync::Mutex<()>>,
}

/// The connection in use, and how many times it was replaced.
struct Current {
    generation: u64,
    conn: ClusterConnection,
}

impl ClusterLink {
    /// A link on `conn`, which `client` built.
    pub(crate) fn new(client: ClusterClient, conn: ClusterConnection) -> Self {
        Self {
            client: Arc::new(client),
            current: Arc::new(Mutex::new(Current { generation: 0, conn })),
            replacing: Arc::default(),
        }
    }

    /// The connection in use, and its generation.
    fn current(&self) -> (u64, ClusterConnection) {
        let current = self.current.lock().expect("cluster link lock");
        (current.generation, current.conn.clone())
    }

    /// After `error` on the connection of `generation`: builds a new one
    /// if the error says the connection may be stuck, and no other command
    /// replaced it meanwhile.
    async fn mend(&self, generation: u64, error: &RedisError) {
        if !(error.is_timeout() || error.is_connection_dropped() || error.is_unrecoverable_error()) {
            return;
        }
        let Ok(_replacing) = self.replacing.try_lock() else {
            return;
        };
        if self.current().0 != generation {
            return;
        }
        match tokio::time::timeout(REPLACE_TIMEOUT, self.client.get_async_connection()).await {
            Ok(Ok(conn)) => {
                let mut current = self.current.lock().expect("cluster link lock");
                current.generation += 1;
                current.conn = conn;
                tracing::info!(%error, "replaced the cluster connection after a failed command");
            }
            Ok(Err(failure)) => tracing::debug!(%failure, "cannot replace the cluster connection yet"),
            Err(_) => tracing::debug!("replacing the cluster connection timed out"),
        }
    }
}

impl ConnectionLike for ClusterLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (generation, mut conn) = self.current();
            let result = conn.req_packed_command(cmd).await;
            if let Err(error) = &result {
                self.mend(generation, error).await;
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (generation, mut conn) = self.current();
            let result = conn.req_packed_commands(pipeline, offset, count).await;
            if let Err(error) = &result {
                self.mend(generation, error).await;
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}
