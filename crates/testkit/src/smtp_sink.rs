//! Postfix's `smtp-sink` (Debian's `postfix` package; its daemon is never
//! started): a real SMTP server that accepts, or refuses on purpose, and
//! keeps nothing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;
use crate::ready::{smtp_greets, wait_until};

/// How the sink answers `RCPT TO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkMode {
    /// Accepts every message.
    Accept,
    /// Refuses every recipient with a 4xx (transient) reply.
    SoftReject,
    /// Refuses every recipient with a 5xx (permanent) reply.
    HardReject,
}

/// An `smtp-sink` process on a port, killed when dropped.
pub struct SmtpSink {
    port: u16,
    child: Child,
}

impl SmtpSink {
    /// Starts a sink on a free port.
    pub fn start(mode: SinkMode) -> Self {
        Self::start_on(free_port(), mode)
    }

    /// Starts a sink on `port` (to replace another one in place).
    pub fn start_on(port: u16, mode: SinkMode) -> Self {
        let binary = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .expect("smtp-sink not found; install it: apt-get install postfix");
        let mut command = Command::new(binary);
        match mode {
            SinkMode::Accept => {}
            SinkMode::SoftReject => {
                command.args(["-r", "RCPT"]);
            }
            SinkMode::HardReject => {
                command.args(["-f", "RCPT"]);
            }
        }
        let user = std::env::var("USER").unwrap_or_default();
        if user == "root" || user.is_empty() {
            command.args(["-u", "nobody"]);
        }
        let mut child = command
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start smtp-sink");
        wait_until("smtp-sink", &mut child, Duration::from_secs(10), || {
            smtp_greets(port)
        })
        .unwrap_or_else(|error| panic!("{error}"));
        Self { port, child }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Replaces it with a sink that accepts every message, on the same
    /// port: a refusing server that recovers, for the senders that kept
    /// retrying it.
    pub fn recover(mut self) -> Self {
        self.kill();
        Self::start_on(self.port, SinkMode::Accept)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.kill();
    }
}
