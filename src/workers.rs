//! Session worker threads: one single-threaded Tokio runtime per core.
//!
//! A client session is a chain of short socket waits (client -> backend ->
//! client). On a work-stealing runtime every readiness event may wake a
//! second worker thread to steal the task, and those cross-core wake-ups cost
//! more CPU than the relay itself (measured: most of tandem's CPU went to
//! futex/scheduler wake-ups). Here each worker accepts its own connections
//! (`mysql::listener::serve`) and runs them for their whole life: their I/O,
//! timers and tasks stay on one thread, which sleeps only in `epoll_wait`.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

thread_local! {
    /// The index of the worker this thread runs, for per-worker state (the
    /// backend connection pools); `None` on other threads.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The index of the session worker running the caller, if any.
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// The pool of session worker threads.
pub struct Workers {
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<()>>,
    /// Cancelled when the workers must stop (after the shutdown grace period).
    stop: CancellationToken,
}

// === impl Workers ===

impl Workers {
    /// Starts `n` worker threads (at least one).
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("tandem-session-{i}"))
                .spawn(move || {
                    CURRENT.with(|c| c.set(Some(i)));
                    rt.block_on(stop.cancelled())
                })?;
            threads.push(thread);
        }
        Ok(Workers {
            handles,
            threads,
            stop,
        })
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Every worker's runtime, by index.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Accepts on every worker until `shutdown`: each gets a duplicate of
    /// `listener` and runs `on_accept` for the connections it accepts
    /// itself, so a connection starts on the thread that runs it for its
    /// whole life, with no hand-off between runtimes (deregister,
    /// cross-thread wake-up, register) per connect. An idle worker wakes
    /// first and wins the `accept`, which spreads the load. Returns when
    /// every loop has stopped.
    pub async fn accept_on_each<F, Fut>(
        &self,
        listener: TcpListener,
        tracker: TaskTracker,
        shutdown: CancellationToken,
        on_accept: F,
    ) where
        F: Fn(TcpStream, SocketAddr) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = match listener.into_std() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "listener cannot be shared with the workers");
                return;
            }
        };
        let mut loops = Vec::new();
        for handle in &self.handles {
            let sock = match listener.try_clone() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "listener cannot be shared with a worker");
                    continue;
                }
            };
            let (tracker, shutdown, on_accept) =
                (tracker.clone(), shutdown.clone(), on_accept.clone());
            loops.push(handle.spawn(async move {
                match TcpListener::from_std(sock) {
                    Ok(sock) => accept_loop(sock, tracker, shutdown, on_accept).await,
                    Err(e) => tracing::error!(error = %e, "worker cannot register the listener"),
                }
            }));
        }
        for l in loops {
            let _ = l.await;
        }
    }

    /// Stops the worker threads; tasks still running on them are dropped.
    pub fn stop(&mut self) {
        self.stop.cancel();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Accepts on the caller's runtime until `shutdown`; every connection runs
/// as a tracked task there.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    on_accept: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        tokio::spawn(tracker.track_future(on_accept(tcp, peer)));
    }
}

/// Pause after a failed accept (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
