//! An SMTP server of the test harness that throttles one domain, as
//! gmail.com and outlook.com do a sender that goes too fast for them: a
//! `RCPT TO` of that domain sooner than its interval after the last one it
//! took is answered `451 4.7.0 too many messages, slow down`; every other
//! recipient is taken at once. It records each message it takes with its
//! recipient and the moment it took it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the sessions share.
struct Shared {
    /// The domain throttled, lowercase.
    domain: String,
    /// The least time between two of its recipients taken.
    interval: Duration,
    /// When it last took one of them.
    last: Mutex<Option<Instant>>,
    /// Each message taken: its recipient and when.
    received: Mutex<Vec<(String, Instant)>>,
    /// Throttling replies given.
    refused: AtomicU64,
}

/// The server, on a free loopback port, stopped when dropped.
pub struct ThrottlingSmtp {
    port: u16,
    shared: Arc<Shared>,
    stopped: Arc<AtomicBool>,
}

impl ThrottlingSmtp {
    /// Starts a server that takes at most `per_second` recipients a
    /// second of `domain`, and any number of every other domain.
    pub fn start(domain: &str, per_second: f64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            domain: domain.to_ascii_lowercase(),
            interval: Duration::from_secs_f64(1.0 / per_second),
            last: Mutex::new(None),
            received: Mutex::new(Vec::new()),
            refused: AtomicU64::new(0),
        });
        let stopped = Arc::new(AtomicBool::new(false));
        let sessions = shared.clone();
        crate::accept::serve_each(listener, stopped.clone(), move |stream| {
            let _ = session(stream, &sessions);
        });
        Self {
            port,
            shared,
            stopped,
        }
    }

    /// Its SMTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Each message taken, in order: its recipient and when.
    pub fn received(&self) -> Vec<(String, Instant)> {
        self.shared.received.lock().expect("received").clone()
    }

    /// How many throttling replies it gave.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for ThrottlingSmtp {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One session: enough of RFC 5321 for a client that sends mail, one
/// recipient a message.
fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 throttling-smtp ready\r\n")?;
    let mut recipient: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-throttling-smtp\r\n250 8BITMIME\r\n",
            "HELO" | "NOOP" => b"250 ok\r\n",
            "MAIL" | "RSET" => {
                recipient = None;
                b"250 ok\r\n"
            }
            "RCPT" => {
                let address = command
                    .split_once('<')
                    .and_then(|(_, rest)| rest.split_once('>'))
                    .map(|(address, _)| address.to_ascii_lowercase())
                    .unwrap_or_default();
                if address.ends_with(&format!("@{}", shared.domain)) && !take_one(shared) {
                    shared.refused.fetch_add(1, Ordering::SeqCst);
                    b"451 4.7.0 too many messages, slow down\r\n"
                } else {
                    recipient = Some(address);
                    b"250 ok\r\n"
                }
            }
            "DATA" => {
                writer.write_all(b"354 go ahead\r\n")?;
                crate::slow_smtp::read_message(&mut reader)?;
                let to = recipient.take().unwrap_or_default();
                shared
                    .received
                    .lock()
                    .expect("received")
                    .push((to, Instant::now()));
                b"250 queued\r\n"
            }
            "QUIT" => {
                writer.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => b"502 not implemented\r\n",
        };
        writer.write_all(reply)?;
    }
}

/// Whether the throttled domain may take one more recipient now; takes it
/// if so.
fn take_one(shared: &Shared) -> bool {
    let mut last = shared.last.lock().expect("last taken");
    let now = Instant::now();
    if last.is_some_and(|last| now.duration_since(last) < shared.interval) {
        return false;
    }
    *last = Some(now);
    true
}
