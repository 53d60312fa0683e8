//! The relay's two I/O helpers: one timer per client connection whose
//! deadline moves without touching the timer wheel, and the bytes already
//! read put back in front of a connection handed to hyper.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The current phase's deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired;

/// One timer for every wait of a connection. Moving the deadline later only
/// stores it: the timer fires at the old one, sees the new one and re-arms.
/// Only a deadline earlier than the armed one re-arms at once. Keeping a
/// request's phases on one timer this way costs about one timer operation
/// per connection per `client_header_timeout_ms`, not several per request.
pub struct Watchdog {
    sleep: Pin<Box<Sleep>>,
    deadline: Instant,
}

impl Watchdog {
    pub fn new(deadline: Instant) -> Self {
        Watchdog {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            deadline,
        }
    }

    pub fn set(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if deadline < self.sleep.deadline() {
            self.sleep.as_mut().reset(deadline);
        }
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= self.deadline {
                return true;
            }
            let d = self.deadline;
            self.sleep.as_mut().reset(d);
        }
    }

    /// Runs `f` until it ends or the deadline passes.
    pub async fn run<F: Future>(&mut self, f: F) -> Result<F::Output, Expired> {
        let mut f = pin!(f);
        poll_fn(|cx| {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            if self.poll_expired(cx) {
                Poll::Ready(Err(Expired))
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// A connection with bytes already read from it put back in front.
pub struct Rewind<S> {
    prefix: bytes::BytesMut,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: bytes::BytesMut, inner: S) -> Self {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_follows_its_latest_deadline() {
        let start = Instant::now();
        let mut wd = Watchdog::new(start + Duration::from_secs(10));
        // Later: the armed timer fires at 10 s, re-arms, expires at 30 s.
        wd.set(start + Duration::from_secs(30));
        let never = std::future::pending::<()>();
        assert_eq!(wd.run(never).await, Err(Expired));
        assert_eq!(Instant::now() - start, Duration::from_secs(30));
        // Earlier than armed: re-armed at once.
        let now = Instant::now();
        wd.set(now + Duration::from_secs(60));
        wd.set(now + Duration::from_secs(1));
        assert_eq!(wd.run(std::future::pending::<()>()).await, Err(Expired));
        assert_eq!(Instant::now() - now, Duration::from_secs(1));
        // A future that ends in time is not cut.
        wd.set(Instant::now() + Duration::from_secs(5));
        let quick = tokio::time::sleep(Duration::from_secs(2));
        assert_eq!(wd.run(quick).await, Ok(()));
    }

    #[tokio::test]
    async fn rewind_replays_its_prefix_first() {
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b" world")
            .await
            .unwrap();
        drop(a);
        let mut r = Rewind::new(bytes::BytesMut::from(&b"hello"[..]), b);
        let mut all = String::new();
        r.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "hello world");
    }
}
