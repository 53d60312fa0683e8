//! The HTTP/1.x fast path: a client connection's requests relayed to the
//! servers on plain keep-alive sockets, with the heads parsed once
//! (`httparse`) and rewritten as bytes, bodies passed on as they arrive,
//! and one timer per connection.
//!
//! Through hyper a request was parsed into a header map, rebuilt for the
//! server, encoded, and the same again for its response: about half of
//! tandem's CPU per proxied request. The relay does only what a proxy must:
//! the rules are the same as hyper's path ([`super::proxy`]): hop-by-hop
//! fields removed, forwarding fields set, retries only when safe, the same
//! answers, metrics and access log lines.
//!
//! Anything else hands the connection to hyper, with the bytes already read
//! put back ([`io::Rewind`]): HTTP/2 (prior knowledge), upgrades
//! (WebSocket), `Expect`, chunked request bodies, absolute-form targets,
//! malformed or oversized heads (hyper answers those with 400/431).
//!
//! ```text
//!   read head ──> parse_request ──Hyper──> listener::serve_io(Rewind)
//!       ▲              │ Ready
//!       │              ▼
//!       │      body <= 64 KiB read whole ──> pick ──> idle socket | connect ──> write head (+ body)
//!       │                                    ▲ retry when safe                    │
//!       │                                    └──────── error before a head ◀──────┤
//!       │                                                                         ▼
//!       └── keep-alive ◀── release socket ◀── body (length | chunked | close) ◀── parse_response
//! ```

mod attempt;
mod chunked;
mod head;
mod io;
mod response;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Buf, BytesMut};
use hyper::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::body::OnEnd;
use super::proxy::{
    no_server, Activity, Answer, Finish, Frontend, Inflight, LogInfo, SERVER_FAILED, TIMED_OUT,
    TOO_LARGE,
};
use super::server::Server;
use super::upstream::UpstreamError;

use head::{Forwarding, Request, RequestHead};
pub use io::Rewind;
use io::Watchdog;

/// Bytes read from a socket at a time (and the most a body keeps buffered).
const READ_CHUNK: usize = 16 * 1024;
const REQUEST_TIMEOUT: Answer = (StatusCode::REQUEST_TIMEOUT, "408 request timeout\n");
/// Room made for a request head per read (heads are usually under 1 KiB).
const HEAD_CHUNK: usize = 4 * 1024;
/// A request head larger than this goes to hyper, which answers 431.
const MAX_HEAD: usize = 64 * 1024;
/// Request bodies up to this are read whole before a server is chosen, so
/// that an attempt that failed before any answer can be retried.
const BUFFERED_BODY: u64 = 64 * 1024;

/// One client connection on the relay (borrowing its frontend for its
/// whole life: no reference count touched per request).
struct Client<'a, S> {
    io: S,
    peer: SocketAddr,
    tls: bool,
    fe: &'a Arc<Frontend>,
    activity: Arc<Activity>,
    /// Bytes from the client not yet used.
    buf: BytesMut,
    /// Bytes for the client.
    out: BytesMut,
    /// Bytes from the server.
    ubuf: BytesMut,
    /// Bytes for the server.
    uout: BytesMut,
    wd: Watchdog,
    idle: Duration,
}

/// Whether the client connection stays open after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Keep,
    Close,
}

/// Why an attempt on a server failed before its response head.
enum Failed {
    /// The socket was an idle one the server had closed: nothing reached
    /// the application, the request goes on another socket.
    Stale,
    /// The connection could not be made: nothing was sent.
    Connect(UpstreamError),
    /// The request may have reached the server.
    Sent(String),
    Timeout,
    /// The client went away while its body was being sent.
    ClientGone,
}

/// The outcome of waiting for a request head.
enum Head {
    Ready(RequestHead),
    /// hyper serves the connection from here on.
    Hyper,
    /// The connection ends (closed, timed out, shutdown).
    End,
}

/// What follows a failed attempt.
enum After {
    Retry,
    Answer(Answer, bool),
    Close,
}

