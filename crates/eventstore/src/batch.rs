//! Pipelines that hold keys of several slots, correct on either topology.
//!
//! On one node a [`Batch`] is one pipeline (a `MULTI`/`EXEC` transaction
//! when atomic): one round trip. A Redis Cluster refuses a pipeline or a
//! transaction across slots, so there the batch is split into one pipeline
//! per slot, run one after another in the order each slot first appears in
//! the batch; within a slot the commands keep their order, and each slot's
//! part is atomic when the batch is. Callers that need one key written
//! before another (a dead letter before the ack of its entry) put the first
//! key's commands first.

use redis::cluster_routing::Slot;
use redis::{Cmd, RedisResult, Value};

use crate::connection::Redis;

/// Commands run together; each names its key as its first argument.
#[derive(Default)]
pub(crate) struct Batch {
    commands: Vec<Cmd>,
    atomic: bool,
}

impl Batch {
    /// An empty batch whose commands (per slot, on a cluster) run in a
    /// `MULTI`/`EXEC` transaction.
    pub fn atomic() -> Self {
        Self {
            commands: Vec::new(),
            atomic: true,
        }
    }

    /// Adds `cmd`, whose first argument is its key.
    pub fn add(&mut self, cmd: Cmd) -> &mut Self {
        self.commands.push(cmd);
        self
    }

    /// Runs the batch; the replies come in the order of the commands.
    pub async fn run(&self, conn: &mut Redis) -> RedisResult<Vec<Value>> {
        if !conn.is_cluster() {
            return self.pipeline(0..self.commands.len()).query_async(conn).await;
        }
        let mut replies = vec![Value::Nil; self.commands.len()];
        for indexes in self.by_slot() {
            let part: Vec<Value> = self.pipeline(indexes.iter().copied()).query_async(conn).await?;
            for (index, reply) in indexes.into_iter().zip(part) {
                replies[index] = reply;
            }
        }
        Ok(replies)
    }

    fn pipeline(&self, indexes: impl Iterator<Item = usize>) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        if self.atomic {
            pipe.atomic();
        }
        for index in indexes {
            pipe.add_command(self.commands[index].clone());
        }
        pipe
    }

    /// The commands' indexes grouped by the slot of their key, slots in the
    /// order they first appear.
    fn by_slot(&self) -> Vec<Vec<usize>> {
        let mut groups: Vec<(Option<Slot>, Vec<usize>)> = Vec::new();
        for (index, cmd) in self.commands.iter().enumerate() {
            let slot = key_of(cmd).map(Slot::for_key);
            match groups.iter_mut().find(|(known, _)| *known == slot) {
                Some((_, indexes)) => indexes.push(index),
                None => groups.push((slot, vec![index])),
            }
        }
        groups.into_iter().map(|(_, indexes)| indexes).collect()
    }
}

/// The first argument after the command's name: the key of every command
/// the event store batches, but for a script's (`EVAL <script> <numkeys>
/// <key>`), whose first key it is.
fn key_of(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter();
    let is_script = matches!(args.next()?, redis::Arg::Simple(name) if name.eq_ignore_ascii_case(b"EVAL"));
    match args.nth(if is_script { 2 } else { 0 })? {
        redis::Arg::Simple(key) => Some(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &str, key: &str) -> Cmd {
        let mut cmd = redis::cmd(name);
        cmd.arg(key);
        cmd
    }

    #[test]
    fn commands_group_by_slot_in_order_of_first_appearance() {
        let mut batch = Batch::atomic();
        batch
            .add(cmd("XADD", "s:dead"))
            .add(cmd("XACK", "s"))
            .add(cmd("XADD", "s:dead"))
            .add(cmd("HINCRBY", "s:stats:g"))
            .add(cmd("XACK", "s"));
        assert_eq!(batch.by_slot(), [vec![0, 2], vec![1, 4], vec![3]]);
    }

    #[test]
    fn keys_sharing_a_hash_tag_share_a_group() {
        let mut batch = Batch::default();
        batch
            .add(cmd("XACK", "comms:emails:{3}"))
            .add(cmd("XADD", "comms:emails:{3}:dead"))
            .add(cmd("HINCRBY", "comms:emails:{3}:stats:g"));
        assert_eq!(batch.by_slot(), [vec![0, 1, 2]]);
    }

    #[test]
    fn a_script_goes_with_its_first_key() {
        let mut batch = Batch::default();
        let mut eval = redis::cmd("EVAL");
        eval.arg("return 1").arg(1).arg("s");
        batch
            .add(cmd("XADD", "s:dead"))
            .add(eval)
            .add(cmd("XPENDING", "s"));
        assert_eq!(batch.by_slot(), [vec![0], vec![1, 2]]);
    }
}
