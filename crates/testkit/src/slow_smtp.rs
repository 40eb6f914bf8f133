//! A small SMTP server of the test harness that takes its time: it answers
//! the end of each message only after a delay, as an overloaded or
//! tarpitting server does, and records the `Message-ID` of every message it
//! received (at the final `.`, before its reply: from then on the message
//! is the server's, whatever the client makes of the wait). Started with
//! another [`Answer`], it misbehaves in the ways a client must survive:
//! silent after a message, refusing every session or every sender.
//!
//! Its session code, [`serve_session`], is public so that other servers of
//! the harness (the `chaos-smtp` binary) answer the same way while changing
//! their behaviour at run time through an [`Answer`] read at each command.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The server, on a free loopback port, stopped when dropped.
pub struct SlowSmtp {
    port: u16,
    received: Arc<Mutex<Vec<(String, Instant)>>>,
    stopped: Arc<AtomicBool>,
}

impl SlowSmtp {
    /// Starts a server that replies `250` to each message `reply_delay`
    /// after receiving it.
    pub fn start(reply_delay: Duration) -> Self {
        Self::answering(Answer::Accept {
            mail_delay: Duration::ZERO,
            reply_delay,
        })
    }

    /// Starts a server whose every session answers as `answer` says.
    pub fn answering(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let log = received.clone();
        crate::accept::serve_each(listener, stopped.clone(), move |stream| {
            let _ = serve_session(
                stream,
                || answer,
                |message_id| {
                    log.lock()
                        .expect("received ids")
                        .push((message_id.to_string(), Instant::now()));
                    Ok(())
                },
            );
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
        self.received_at().into_iter().map(|(id, _)| id).collect()
    }

    /// The `Message-ID` of every message received and when its final `.`
    /// came, in order.
    pub fn received_at(&self) -> Vec<(String, Instant)> {
        self.received.lock().expect("received ids").clone()
    }

    /// How many times each `Message-ID` was received: what tests of
    /// exactly-once sending count, where more than 1 is an email sent again.
    pub fn copies(&self) -> BTreeMap<String, usize> {
        let mut copies = BTreeMap::new();
        for id in self.message_ids() {
            *copies.entry(id).or_default() += 1;
        }
        copies
    }
}

impl Drop for SlowSmtp {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// How a session answers, asked afresh before each reply that matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Takes every message: replies to `MAIL FROM` after `mail_delay` (a
    /// server that paces its clients before a transaction, when nothing
    /// is delivered yet), and `250` to the message `reply_delay` after its
    /// final `.`.
    Accept {
        /// The wait before the reply to `MAIL FROM`.
        mail_delay: Duration,
        /// The wait before the reply to a message's final `.`.
        reply_delay: Duration,
    },
    /// Refuses each transaction for now: `451` to `MAIL FROM` (and to a
    /// `RCPT TO` or `DATA` of a transaction begun before), so that nothing
    /// is ever half delivered.
    Refuse,
    /// Ends the session at the next command, answering `421` (a message
    /// already in `DATA` is still taken and answered first).
    Close,
    /// Takes each message and never answers its final `.`, nor anything
    /// after (not even `QUIT`): the session reads until the client hangs
    /// up, as a server that froze mid-transaction does.
    Silent,
    /// Refuses every sender for good: `code` (a 5xx such as `530`
    /// authentication required, `550` or `553` sender refused) to each
    /// `MAIL FROM` (and `503` to a `RCPT TO` or `DATA` after it).
    RefuseSender(u16),
    /// Refuses every session for good: `554` as its greeting (and to any
    /// command of a session begun before), then ends it.
    Unavailable,
}

/// One SMTP session on `stream`: enough of RFC 5321 for a client that
/// sends mail. `answer` is asked before the greeting, before each `MAIL`,
/// `RCPT`, `DATA` and after each message; `record` gets the `Message-ID`
/// of each message taken (empty when it has none), before its reply, and
/// a failure to record refuses the message with `451`.
pub fn serve_session(
    stream: TcpStream,
    answer: impl Fn() -> Answer,
    record: impl Fn(&str) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    if answer() == Answer::Unavailable {
        return writer.write_all(b"554 5.3.2 no service here\r\n");
    }
    writer.write_all(b"220 slow-smtp ready\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let transaction = matches!(verb.as_str(), "MAIL" | "RCPT" | "DATA");
        if transaction {
            match answer() {
                Answer::Accept { mail_delay, .. } => {
                    if verb == "MAIL" {
                        std::thread::sleep(mail_delay);
                    }
                }
                Answer::Silent => {}
                Answer::Refuse => {
                    writer.write_all(b"451 4.3.2 try again later\r\n")?;
                    continue;
                }
                Answer::RefuseSender(code) => {
                    let reply = match verb.as_str() {
                        "MAIL" => format!("{code} 5.7.1 sender refused\r\n"),
                        _ => "503 5.5.1 no sender\r\n".to_string(),
                    };
                    writer.write_all(reply.as_bytes())?;
                    continue;
                }
                Answer::Close => {
                    writer.write_all(b"421 4.3.2 closing\r\n")?;
                    return Ok(());
                }
                Answer::Unavailable => {
                    writer.write_all(b"554 5.3.2 no service here\r\n")?;
                    return Ok(());
                }
            }
        }
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-slow-smtp\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n",
            "DATA" => {
                writer.write_all(b"354 go ahead\r\n")?;
                let message_id = read_message(&mut reader)?;
                if record(&message_id).is_err() {
                    b"451 4.3.0 cannot store the message\r\n"
                } else {
                    // Asked again: the mode may have changed while the
                    // message arrived; a message taken is answered unless
                    // the server is to fall silent.
                    match answer() {
                        Answer::Accept { reply_delay, .. } => std::thread::sleep(reply_delay),
                        Answer::Silent => return read_until_hang_up(&mut reader),
                        _ => {}
                    }
                    b"250 queued\r\n"
                }
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

/// Reads and ignores everything until the client closes the connection.
fn read_until_hang_up(reader: &mut impl BufRead) -> std::io::Result<()> {
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        line.clear();
    }
    Ok(())
}

/// Reads a message up to its final `.`; returns its `Message-ID` (empty
/// when it has none).
pub(crate) fn read_message(reader: &mut impl BufRead) -> std::io::Result<String> {
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
