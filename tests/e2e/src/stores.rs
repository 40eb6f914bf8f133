//! Searching every store of a stack for what should be gone: an erased
//! user's address, say.

use std::path::Path;

use crate::Stack;

impl Stack {
    /// Every place of the stack's stores that still holds `needle`: each
    /// file under the services' data directory (their SQLite databases and
    /// logs of writes), and each key of Redis, read whole whatever its type.
    pub fn places_holding(&self, needle: &str) -> Vec<String> {
        let mut places = Vec::new();
        files_holding(&self.dir.path().join("data"), needle.as_bytes(), &mut places);
        for key in self.redis_cli(&["--scan"]).lines().filter(|key| !key.is_empty()) {
            let content = match self.redis_cli(&["TYPE", key]).as_str() {
                "stream" => self.redis_cli(&["XRANGE", key, "-", "+"]),
                "hash" => self.redis_cli(&["HGETALL", key]),
                "string" => self.redis_cli(&["GET", key]),
                "set" => self.redis_cli(&["SMEMBERS", key]),
                "zset" => self.redis_cli(&["ZRANGE", key, "0", "-1"]),
                "list" => self.redis_cli(&["LRANGE", key, "0", "-1"]),
                other => format!("(a key of type {other}, not read)"),
            };
            if content.contains(needle) {
                places.push(format!("redis key {key}"));
            }
        }
        places
    }
}

/// Adds to `places` each file under `dir` whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &[u8], places: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_holding(&path, needle, places);
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|window| window == needle))
        {
            places.push(path.display().to_string());
        }
    }
}
