//! What tests read and do on the stack's event store with `redis-cli`,
//! beside what the services do to it.

use std::process::Command;

use crate::Stack;

/// Copies every entry of `KEYS[1]`, fields and all, to its end, in one
/// script; returns how many.
const COPY_ALL: &str = "local entries = redis.call('XRANGE', KEYS[1], '-', '+')
for _, entry in ipairs(entries) do redis.call('XADD', KEYS[1], '*', unpack(entry[2])) end
return #entries";

impl Stack {
    /// How many entries were ever added to `stream` (`XINFO STREAM`'s
    /// `entries-added`, read with `redis-cli`): unlike the stream's length,
    /// trimming does not lower it. 0 for a stream that does not exist.
    pub fn entries_added(&self, stream: &str) -> u64 {
        let output = Command::new("redis-cli")
            .args([
                "-p",
                &self.redis.port_of(stream).to_string(),
                "--raw",
                "XINFO",
                "STREAM",
                stream,
            ])
            .output()
            .expect("redis-cli runs");
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line == "entries-added" {
                return lines.next().and_then(|n| n.parse().ok()).expect("a count");
            }
        }
        0
    }

    /// Runs `redis-cli` with `args` against the stack's Redis; its output
    /// (`--raw`), trimmed.
    pub fn redis_cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.redis.node().port().to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(output.status.success(), "redis-cli {args:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Adds a copy of every entry of `stream` (fields and all) to its end,
    /// at once, as a producer that published each event twice would;
    /// returns how many were copied.
    pub fn copy_entries(&self, stream: &str) -> u64 {
        let copied = self.redis_cli(&["EVAL", COPY_ALL, "1", stream]);
        copied.parse().unwrap_or_else(|_| panic!("a count: {copied}"))
    }

    /// The field `name` (e.g. `pending`, `lag`) of the consumer group
    /// `group` on `stream`, as `XINFO GROUPS` gives it; `None` while the
    /// group does not exist.
    pub fn group_field(&self, stream: &str, group: &str, name: &str) -> Option<String> {
        let info = self.redis_cli(&["XINFO", "GROUPS", stream]);
        let fields: Vec<&str> = info.lines().collect();
        let start = fields.iter().position(|line| *line == group)?;
        fields[start..]
            .windows(2)
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].to_string())
    }

    /// Whether the consumer group `group` has handled all of `stream`: no
    /// entry pending, none left to read (`lag` 0).
    pub fn group_caught_up(&self, stream: &str, group: &str) -> bool {
        let field = |name| self.group_field(stream, group, name);
        field("pending").as_deref() == Some("0") && field("lag").as_deref() == Some("0")
    }
}
