//! A private MailDev (the stack's SMTP test server) per test, read through
//! its REST API.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;
use crate::ready::{http_ready, smtp_greets, wait_until};

/// A MailDev process: SMTP on one free port, web UI and REST API on another.
pub struct MailDev {
    smtp_port: u16,
    web_port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl MailDev {
    /// Starts MailDev from `tools/node_modules` (installed by `./test.sh`).
    pub fn start() -> Self {
        Self::start_with_auth(None)
    }

    /// Starts MailDev that takes mail only from a client that
    /// authenticates as `(user, password)`, when given.
    pub fn start_with_auth(auth: Option<(&str, &str)>) -> Self {
        let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/node_modules/.bin/maildev");
        assert!(
            binary.exists(),
            "{} is missing; run ./test.sh, which installs it from npm",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let (smtp_port, web_port) = (free_port(), free_port());
        let log_path = dir.path().join("maildev.log");
        let log = std::fs::File::create(&log_path).expect("maildev log");
        let mut child = Command::new(binary)
            .args(["--smtp", &smtp_port.to_string(), "--web", &web_port.to_string()])
            .args(["--ip", "127.0.0.1", "--mail-directory"])
            .arg(dir.path().join("mail"))
            .args(
                auth.map(|(user, password)| ["--incoming-user", user, "--incoming-pass", password])
                    .into_iter()
                    .flatten(),
            )
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cannot start maildev");
        let web = format!("http://127.0.0.1:{web_port}/healthz");
        wait_until("maildev", &mut child, Duration::from_secs(20), || {
            http_ready(&web) && smtp_greets(smtp_port)
        })
        .unwrap_or_else(|error| error.panic_with_log(&log_path));
        Self {
            smtp_port,
            web_port,
            child,
            _dir: dir,
        }
    }

    /// Its SMTP port.
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// The base URL of its REST API (`GET /email` lists every email).
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.web_port)
    }
}

impl Drop for MailDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
