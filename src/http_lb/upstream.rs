//! Keep-alive HTTP/1.1 connections to the servers, one pool per session
//! worker, driven by the request that uses them.
//!
//! hyper-util's pooled client runs each upstream connection as its own task
//! and hands every request to it and the response back over channels: two
//! extra task wake-ups per request. Here a [`Lease`] holds the connection
//! itself: the request's task polls it while waiting for the response head,
//! and the response body polls it until the body ends, then puts it back.
//! Nothing runs between requests except a sweep every half idle timeout
//! that closes connections idle too long or closed by the server.
//!
//! ```text
//!   take (newest idle | connect) ──> send + poll conn ──> head ──> body polls conn
//!        ▲                                                              │ end
//!        └──────────── idle list [worker][server] <─── release ─────────┘
//! ```

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::FrontendConfig;

use super::body::ForwardBody;

type Io = TokioIo<TcpStream>;

/// A frontend's idle connections to its servers.
pub struct Upstreams {
    /// `[worker * servers + server]`. A std mutex: each list is used by one
    /// worker thread (uncontended), locked for a push or pop, never across
    /// an await.
    idle: Vec<Mutex<Vec<Idle>>>,
    /// The relay's plain sockets, indexed like `idle`.
    raw: Vec<Mutex<Vec<RawIdle>>>,
    /// Whether the worker's sweep task runs (started with its first idle
    /// connection, on that worker's runtime).
    sweeping: Vec<AtomicBool>,
    servers: usize,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// One connection to a server.
pub struct Conn {
    tx: http1::SendRequest<ForwardBody>,
    /// Boxed (once per connection): hyper's connection state is ~700
    /// bytes, moved at every take and release.
    io: Box<http1::Connection<Io, ForwardBody>>,
    /// The connection future finished: the socket is closed.
    done: bool,
}

/// A connection in use by one request, put back when its response ends.
pub struct Lease {
    conn: Conn,
    home: Arc<Upstreams>,
    slot: usize,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// An idle socket of the relay, between two exchanges.
struct RawIdle {
    stream: TcpStream,
    since: Instant,
}

/// Why a request got no response head from a server.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made: nothing was sent.
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connect: timed out")]
    ConnectTimeout,
    #[error("http: {0}")]
    Http(#[source] hyper::Error),
}

// === impl Upstreams ===

impl Upstreams {
    pub fn new(
        cfg: &FrontendConfig,
        servers: usize,
        workers: usize,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let workers = workers.max(1);
        Upstreams {
            idle: (0..workers * servers.max(1))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
            raw: (0..workers * servers.max(1))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
            sweeping: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            servers: servers.max(1),
            max_idle: cfg.pool_max_idle_per_server,
            idle_timeout: Duration::from_millis(cfg.pool_idle_timeout_ms),
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
            tracker,
            shutdown,
        }
    }

    fn worker(&self) -> usize {
        crate::workers::current().unwrap_or(0) % self.sweeping.len()
    }

    /// The relay's slot for server `index` on this worker.
    pub fn raw_slot(&self, index: usize) -> usize {
        self.worker() * self.servers + index
    }

    /// The newest idle socket of `slot` that the server has not closed.
    pub fn take_raw(&self, slot: usize) -> Option<TcpStream> {
        let mut idle = self.raw[slot].lock().unwrap_or_else(|e| e.into_inner());
        while let Some(found) = idle.pop() {
            if found.since.elapsed() >= self.idle_timeout {
                // Everything older is expired too.
                idle.clear();
                return None;
            }
            if still_open(&found.stream) {
                return Some(found.stream);
            }
        }
        None
    }

    /// A new socket to `addr` for the relay, within the connect timeout.
    pub async fn connect_raw(&self, addr: SocketAddr) -> Result<TcpStream, UpstreamError> {
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(s)
            }
            Ok(Err(e)) => Err(UpstreamError::Connect(e)),
            Err(_) => Err(UpstreamError::ConnectTimeout),
        }
    }

    /// Keeps a socket whose last exchange ended cleanly for the next one.
    pub fn release_raw(self: &Arc<Self>, slot: usize, stream: TcpStream) {
        if self.max_idle == 0 || self.shutdown.is_cancelled() {
            return;
        }
        {
            let mut idle = self.raw[slot].lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() >= self.max_idle {
                idle.remove(0);
            }
            idle.push(RawIdle {
                stream,
                since: Instant::now(),
            });
        }
        self.start_sweep(slot / self.servers);
    }

    /// Sends `req` to server `index` at `addr` on an idle connection of this
    /// worker, or a new one, and drives the connection until the response
    /// head arrives.
    pub async fn request(
        self: &Arc<Self>,
        index: usize,
        addr: SocketAddr,
        mut req: Request<ForwardBody>,
    ) -> Result<(Response<Incoming>, Lease), UpstreamError> {
        let slot = self.worker() * self.servers + index;
        loop {
            let (conn, reused) = match self.take(slot).await {
                Some(c) => (c, true),
                None => (self.connect(addr).await?, false),
            };
            let mut lease = Lease {
                conn,
                home: self.clone(),
                slot,
            };
            match lease.send(req).await {
                Ok(response) => return Ok((response, lease)),
                // The server closed an idle connection as it was taken:
                // the request was not written, so it goes on a fresh one.
                Err(mut e) if reused && e.error().is_canceled() => match e.take_message() {
                    Some(r) => req = r,
                    None => return Err(UpstreamError::Http(e.into_error())),
                },
                Err(e) => return Err(UpstreamError::Http(e.into_error())),
            }
        }
    }

