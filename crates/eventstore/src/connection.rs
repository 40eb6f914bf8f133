//! Where Redis is and how the event store talks to it.
//!
//! The URL chooses the topology. `redis://` and `rediss://` (TLS) name one
//! node; `redis+cluster://host:port[,host:port…]` and `rediss+cluster://…`
//! name a Redis Cluster by any of its nodes (the rest are discovered). Each
//! takes an optional user and password. Either way the event store and the
//! services hold a [`Redis`], and never need to know which it is. The URL is
//! kept only inside the client; what is printed is [`RedisTarget`]'s
//! `Display`, which shows the password as `***`.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::{AsyncConnectionConfig, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture, Value};

use crate::cluster_link::ClusterLink;
use crate::error::{Error, Result};

/// How long a command may take before the connection is considered broken.
/// Large pipelines (thousands of `XADD`s) need far more than the client's
/// default of half a second.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How many times a cluster connection retries a command (after a `MOVED`,
/// or while a master restarts) before reporting the error.
const CLUSTER_RETRIES: u32 = 4;
/// The longest pause between two of those retries, in milliseconds.
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 2_000;

/// The URL schemes that name a cluster, and the node scheme each stands for.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// A parsed Redis location: cheap to clone, safe to print.
#[derive(Clone)]
pub struct RedisTarget {
    topology: Topology,
    redacted: String,
}

/// One node, or the seed nodes of a cluster.
#[derive(Clone)]
enum Topology {
    Node(Box<redis::Client>),
    Cluster(Vec<ConnectionInfo>),
}

impl RedisTarget {
    /// Parses `redis://[user][:password@]host[:port][/db]`, `rediss://…`,
    /// or `redis+cluster://[user][:password@]host:port[,host:port…]` (and
    /// `rediss+cluster://…`).
    pub fn parse(url: &str) -> Result<Self> {
        let redacted = redact(url);
        let invalid = |reason: String| Error::InvalidUrl {
            url: redacted.clone(),
            reason,
        };
        let topology = match cluster_node_urls(url) {
            Some(nodes) => Topology::Cluster(
                nodes
                    .map_err(invalid)?
                    .iter()
                    .map(|node| node.as_str().into_connection_info())
                    .collect::<redis::RedisResult<_>>()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            None => Topology::Node(Box::new(
                redis::Client::open(url).map_err(|e| invalid(e.to_string()))?,
            )),
        };
        Ok(Self { topology, redacted })
    }

    /// Whether the URL names a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology, Topology::Cluster(_))
    }

    /// A self-healing shared connection for ordinary commands: it reconnects
    /// on its own after Redis (or a cluster's master) drops or restarts.
    pub async fn shared(&self) -> Result<Redis> {
        let link = match &self.topology {
            Topology::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_max_delay(Duration::from_secs(2))
                    .set_number_of_retries(2);
                Link::Node(
                    client
                        .get_connection_manager_with_config(config)
                        .await
                        .map_err(|source| self.connect_error(source))?,
                )
            }
            Topology::Cluster(nodes) => Link::Cluster(self.cluster(nodes, RESPONSE_TIMEOUT).await?),
        };
        Ok(Redis { link })
    }

    /// A connection of its own, for commands that block the connection on the
    /// server side (`XREADGROUP … BLOCK`): a cluster connection multiplexes
    /// too, one socket per node, so a blocking read would stall every other
    /// command to that node. `block` is added to the response timeout so a
    /// long block is not mistaken for a dead server.
    pub async fn dedicated(&self, block: Duration) -> Result<Redis> {
        let link = match &self.topology {
            Topology::Node(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_response_timeout(Some(RESPONSE_TIMEOUT + block))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT));
                Link::Reader(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .map_err(|source| self.connect_error(source))?,
                )
            }
            Topology::Cluster(nodes) => Link::Cluster(self.cluster(nodes, RESPONSE_TIMEOUT + block).await?),
        };
        Ok(Redis { link })
    }

    async fn cluster(&self, nodes: &[ConnectionInfo], response_timeout: Duration) -> Result<ClusterLink> {
        let client = ClusterClientBuilder::new(nodes.to_vec())
            .response_timeout(response_timeout)
            .connection_timeout(CONNECT_TIMEOUT)
            .retries(CLUSTER_RETRIES)
            .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
            .build()
            .map_err(|e| Error::InvalidUrl {
                url: self.redacted.clone(),
                reason: e.to_string(),
            })?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|source| self.connect_error(source))?;
        Ok(ClusterLink::new(client, conn))
    }

    fn connect_error(&self, source: redis::RedisError) -> Error {
        Error::Connect {
            target: self.redacted.clone(),
            source,
        }
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisTarget").field(&self.redacted).finish()
    }
}

