//! A board: a few named values in one Redis hash, written by one service
//! and read by every instance of the others before each step of their
//! work.
//!
//! A stream entry reaches one consumer of each group; a value on a board is
//! seen by every reader at its next look, which is what a switch that must
//! stop work everywhere at once needs (a campaign paused: every instance of
//! every service stops within one batch). Readers look up the values of a
//! whole batch in one `HMGET`. The board is as durable as the streams
//! (Redis' AOF), and its writer can set its values again from its own
//! database at any time: setting is idempotent.

use redis::AsyncCommands;

use crate::connection::Redis;
use crate::error::Result;

/// One board: the hash at `key`.
#[derive(Clone)]
pub struct Board {
    conn: Redis,
    key: String,
}

impl Board {
    /// The board kept in the hash `key`.
    pub fn new(conn: Redis, key: &str) -> Self {
        Self {
            conn,
            key: key.to_string(),
        }
    }

    /// Sets `name` to `value`.
    pub async fn set(&self, name: &str, value: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.hset(&self.key, name, value).await?;
        Ok(())
    }

    /// Removes `name`: it has no value any more.
    pub async fn remove(&self, name: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.hdel(&self.key, name).await?;
        Ok(())
    }

    /// The value of each of `names` (`None`: not on the board), in one
    /// round trip.
    pub async fn get_many(&self, names: &[&str]) -> Result<Vec<Option<String>>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&self.key)
            .arg(names)
            .query_async(&mut conn)
            .await?;
        Ok(values)
    }

    /// Every name on the board with its value.
    pub async fn entries(&self) -> Result<Vec<(String, String)>> {
        let mut conn = self.conn.clone();
        let entries: Vec<(String, String)> = conn.hgetall(&self.key).await?;
        Ok(entries)
    }
}