/// Serves HTTP/1.x requests on `io` until the connection ends; returns the
/// connection (with what was read of it) when hyper must take over.
pub async fn serve<S>(
    io: S,
    peer: SocketAddr,
    tls: bool,
    fe: &Arc<Frontend>,
    shutdown: &CancellationToken,
) -> Option<Rewind<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let header = Duration::from_millis(fe.cfg.client_header_timeout_ms);
    let mut c = Client {
        io,
        peer,
        tls,
        fe,
        activity: Arc::new(Activity::default()),
        buf: BytesMut::new(),
        out: BytesMut::new(),
        ubuf: BytesMut::new(),
        uout: BytesMut::new(),
        wd: Watchdog::new(Instant::now() + header),
        idle: Duration::from_millis(fe.cfg.client_idle_timeout_ms),
    };
    let mut cancelled = std::pin::pin!(shutdown.cancelled());
    loop {
        let head = match c.next_head(cancelled.as_mut()).await {
            Head::Ready(h) => h,
            Head::Hyper => return Some(Rewind::new(c.buf, c.io)),
            Head::End => return None,
        };
        if c.exchange(head, shutdown).await == Next::Close || shutdown.is_cancelled() {
            break;
        }
        c.free_buffers();
        // As with hyper's header_read_timeout, the wait for the next
        // request on a kept connection counts toward the head's deadline.
        c.wd.set(Instant::now() + header.min(c.idle));
    }
    c.wd.set(Instant::now() + Duration::from_secs(1));
    let _ = c.wd.run(c.io.shutdown()).await;
    None
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<'_, S> {
    /// Reads until a request head is complete; shutdown ends only a wait
    /// in which no byte of a request has come.
    async fn next_head(&mut self, mut cancelled: Pin<&mut WaitForCancellationFuture<'_>>) -> Head {
        let forwarding = Forwarding {
            ip: self.peer.ip(),
            tls: self.tls,
            forwarded: self.fe.cfg.forwarded_header,
            cookie: self.fe.cfg.cookie.as_deref(),
            log: self.fe.access_log.is_some(),
        };
        loop {
            if !self.buf.is_empty() {
                match head::parse_request(&self.buf, forwarding, &mut self.uout) {
                    Request::Ready(h) => return Head::Ready(h),
                    Request::Hyper => return Head::Hyper,
                    Request::Partial if self.buf.len() > MAX_HEAD => return Head::Hyper,
                    Request::Partial => {}
                }
            }
            self.buf.reserve(HEAD_CHUNK);
            let waiting = self.buf.is_empty();
            let read = tokio::select! {
                biased;
                r = self.wd.run(self.io.read_buf(&mut self.buf)) => r,
                _ = cancelled.as_mut(), if waiting => return Head::End,
            };
            match read {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return Head::End,
                Err(_) => {
                    if !waiting {
                        tracing::debug!(peer = %self.peer, "http: request head not received in time");
                        self.local(REQUEST_TIMEOUT, true).await;
                    }
                    return Head::End;
                }
            }
        }
    }

    /// Between requests a connection keeps only small buffers (a few KiB
    /// at most): thousands of idle keep-alive connections cost their
    /// sockets, not the 16 KiB a body passed through needed.
    fn free_buffers(&mut self) {
        // Only the client's bytes can outlive an exchange (pipelining).
        self.uout.clear();
        self.ubuf.clear();
        for b in [&mut self.buf, &mut self.out, &mut self.ubuf, &mut self.uout] {
            if b.is_empty() && b.capacity() > HEAD_CHUNK {
                *b = BytesMut::new();
            }
        }
    }

    /// One request and its response.
    async fn exchange(&mut self, head: RequestHead, shutdown: &CancellationToken) -> Next {
        let fe = self.fe;
        self.buf.advance(head.len);
        let mut done = self.start(&head);
        if fe.cfg.max_body_bytes.is_some_and(|max| head.body > max) {
            done.status(TOO_LARGE.0.as_u16());
            self.local(TOO_LARGE, true).await;
            return Next::Close;
        }
        let buffered = head.body <= BUFFERED_BODY;
        if buffered && !self.read_body(head.body).await {
            return Next::Close;
        }
        let mut tried: Vec<usize> = Vec::new();
        loop {
            let index = match fe.pool.pick(self.peer.ip(), head.sticky.as_deref(), &tried) {
                Ok(i) => i,
                Err(e) => return self.fail(&mut done, &head, buffered, no_server(e)).await,
            };
            if !tried.is_empty() {
                fe.metrics.retries.increment(1);
            }
            if let Some(f) = done.finish.as_mut() {
                f.attempts += 1;
            }
            let server = &fe.pool.servers[index];
            let inflight = Inflight::new(server);
            match self.on_server(&head, server, index, buffered).await {
                Ok((up, slot, response)) => {
                    if buffered {
                        self.buf.advance(head.body as usize);
                    }
                    fe.pool.report(index, response.status < 500);
                    done.status(response.status);
                    if let Some(f) = done.finish.as_mut() {
                        f.server = Some(inflight);
                    }
                    return self
                        .respond(&head, response, up, slot, &mut done, shutdown)
                        .await;
                }
                Err(failure) => {
                    drop(inflight);
                    match self.after(failure, index, server, &mut tried, &head, buffered) {
                        After::Retry => {}
                        After::Close => return Next::Close,
                        After::Answer(answer, body_read) => {
                            return self.fail(&mut done, &head, body_read, answer).await
                        }
                    }
                }
            }
        }
    }

    /// Counts the request in flight and captures its access log fields.
    fn start(&self, head: &RequestHead) -> Done {
        let log = head.log.as_ref().map(|l| {
            Box::new(LogInfo {
                client: self.peer.ip(),
                time: SystemTime::now(),
                request_line: l.request_line.clone(),
                referer: l.referer.clone(),
                user_agent: l.user_agent.clone(),
            })
        });
        Done {
            finish: Some(Finish::start(self.fe, &self.activity, log)),
            sent: 0,
        }
    }

    /// Reads a small body whole into `buf`; false if the client went away
    /// or paused longer than the idle timeout.
    async fn read_body(&mut self, len: u64) -> bool {
        while (self.buf.len() as u64) < len {
            self.wd.set(Instant::now() + self.idle);
            self.buf.reserve(READ_CHUNK);
            match self.wd.run(self.io.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return false,
            }
        }
        true
    }

    /// Reports a failed attempt and decides: another server only when the
    /// request cannot have reached the application twice.
    fn after(
        &self,
        failure: Failed,
        index: usize,
        server: &Server,
        tried: &mut Vec<usize>,
        head: &RequestHead,
        buffered: bool,
    ) -> After {
        let fe = self.fe;
        let error = match failure {
            Failed::ClientGone => return After::Close,
            Failed::Timeout => {
                fe.pool.report(index, false);
                tracing::debug!(server = %server.name, "http: no response within backend_timeout_ms");
                return After::Answer(TIMED_OUT, false);
            }
            // Every kept socket tried was closed by the server.
            Failed::Stale => String::from("kept connections closed"),
            Failed::Connect(e) => {
                fe.pool.report(index, false);
                tracing::debug!(server = %server.name, error = %e, "http: cannot connect to server");
                tried.push(index);
                // Nothing was sent, and a large body is read only once
                // connected: safe for any request.
                return if tried.len() > fe.cfg.retries as usize {
                    After::Answer(SERVER_FAILED, buffered)
                } else {
                    After::Retry
                };
            }
            Failed::Sent(e) => e,
        };
        fe.pool.report(index, true);
        tracing::debug!(server = %server.name, %error, "http: request to server failed");
        tried.push(index);
        if buffered && idempotent(head) && tried.len() <= fe.cfg.retries as usize {
            After::Retry
        } else {
            After::Answer(SERVER_FAILED, buffered)
        }
    }

    /// Answers with tandem's own response. The connection is kept only when
    /// the request's body was read whole.
    async fn fail(
        &mut self,
        done: &mut Done,
        head: &RequestHead,
        body_read: bool,
        answer: Answer,
    ) -> Next {
        done.status(answer.0.as_u16());
        let close = !body_read || !head.keep_alive;
        if body_read {
            self.buf.advance((head.body as usize).min(self.buf.len()));
        }
        if !self.local(answer, close).await || close {
            Next::Close
        } else {
            Next::Keep
        }
    }

    async fn local(&mut self, (status, text): Answer, close: bool) -> bool {
        self.out.clear();
        head::local_response(&mut self.out, status, text, close);
        self.flush().await
    }
}

fn idempotent(head: &RequestHead) -> bool {
    matches!(
        head.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Counts, logs and frees a request when its exchange ends, however it ends.
struct Done {
    finish: Option<Box<Finish>>,
    sent: u64,
}

impl Done {
    fn status(&mut self, status: u16) {
        if let Some(f) = self.finish.as_mut() {
            f.status = status;
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(f) = self.finish.take() {
            f.finish(self.sent);
        }
    }
}
