//! Bodies in both directions, streamed frame by frame (memory bounded by
//! hyper's buffers, whatever the size).
//!
//! - [`ForwardBody`]: the client's request body on its way to a server. It
//!   takes the client's stream only when the server connection first asks
//!   for data, so after a failed connect the body is still there and the
//!   request can go to another server; once taken, nothing is replayed.
//!   It also enforces `max_body_bytes` on chunked bodies.
//! - [`ResponseBody`]: the server's (or tandem's own) response on its way to
//!   the client. It holds the in-flight guards and records the access log
//!   line and the latency when it is done, so both cover the whole body.
//!   It also drives the server connection it came from (see `upstream`)
//!   and puts that connection back in the pool once the body has ended.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::upstream::Lease;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client's body, shared between attempts until a server reads it.
/// A std mutex: locked once per attempt, never across an await.
pub type BodySlot = Arc<Mutex<Option<Incoming>>>;

/// A request body larger than `max_body_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than {0} bytes")]
pub struct TooLarge(pub u64);

/// The request body sent to a server (see the module doc).
pub struct ForwardBody {
    state: ForwardState,
    hint: SizeHint,
    limit: Option<u64>,
    seen: u64,
    /// Set when the limit was crossed, so the proxy answers 413.
    over_limit: Arc<AtomicBool>,
}

enum ForwardState {
    Empty,
    Waiting(BodySlot),
    Streaming(Incoming),
}

/// The response body sent to the client.
pub struct ResponseBody {
    inner: Inner,
    sent: u64,
    /// Dropped when the body is done or abandoned: counts, logs, frees.
    on_end: Option<Box<dyn OnEnd>>,
}

enum Inner {
    /// The server's body and, unless it is an upgrade's, the connection
    /// it arrives on.
    Upstream(Incoming, Option<Lease>),
    Full(Option<Bytes>),
}

/// What happens when a response body is done (or dropped half-way).
pub trait OnEnd: Send + Sync {
    fn finish(self: Box<Self>, bytes_sent: u64);
}

// === impl ForwardBody ===

impl ForwardBody {
    /// A body for one attempt. `hint` and `empty` describe the client's body
    /// as it arrived (kept so every attempt frames it the same way).
    pub fn new(
        slot: Option<BodySlot>,
        hint: SizeHint,
        limit: Option<u64>,
        over_limit: Arc<AtomicBool>,
    ) -> Self {
        ForwardBody {
            state: slot.map_or(ForwardState::Empty, ForwardState::Waiting),
            hint,
            limit,
            seen: 0,
            over_limit,
        }
    }
}

impl Body for ForwardBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let ForwardState::Waiting(slot) = &this.state {
            let taken = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            this.state = match taken {
                Some(body) => ForwardState::Streaming(body),
                // Another attempt took it: this one has nothing to send.
                None => {
                    return Poll::Ready(Some(Err("request body already sent to a server".into())))
                }
            };
        }
        let ForwardState::Streaming(body) = &mut this.state else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if let Some(limit) = this.limit {
                        if this.seen > limit {
                            this.over_limit.store(true, Ordering::Relaxed);
                            return Poll::Ready(Some(Err(Box::new(TooLarge(limit)))));
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            ForwardState::Empty => true,
            ForwardState::Waiting(_) => self.hint.exact() == Some(0),
            ForwardState::Streaming(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            ForwardState::Streaming(b) => b.size_hint(),
            ForwardState::Empty => SizeHint::with_exact(0),
            ForwardState::Waiting(_) => self.hint,
        }
    }
}

// === impl ResponseBody ===

impl ResponseBody {
    pub fn upstream(body: Incoming, lease: Option<Lease>, on_end: Option<Box<dyn OnEnd>>) -> Self {
        ResponseBody {
            inner: Inner::Upstream(body, lease),
            sent: 0,
            on_end,
        }
    }

    pub fn full(bytes: Bytes, on_end: Option<Box<dyn OnEnd>>) -> Self {
        ResponseBody {
            inner: Inner::Full(Some(bytes)),
            sent: 0,
            on_end,
        }
    }

    fn end(&mut self) {
        if let Inner::Upstream(body, lease) = &mut self.inner {
            // Reusable only when the whole body was read.
            if let (Some(l), true) = (lease.take(), body.is_end_stream()) {
                l.release();
            }
        }
        if let Some(e) = self.on_end.take() {
            e.finish(self.sent);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Upstream(body, lease) => {
                if let Some(l) = lease {
                    l.poll_io(cx);
                }
                match Pin::new(body).poll_frame(cx) {
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e) as BoxError))),
                    Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            }
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.sent += d.len() as u64;
                }
                if this.is_end_stream() {
                    this.end();
                }
            }
            Poll::Ready(None) => this.end(),
            Poll::Ready(Some(Err(_))) => {
                if let Inner::Upstream(_, lease) = &mut this.inner {
                    lease.take();
                }
                this.end();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(b) => b.is_none(),
            Inner::Upstream(b, _) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Upstream(b, _) => b.size_hint(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.end();
    }
}
