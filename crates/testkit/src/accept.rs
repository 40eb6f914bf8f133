//! The accept loop of the harness's own SMTP servers: each connection
//! served on a thread of its own until the server is dropped.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Serves each connection `listener` accepts with `session`, on a thread
/// of its own, until `stopped` is set (and a connection wakes the loop).
pub(crate) fn serve_each(
    listener: TcpListener,
    stopped: Arc<AtomicBool>,
    session: impl Fn(TcpStream) + Clone + Send + 'static,
) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            let Ok(stream) = stream else { continue };
            let session = session.clone();
            std::thread::spawn(move || session(stream));
        }
    });
}
