//! Where a stack's event store runs: one `redis-server` or a Redis
//! Cluster, and what the tests ask of either.

use testkit::{RedisCluster, RedisServer};

/// Where a stack's event store runs.
pub enum EventStore {
    /// One `redis-server`.
    Node(RedisServer),
    /// A Redis Cluster; the services get a `redis+cluster://` URL.
    Cluster(RedisCluster),
}

impl EventStore {
    /// The `REDIS_URL` the services get.
    pub fn url(&self) -> String {
        match self {
            Self::Node(redis) => redis.url(),
            Self::Cluster(cluster) => cluster.url(),
        }
    }

    /// The single `redis-server`, for tests that work on it directly.
    pub fn node(&self) -> &RedisServer {
        match self {
            Self::Node(redis) => redis,
            Self::Cluster(_) => panic!("this test needs a single redis-server, not a cluster"),
        }
    }

    /// The port of the server holding `key` (on a cluster, its master),
    /// for `redis-cli`.
    pub fn port_of(&self, key: &str) -> u16 {
        match self {
            Self::Node(redis) => redis.port(),
            Self::Cluster(cluster) => cluster.ports()[cluster.master_of(key)],
        }
    }
}

impl From<RedisServer> for EventStore {
    fn from(redis: RedisServer) -> Self {
        Self::Node(redis)
    }
}

impl From<RedisCluster> for EventStore {
    fn from(cluster: RedisCluster) -> Self {
        Self::Cluster(cluster)
    }
}
