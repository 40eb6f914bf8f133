//! A small SMTP server of the test harness that takes its time: it answers
//! the end of each message only after a delay, as an overloaded or
//! tarpitting server does, and records the `Message-ID` of every message it
//! received (at the final `.`, before its reply: from then on the message
//! is the server's, whatever the client makes of the wait).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server, on a free loopback port, stopped when dropped.
pub struct SlowSmtp {
    port: u16,
    received: Arc<Mutex<Vec<String>>>,
    stopped: Arc<AtomicBool>,
}

impl SlowSmtp {
    /// Starts a server that replies `250` to each message `reply_delay`
    /// after receiving it.
    pub fn start(reply_delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (log, stop) = (received.clone(), stopped.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, reply_delay, &log);
                });
            }
        });
        Self {
            port,
            received,
            stopped,
        }
    }

    /// Its SMTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Message-ID` of every message received, in order, duplicates
    /// included.
    pub fn message_ids(&self) -> Vec<String> {
        self.received.lock().expect("received ids").clone()
    }
}

impl Drop for SlowSmtp {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One SMTP session: enough of RFC 5321 for a client that sends mail.
fn serve(stream: TcpStream, reply_delay: Duration, received: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 slow-smtp ready\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-slow-smtp\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n",
            "DATA" => {
                writer.write_all(b"354 go ahead\r\n")?;
                let message_id = read_message(&mut reader)?;
                received.lock().expect("received ids").push(message_id);
                std::thread::sleep(reply_delay);
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

/// Reads a message up to its final `.`; returns its `Message-ID` (empty
/// when it has none).
fn read_message(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut message_id = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let content = line.trim_end_matches(['\r', '\n']);
        if content == "." {
            return Ok(message_id);
        }
        if let Some((name, value)) = content.split_once(':') {
            if message_id.is_empty() && name.eq_ignore_ascii_case("message-id") {
                message_id = value.trim().to_string();
            }
        }
    }
}
