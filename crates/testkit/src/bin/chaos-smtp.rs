//! A recording SMTP server for chaos runs (`bench/chaos.sh`), whose
//! behaviour changes while it runs.
//!
//! ```text
//! chaos-smtp <port> <message-id file> <control file> [pace ms] [stamped]
//! ```
//!
//! It listens on `127.0.0.1:<port>` and appends the `Message-ID` of every
//! message it takes to the message-id file, one per line, written before
//! its `250` reply (so a message the client may believe lost is counted);
//! `stamped`, each line starts with the time it came, in milliseconds
//! since the Unix epoch (`bench/priority.sh` times messages by it).
//! The control file's first word sets the mode, read every 50 ms:
//!
//! - `accept` (or no file): takes every message, answering `MAIL FROM`
//!   after the pace (0 unless given: a relay that paces its clients before
//!   anything is delivered, which sets how long a run lasts);
//! - `slow <ms>`: as `accept`, and replies `<ms>` after each final `.`;
//! - `refuse`: answers each transaction `451` (a 4xx period);
//! - `down`: not listening (connections refused); sessions already open
//!   are closed with `421` at their next command, and a message already
//!   being transferred is still taken and answered.
//!
//! The session code is the harness's own ([`testkit::serve_session`]).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use testkit::{serve_session, Answer};

/// What the control file asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Listening, sessions answered as the [`Answer`] says.
    Up(Answer),
    /// Not listening.
    Down,
}

impl Mode {
    /// Parses the control file's content, `pace` being the wait before
    /// each `MAIL FROM` reply; `None` when it is not a mode.
    fn parse(content: &str, pace: Duration) -> Option<Self> {
        let accept = |reply_delay| {
            Self::Up(Answer::Accept {
                mail_delay: pace,
                reply_delay,
            })
        };
        let mut words = content.split_whitespace();
        match (words.next(), words.next()) {
            (None | Some("accept"), _) => Some(accept(Duration::ZERO)),
            (Some("slow"), Some(ms)) => ms.parse().ok().map(|ms| accept(Duration::from_millis(ms))),
            (Some("refuse"), _) => Some(Self::Up(Answer::Refuse)),
            (Some("down"), _) => Some(Self::Down),
            _ => None,
        }
    }

    /// How sessions answer in this mode.
    fn answer(self) -> Answer {
        match self {
            Self::Up(answer) => answer,
            Self::Down => Answer::Close,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, ids, control, pace, stamped) = match args.as_slice() {
        [port, ids, control] => (port, ids, control, "0", false),
        [port, ids, control, pace] => (port, ids, control, pace.as_str(), false),
        [port, ids, control, pace, stamped] if stamped == "stamped" => {
            (port, ids, control, pace.as_str(), true)
        }
        _ => {
            eprintln!("usage: chaos-smtp <port> <message-id file> <control file> [pace ms] [stamped]");
            std::process::exit(2);
        }
    };
    let Ok(pace) = pace.parse().map(Duration::from_millis) else {
        eprintln!("chaos-smtp: `{pace}` is not a number of milliseconds");
        std::process::exit(2);
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("chaos-smtp: `{port}` is not a port");
        std::process::exit(2);
    };
    let ids = match OpenOptions::new().create(true).append(true).open(ids) {
        Ok(file) => Arc::new(Mutex::new(file)),
        Err(error) => {
            eprintln!("chaos-smtp: cannot open {ids}: {error}");
            std::process::exit(1);
        }
    };
    let control = PathBuf::from(control);
    let mode = Arc::new(RwLock::new(read_mode(&control, pace, None)));
    if let Err(error) = run(port, &control, pace, &mode, &Recorder { ids, stamped }) {
        eprintln!("chaos-smtp: {error}");
        std::process::exit(1);
    }
}

/// The mode the control file asks for; `current` (at first: `accept`)
/// when it is missing or not a mode (a file being rewritten is read again
/// 50 ms later).
fn read_mode(control: &Path, pace: Duration, current: Option<Mode>) -> Mode {
    let fallback = current.unwrap_or(Mode::Up(Answer::Accept {
        mail_delay: pace,
        reply_delay: Duration::ZERO,
    }));
    std::fs::read_to_string(control)
        .ok()
        .and_then(|content| Mode::parse(&content, pace))
        .unwrap_or(fallback)
}

/// Where the `Message-ID`s go, and whether each line is stamped.
#[derive(Clone)]
struct Recorder {
    ids: Arc<Mutex<File>>,
    stamped: bool,
}

impl Recorder {
    /// Appends `message_id`'s line.
    fn record(&self, message_id: &str) -> std::io::Result<()> {
        let line = if self.stamped {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            format!("{} {message_id}\n", now.as_millis())
        } else {
            format!("{message_id}\n")
        };
        let mut file = self.ids.lock().expect("message-id file");
        file.write_all(line.as_bytes())?;
        file.flush()
    }
}

/// Follows the control file and serves sessions; listens only while the
/// mode is not `down`.
fn run(
    port: u16,
    control: &Path,
    pace: Duration,
    mode: &Arc<RwLock<Mode>>,
    recorder: &Recorder,
) -> std::io::Result<()> {
    let mut listener: Option<TcpListener> = None;
    let mut last_read = std::time::Instant::now();
    eprintln!("chaos-smtp: port {port}, mode {:?}", *mode.read().expect("mode"));
    loop {
        if last_read.elapsed() >= Duration::from_millis(50) {
            last_read = std::time::Instant::now();
            let current = *mode.read().expect("mode");
            let next = read_mode(control, pace, Some(current));
            if next != current {
                eprintln!("chaos-smtp: mode {current:?} -> {next:?}");
                *mode.write().expect("mode") = next;
            }
        }
        let current = *mode.read().expect("mode");
        match (&listener, current) {
            (Some(_), Mode::Down) => listener = None,
            (None, Mode::Up(_)) => match TcpListener::bind(("127.0.0.1", port)) {
                Ok(bound) => {
                    bound.set_nonblocking(true)?;
                    listener = Some(bound);
                }
                // The port may linger a moment after being closed.
                Err(error) => eprintln!("chaos-smtp: cannot listen on {port} yet: {error}"),
            },
            _ => {}
        }
        let Some(open) = &listener else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        match open.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                let _ = stream.set_nodelay(true);
                let (mode, recorder) = (mode.clone(), recorder.clone());
                std::thread::spawn(move || {
                    let _ = serve_session(
                        stream,
                        || mode.read().expect("mode").answer(),
                        |message_id| recorder.record(message_id),
                    );
                });
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => eprintln!("chaos-smtp: accept: {error}"),
        }
    }
}
