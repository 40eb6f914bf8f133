//! Serving connections with hyper directly rather than through
//! `axum::serve`, for the one setting `axum::serve` does not offer: a bound
//! on the time a client may take to send a request's headers. Without it a
//! client that opens connections and sends half a request line holds each
//! open for as long as it likes, until the process runs out of file
//! descriptors.
//!
//! The rest is what `axum::serve` does with axum's default features:
//! HTTP/1, one task per connection, and at shutdown no new connections
//! while those open finish their requests.

use std::io;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `app` on `listener` until `shutdown`, closing a connection whose
/// request headers take longer than `header_read` to arrive; then waits
/// for the connections still open to finish their requests.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    header_read: Duration,
) {
    let mut builder = Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A failed accept: one client's connection gone before it was accepted
/// is nothing; anything else (out of file descriptors) is logged and
/// waited out for a second rather than retried in a busy loop.
async fn accept_failed(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(error = %error, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
