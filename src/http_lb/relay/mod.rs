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

mod chunked;
mod head;
mod io;
mod response;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Buf, BufMut, BytesMut};
use hyper::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

/// One client connection on the relay.
struct Client<S> {
    io: S,
    peer: SocketAddr,
    fe: Arc<Frontend>,
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
    let idle = Duration::from_millis(fe.cfg.client_idle_timeout_ms);
    let mut c = Client {
        io,
        peer,
        fe: fe.clone(),
        activity: Arc::new(Activity::default()),
        buf: BytesMut::new(),
        out: BytesMut::new(),
        ubuf: BytesMut::new(),
        uout: BytesMut::new(),
        wd: Watchdog::new(Instant::now() + header),
        idle,
    };
    let mut cancelled = std::pin::pin!(shutdown.cancelled());
    let forwarding = Forwarding {
        ip: peer.ip(),
        tls,
        forwarded: fe.cfg.forwarded_header,
        cookie: fe.cfg.cookie.as_deref(),
        log: fe.access_log.is_some(),
    };
    loop {
        // As with hyper's header_read_timeout, the wait for the next
        // request on a kept connection counts toward the head's deadline.
        let head = loop {
            if !c.buf.is_empty() {
                match head::parse_request(&c.buf, forwarding, &mut c.uout) {
                    Request::Ready(h) => break h,
                    Request::Hyper => return Some(Rewind::new(c.buf, c.io)),
                    Request::Partial if c.buf.len() > MAX_HEAD => {
                        return Some(Rewind::new(c.buf, c.io))
                    }
                    Request::Partial => {}
                }
            }
            c.buf.reserve(HEAD_CHUNK);
            let waiting = c.buf.is_empty();
            let read = tokio::select! {
                biased;
                r = c.wd.run(c.io.read_buf(&mut c.buf)) => r,
                _ = cancelled.as_mut(), if waiting => return None,
            };
            match read {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return None,
                Err(_) => {
                    if !waiting {
                        tracing::debug!(%peer, "http: request head not received in time");
                        c.local(REQUEST_TIMEOUT, true).await;
                    }
                    return None;
                }
            }
        };
        let next = c.exchange(head, shutdown).await;
        if next == Next::Close || shutdown.is_cancelled() {
            break;
        }
        c.free_buffers();
        c.wd.set(Instant::now() + header.min(idle));
    }
    c.wd.set(Instant::now() + Duration::from_secs(1));
    let _ = c.wd.run(c.io.shutdown()).await;
    None
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
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
        let fe = self.fe.clone();
        self.buf.advance(head.len);
        let log = head.log.as_ref().map(|l| {
            Box::new(LogInfo {
                client: self.peer.ip(),
                time: SystemTime::now(),
                request_line: l.request_line.clone(),
                referer: l.referer.clone(),
                user_agent: l.user_agent.clone(),
            })
        });
        let mut done = Done {
            finish: Some(Finish::start(&fe, &self.activity, log)),
            sent: 0,
        };
        if let (Some(max), true) = (fe.cfg.max_body_bytes, head.body > 0) {
            if head.body > max {
                done.status(413);
                self.local(TOO_LARGE, true).await;
                return Next::Close;
            }
        }
        let buffered = head.body <= BUFFERED_BODY;
        if buffered {
            while (self.buf.len() as u64) < head.body {
                self.wd.set(Instant::now() + self.idle);
                self.buf.reserve(READ_CHUNK);
                match self.wd.run(self.io.read_buf(&mut self.buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return Next::Close,
                }
            }
        }
        let idempotent = idempotent(&head);
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
            let server = fe.pool.servers[index].clone();
            let inflight = Inflight::new(&server);
            let slot = fe.upstreams.raw_slot(index);
            let set_cookie = fe.cfg.cookie.as_deref().and_then(|name| {
                (head.sticky.as_deref() != Some(server.name.as_str()))
                    .then(|| super::headers::sticky_cookie(name, &server.name))
            });
            let mut stale = 0;
            let result = loop {
                let (up, reused) = match fe.upstreams.take_raw(slot) {
                    Some(s) => (s, true),
                    None => match fe.upstreams.connect_raw(server.addr).await {
                        Ok(s) => (s, false),
                        Err(e) => break Err(Failed::Connect(e)),
                    },
                };
                let sent =
                    self.attempt(&head, up, reused, buffered, &server, set_cookie.as_deref());
                match sent.await {
                    // An idle socket closed by the server, seen before any
                    // byte of an answer: the next one (or a new one).
                    Err(Failed::Stale) if stale < fe.cfg.pool_max_idle_per_server => stale += 1,
                    Err(Failed::Stale) => break Err(Failed::Sent("connection closed".into())),
                    r => break r,
                }
            };
            let (up, response) = match result {
                Ok(r) => r,
                Err(Failed::ClientGone) => return Next::Close,
                Err(Failed::Timeout) => {
                    fe.pool.report(index, false);
                    tracing::debug!(server = %server.name, "http: no response within backend_timeout_ms");
                    return self.fail(&mut done, &head, false, TIMED_OUT).await;
                }
                Err(failure) => {
                    let connect_failed = matches!(failure, Failed::Connect(_));
                    fe.pool.report(index, !connect_failed);
                    let error = match &failure {
                        Failed::Connect(e) => e.to_string(),
                        Failed::Sent(e) => e.clone(),
                        _ => String::new(),
                    };
                    tracing::debug!(server = %server.name, %error, connect_failed, "http: request to server failed");
                    drop(inflight);
                    tried.push(index);
                    // A large body is read only once connected: unread on a connect failure.
                    let safe = connect_failed || (buffered && idempotent);
                    if !safe || tried.len() > fe.cfg.retries as usize {
                        return self.fail(&mut done, &head, buffered, SERVER_FAILED).await;
                    }
                    continue;
                }
            };
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
    }

