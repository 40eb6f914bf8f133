//! The runtime the read routes' handlers run on: a thread of its own, at
//! the lowest priority the scheduler has (`SCHED_IDLE`).
//!
//! A service's stream handlers and its routes share one process and its
//! cores. On a single-threaded runtime a read's handler (its query, its
//! JSON) runs between the stream handlers' steps and delays them, and at
//! the usual priority readers that ask again as soon as they are answered
//! take half the cores from the pipeline (`bench/http-load.sh`). On a
//! thread of their own at the idle priority, the reads' handlers run on
//! the time the pipeline leaves: the kernel preempts them as soon as a
//! thread of the pipeline is ready to run.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

/// A thread running a single-threaded runtime at the idle priority, until
/// this is dropped.
pub struct ReadRuntime {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl ReadRuntime {
    /// Starts the thread, named `name`.
    pub fn start(name: &str) -> anyhow::Result<Self> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (started, handle) = std::sync::mpsc::channel();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            crate::priority::lower_this_thread_to_idle();
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = started.send(Err(error));
                    return;
                }
            };
            let _ = started.send(Ok(runtime.handle().clone()));
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })?;
        let handle = handle.recv()??;
        Ok(Self { handle, _stop: stop })
    }

    /// Runs `work` on this runtime and waits for its output; dropping the
    /// returned future stops the work.
    pub async fn run<F>(&self, work: F) -> Result<F::Output, tokio::task::JoinError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        AbortOnDropHandle::new(self.handle.spawn(work)).await
    }
}
