//! The harness's `chaos-smtp` binary as a process of a test: a recording
//! SMTP server that can be switched between accepting, replying late,
//! refusing and down while a test runs, and killed with `SIGKILL` as a
//! crashed relay is. Its binary is built with the workspace's
//! (`cargo build --workspace --bins`), next to the test executables.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;
use crate::ready::{smtp_greets, wait_until};

/// A `chaos-smtp` process on a free port, killed when dropped.
pub struct ChaosSmtp {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl ChaosSmtp {
    /// Starts one that accepts every message, answering each `MAIL FROM`
    /// after `pace` (so that a run through it lasts a while).
    pub fn start(pace: Duration) -> Self {
        let dir = tempfile::tempdir().expect("a directory for chaos-smtp");
        let port = free_port();
        let mut child = Command::new(binary())
            .arg(port.to_string())
            .arg(dir.path().join("message-ids"))
            .arg(dir.path().join("control"))
            .arg(pace.as_millis().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary().display()));
        wait_until("chaos-smtp", &mut child, Duration::from_secs(10), || {
            smtp_greets(port)
        })
        .unwrap_or_else(|error| panic!("{error}"));
        Self { port, child, dir }
    }

    /// Its SMTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Switches how it answers (`accept`, `slow <ms>`, `refuse`, `down`;
    /// see the binary), within 50 ms.
    pub fn set(&self, mode: &str) {
        std::fs::write(self.dir.path().join("control"), mode).expect("write the control file");
    }

    /// The `Message-ID` of every message it took, in order, duplicates
    /// included (each written before its `250` reply).
    pub fn message_ids(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("message-ids"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Kills it with `SIGKILL`: its open connections drop mid-command.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChaosSmtp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `target/<profile>/chaos-smtp`, beside the test executable's `deps/`.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("chaos-smtp")
}