    /// A new connection for an upgrade (WebSocket): it runs as its own task
    /// so that it can hand its socket over to the tunnel.
    pub async fn request_upgrade(
        &self,
        addr: SocketAddr,
        req: Request<ForwardBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let Conn { mut tx, io, .. } = self.connect(addr).await?;
        let io = *io;
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                r = io.with_upgrades() => {
                    if let Err(e) = r {
                        tracing::debug!("http: upgraded server connection ended: {e}");
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        });
        tx.send_request(req).await.map_err(UpstreamError::Http)
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Conn, UpstreamError> {
        let tcp = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
            Err(_) => return Err(UpstreamError::ConnectTimeout),
        };
        let _ = tcp.set_nodelay(true);
        let (tx, io) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(UpstreamError::Http)?;
        Ok(Conn {
            tx,
            io: Box::new(io),
            done: false,
        })
    }

    /// The newest idle connection of `slot` that is still open and ready.
    async fn take(&self, slot: usize) -> Option<Conn> {
        loop {
            let mut conn = {
                let mut idle = self.idle[slot].lock().unwrap_or_else(|e| e.into_inner());
                let found = idle.pop()?;
                if found.since.elapsed() >= self.idle_timeout {
                    // Everything older is expired too.
                    idle.clear();
                    return None;
                }
                found.conn
            };
            // One poll lets the connection notice a close by the server and
            // finish the previous exchange, so it wants the next request.
            poll_fn(|cx| {
                conn.poll_io(cx);
                Poll::Ready(())
            })
            .await;
            if !conn.done && conn.tx.is_ready() {
                return Some(conn);
            }
        }
    }

    fn release(self: &Arc<Self>, slot: usize, conn: Conn) {
        if conn.done || conn.tx.is_closed() || self.max_idle == 0 {
            return;
        }
        {
            let mut idle = self.idle[slot].lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() >= self.max_idle {
                idle.remove(0);
            }
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
        self.start_sweep(slot / self.servers);
    }

    fn start_sweep(self: &Arc<Self>, worker: usize) {
        if !self.sweeping[worker].swap(true, Ordering::Relaxed) {
            let me = self.clone();
            self.tracker.spawn(async move { me.sweep(worker).await });
        }
    }

    /// Closes this worker's connections idle longer than the idle timeout
    /// or closed by their server, until shutdown.
    async fn sweep(self: Arc<Self>, worker: usize) {
        let mut tick =
            tokio::time::interval((self.idle_timeout / 2).max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let slots = slots_of(&self.idle, worker, self.servers);
            poll_fn(|cx| {
                for slot in slots {
                    let mut idle = slot.lock().unwrap_or_else(|e| e.into_inner());
                    idle.retain_mut(|i| {
                        i.conn.poll_io(cx);
                        !i.conn.done && i.since.elapsed() < self.idle_timeout
                    });
                }
                Poll::Ready(())
            })
            .await;
            for slot in slots_of(&self.raw, worker, self.servers) {
                let mut idle = slot.lock().unwrap_or_else(|e| e.into_inner());
                idle.retain(|i| i.since.elapsed() < self.idle_timeout && still_open(&i.stream));
            }
        }
        for slot in slots_of(&self.idle, worker, self.servers) {
            slot.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        for slot in slots_of(&self.raw, worker, self.servers) {
            slot.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

/// False when an idle socket became readable: the server closed it (or
/// sent bytes nobody asked for). Uses the readiness the runtime already
/// has, so an open socket costs no system call.
fn still_open(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match stream.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => matches!(
            stream.try_read(&mut [0u8; 1]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        ),
    }
}

fn slots_of<T>(all: &[T], worker: usize, servers: usize) -> &[T] {
    &all[worker * servers..(worker + 1) * servers]
}

// === impl Conn ===

impl Conn {
    /// Drives the connection's I/O; notes when it has closed.
    fn poll_io(&mut self, cx: &mut Context<'_>) {
        if self.done {
            return;
        }
        if let Poll::Ready(r) = Pin::new(&mut *self.io).poll(cx) {
            if let Err(e) = r {
                tracing::debug!("http: server connection ended: {e}");
            }
            self.done = true;
        }
    }
}

// === impl Lease ===

impl Lease {
    /// Sends the request and drives the connection until the head arrives.
    async fn send(
        &mut self,
        req: Request<ForwardBody>,
    ) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<ForwardBody>>> {
        let mut sent = std::pin::pin!(self.conn.tx.try_send_request(req));
        let conn = &mut self.conn;
        poll_fn(|cx| {
            conn.poll_io(cx);
            sent.as_mut().poll(cx)
        })
        .await
    }

    /// Drives the connection while the response body is read.
    pub fn poll_io(&mut self, cx: &mut Context<'_>) {
        self.conn.poll_io(cx);
    }

    /// The response was read to its end: the connection may serve another.
    pub fn release(self) {
        self.home.release(self.slot, self.conn);
    }
}
