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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

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
    next: AtomicUsize,
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
            next: AtomicUsize::new(0),
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

    /// A worker for the next task (round robin).
    pub fn pick(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }

    /// Stops the worker threads; tasks still running on them are dropped.
    pub fn stop(&mut self) {
        self.stop.cancel();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