    /// Sends the request on `up` and reads the response head (into `out`,
    /// rewritten for the client).
    async fn attempt(
        &mut self,
        head: &RequestHead,
        mut up: TcpStream,
        reused: bool,
        buffered: bool,
        server: &Server,
        set_cookie: Option<&str>,
    ) -> Result<(TcpStream, head::ResponseHead), Failed> {
        let timeout = self.fe.backend_timeout;
        self.wd.set(Instant::now() + timeout);
        self.uout.truncate(head.forward_len);
        if !head.has_host {
            self.uout.put_slice(b"Host: ");
            self.uout.put_slice(server.authority.as_str().as_bytes());
            self.uout.put_slice(b"\r\n");
        }
        self.uout.put_slice(b"\r\n");
        let in_buf = (self.buf.len() as u64).min(head.body) as usize;
        self.uout.put_slice(&self.buf[..in_buf]);
        match self.wd.run(up.write_all(&self.uout)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) if reused => return Err(Failed::Stale),
            Ok(Err(e)) => return Err(Failed::Sent(e.to_string())),
            Err(_) => return Err(Failed::Timeout),
        }
        if !buffered {
            // A large body: passed on as it comes, so never replayed.
            self.buf.advance(in_buf);
            let mut left = head.body - in_buf as u64;
            while left > 0 {
                self.wd.set(Instant::now() + self.idle);
                self.buf.reserve(READ_CHUNK);
                match self.wd.run(self.io.read_buf(&mut self.buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return Err(Failed::ClientGone),
                }
                let n = (self.buf.len() as u64).min(left) as usize;
                match self.wd.run(up.write_all(&self.buf[..n])).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(Failed::Sent(e.to_string())),
                    Err(_) => return Err(Failed::Timeout),
                }
                self.buf.advance(n);
                left -= n as u64;
            }
            self.wd.set(Instant::now() + timeout);
        }
        self.ubuf.clear();
        self.out.clear();
        loop {
            match head::parse_response(
                &self.ubuf,
                head.method == Method::HEAD,
                head.minor,
                set_cookie,
                &mut self.out,
            ) {
                Ok(Some(r)) if r.status < 200 => {
                    self.ubuf.advance(r.len);
                    continue;
                }
                Ok(Some(r)) => {
                    self.ubuf.advance(r.len);
                    return Ok((up, r));
                }
                Ok(None) if self.ubuf.len() > MAX_HEAD => {
                    return Err(Failed::Sent("response head too large".into()))
                }
                Ok(None) => {}
                Err(e) => return Err(Failed::Sent(e.to_string())),
            }
            self.ubuf.reserve(HEAD_CHUNK);
            match self.wd.run(up.read_buf(&mut self.ubuf)).await {
                Ok(Ok(n)) if n > 0 => {}
                // Closed with nothing answered: an idle socket the server
                // was closing. Only an idempotent request goes again: a
                // POST may have reached the application.
                Ok(Ok(_)) if self.ubuf.is_empty() && reused && buffered && idempotent(head) => {
                    return Err(Failed::Stale)
                }
                Ok(Ok(_)) => return Err(Failed::Sent("closed before a response".into())),
                Ok(Err(e)) if self.ubuf.is_empty() && reused && buffered && idempotent(head) => {
                    tracing::trace!("http: idle server socket failed: {e}");
                    return Err(Failed::Stale);
                }
                Ok(Err(e)) => return Err(Failed::Sent(e.to_string())),
                Err(_) => return Err(Failed::Timeout),
            }
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
