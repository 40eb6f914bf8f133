//! Waiting until a process just started is ready, for every server the
//! harness starts and for the services the end-to-end tests start.
//!
//! It is the Rust side of `scripts/ready.sh` (which `start.sh` and the
//! benchmarks source): the same loop, checks of the same names, and the
//! same one-line errors, so a component that fails says the same thing
//! wherever it was started (`tests/ready.rs` runs both and compares). Two
//! copies, one per language, rather than one shared by both: the shell copy
//! needs nothing built (`start.sh` uses it before and beside `cargo`), and
//! this one asks the process it owns (`Child::try_wait`), needs no `bash`,
//! `curl` or fork per attempt, and fails a test with a panic that carries
//! the log.
//!
//! Servers whose own tools already wait (PostgreSQL's `pg_ctl -w`) or that
//! need a richer check (Redis with a password or TLS) pass their own check.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// How long one check may take before it counts as "not yet".
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause between two checks.
const POLL: Duration = Duration::from_millis(50);
/// How many of a log's last lines a failure shows.
const LOG_LINES: usize = 20;

/// Why a process never got ready. Its `Display` is the one line that
/// `scripts/ready.sh`'s `wait_until` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The process exited before its check passed.
    Exited {
        /// The component's name.
        name: String,
    },
    /// The check did not pass within the timeout.
    TimedOut {
        /// The component's name.
        name: String,
        /// How long it was given.
        timeout: Duration,
    },
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited { name } => write!(f, "{name} exited while starting"),
            Self::TimedOut { name, timeout } => write!(f, "{name} not ready after {timeout:?}"),
        }
    }
}

impl std::error::Error for NotReady {}

impl NotReady {
    /// Panics with this line, then the last lines of `log`, as `start.sh`
    /// reports a component that failed to start.
    pub fn panic_with_log(&self, log: &Path) -> ! {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_LINES)..]
            .iter()
            .map(|line| format!("  {line}"))
            .collect::<Vec<_>>()
            .join("\n");
        panic!("{self}\nthe last {LOG_LINES} lines of {}:\n{tail}", log.display())
    }
}

/// Runs `check` until it returns true, every 50 ms; fails as soon as
/// `child` has exited, or once `timeout` has passed.
pub fn wait_until(
    name: &str,
    child: &mut Child,
    timeout: Duration,
    check: impl FnMut() -> bool,
) -> Result<(), NotReady> {
    wait_while_running(name, timeout, || matches!(child.try_wait(), Ok(None)), check)
}

/// [`wait_until`] for what is not a child process of this one (a task, a
/// process another owns): `running` says whether it still runs, and a
/// `false` fails the wait as an exit does. One loop for both, so that they
/// poll, give up and say so alike.
pub fn wait_while_running(
    name: &str,
    timeout: Duration,
    mut running: impl FnMut() -> bool,
    mut check: impl FnMut() -> bool,
) -> Result<(), NotReady> {
    let start = Instant::now();
    while !check() {
        if !running() {
            return Err(NotReady::Exited {
                name: name.to_string(),
            });
        }
        if start.elapsed() >= timeout {
            return Err(NotReady::TimedOut {
                name: name.to_string(),
                timeout,
            });
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// True when `url` answers a 2xx (redirects followed) within 2 s.
pub fn http_ready(url: &str) -> bool {
    ureq::get(url).timeout(CHECK_TIMEOUT).call().is_ok()
}

/// True when a server on `127.0.0.1:port` sends an SMTP `220` greeting
/// within 2 s (a listening socket alone is not a server that serves).
pub fn smtp_greets(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, CHECK_TIMEOUT) else {
        return false;
    };
    if stream.set_read_timeout(Some(CHECK_TIMEOUT)).is_err() {
        return false;
    }
    let mut greeting = String::new();
    BufReader::new(stream).read_line(&mut greeting).is_ok()
        && (greeting.starts_with("220 ") || greeting.starts_with("220-"))
}