/// A connection to Redis, one node or a cluster, as [`RedisTarget`] made
/// it. Cheap to clone; clones share the connection. Commands run on it
/// like on any `redis` connection; a pipeline must hold keys of one slot
/// when it may run on a cluster (the event store's own pipelines see to it).
#[derive(Clone)]
pub struct Redis {
    link: Link,
}

#[derive(Clone)]
enum Link {
    /// One node, shared and self-reconnecting.
    Node(ConnectionManager),
    /// One node, a connection of its own for blocking reads.
    Reader(MultiplexedConnection),
    /// A cluster: commands go to the master of their keys' slot, on a
    /// connection replaced when it stops answering.
    Cluster(ClusterLink),
}

impl Redis {
    /// Whether this is a cluster connection, where a pipeline or a
    /// transaction may only hold keys of one slot.
    pub fn is_cluster(&self) -> bool {
        matches!(self.link, Link::Cluster(_))
    }
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.link {
            Link::Node(conn) => conn.req_packed_command(cmd),
            Link::Reader(conn) => conn.req_packed_command(cmd),
            Link::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.link {
            Link::Node(conn) => conn.req_packed_commands(pipeline, offset, count),
            Link::Reader(conn) => conn.req_packed_commands(pipeline, offset, count),
            Link::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Node(conn) => conn.get_db(),
            Link::Reader(conn) => conn.get_db(),
            Link::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The node URLs a cluster URL stands for (its credentials on each), or
/// `None` when `url` does not name a cluster.
fn cluster_node_urls(url: &str) -> Option<std::result::Result<Vec<String>, String>> {
    let (rest, node_scheme) = CLUSTER_SCHEMES
        .iter()
        .find_map(|(scheme, node)| Some((url.strip_prefix(scheme)?, *node)))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), rest),
    };
    if hosts.contains('/') {
        return Some(Err(
            "a cluster has no databases: no /<db> after the nodes".to_string()
        ));
    }
    if hosts.split(',').any(str::is_empty) {
        return Some(Err("expected host:port[,host:port…]".to_string()));
    }
    Some(Ok(hosts
        .split(',')
        .map(|host| format!("{node_scheme}{credentials}{host}"))
        .collect()))
}

/// The URL with its password (if any) replaced by `***`; unparsable input is
/// hidden entirely, since it may be a password pasted in the wrong place.
pub fn redact(url: &str) -> String {
    if let Some((scheme, _)) = CLUSTER_SCHEMES.iter().find(|(scheme, _)| url.starts_with(scheme)) {
        let rest = &url[scheme.len()..];
        return match rest.rsplit_once('@') {
            Some((credentials, hosts)) => match credentials.split_once(':') {
                Some((user, _)) => format!("{scheme}{user}:***@{hosts}"),
                None => url.to_string(),
            },
            None => url.to_string(),
        };
    }
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_the_password_and_keeps_the_rest() {
        assert_eq!(
            redact("redis://:s3cret@localhost:6380/2"),
            "redis://:***@localhost:6380/2"
        );
        assert_eq!(
            redact("rediss://app:s3cret@cache.example:6380"),
            "rediss://app:***@cache.example:6380"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("s3cret"), "<unparsable URL>");
    }

    #[test]
    fn an_invalid_url_is_refused_without_echoing_the_password() {
        let err = RedisTarget::parse("http://:s3cret@localhost").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn cluster_urls_name_every_node_with_the_credentials() {
        assert_eq!(
            cluster_node_urls("redis+cluster://app:s3cret@a:7000,b:7001/")
                .unwrap()
                .unwrap(),
            ["redis://app:s3cret@a:7000", "redis://app:s3cret@b:7001"]
        );
        assert_eq!(
            cluster_node_urls("rediss+cluster://c:7002").unwrap().unwrap(),
            ["rediss://c:7002"]
        );
        assert!(cluster_node_urls("redis://a:7000").is_none());
        assert!(cluster_node_urls("redis+cluster://a:7000/2").unwrap().is_err());
        assert!(cluster_node_urls("redis+cluster://a:7000,,b:1").unwrap().is_err());
    }

    #[test]
    fn cluster_urls_are_redacted_too() {
        assert_eq!(
            redact("redis+cluster://:s3cret@a:7000,b:7001"),
            "redis+cluster://:***@a:7000,b:7001"
        );
        assert_eq!(
            redact("redis+cluster://a:7000,b:7001"),
            "redis+cluster://a:7000,b:7001"
        );
        let target = RedisTarget::parse("rediss+cluster://app:s3cret@a:7000,b:7001").unwrap();
        assert!(target.is_cluster());
        assert_eq!(target.to_string(), "rediss+cluster://app:***@a:7000,b:7001");
        let err = RedisTarget::parse("redis+cluster://:s3cret@a:7000/3").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn tls_urls_are_accepted() {
        let target = RedisTarget::parse("rediss://:s3cret@localhost:6380").unwrap();
        assert_eq!(target.to_string(), "rediss://:***@localhost:6380");
    }
}
