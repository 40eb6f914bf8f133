//! An HTTP endpoint of the test harness that receives webhooks: it records
//! every POST (its headers and body) and answers as told: `200`, another
//! status, after a delay, or by closing the connection unanswered; and it
//! can go down (its port refuses connections) and come back on the same
//! port.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers each POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `200 OK`.
    Ok,
    /// This status, with a short body.
    Status(u16),
    /// `200 OK` after this wait.
    After(Duration),
    /// Closes the connection without an answer.
    Hang,
}

/// One POST received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// Its body.
    pub body: String,
}

/// The receiver, on a free loopback port, stopped when dropped.
pub struct WebhookReceiver {
    port: u16,
    reply: Arc<Mutex<Reply>>,
    received: Arc<Mutex<Vec<Received>>>,
    stopped: Arc<AtomicBool>,
}

impl WebhookReceiver {
    /// Starts a receiver answering `reply`.
    pub fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let receiver = Self {
            port,
            reply: Arc::new(Mutex::new(reply)),
            received: Arc::default(),
            stopped: Arc::default(),
        };
        receiver.serve(listener);
        receiver
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// Answers `reply` from now on.
    pub fn reply(&self, reply: Reply) {
        *self.reply.lock().expect("reply") = reply;
    }

    /// Every POST received, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    /// Stops listening: connections to its port are refused until [`up`].
    ///
    /// [`up`]: WebhookReceiver::up
    pub fn down(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        // The loop drops the listener once it sees the flag.
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Listens again, on the same port.
    pub fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the same port again");
        self.stopped = Arc::default();
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let (reply, received) = (self.reply.clone(), self.received.clone());
        crate::accept::serve_each(listener, self.stopped.clone(), move |stream| {
            let _ = answer(stream, &reply, &received);
        });
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request from `stream`, records it, and answers as `reply`
/// says.
fn answer(stream: TcpStream, reply: &Mutex<Reply>, received: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.is_empty() {
        return Ok(());
    }
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length = headers
        .get("content-length")
        .and_then(|length| length.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let reply = *reply.lock().expect("reply");
    received.lock().expect("received").push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let status = match reply {
        Reply::Ok => 200,
        Reply::Status(status) => status,
        Reply::After(wait) => {
            std::thread::sleep(wait);
            200
        }
        Reply::Hang => return Ok(()),
    };
    let text = if status < 300 { "" } else { "not now" };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}
