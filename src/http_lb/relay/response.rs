//! A response on its way to the client: its head (already rewritten in
//! `out`), then its body as the server's framing delimits it, and the
//! server socket put back when the exchange ended cleanly.

use bytes::{Buf, BufMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::chunked::{Chunked, Segment};
use super::head::{Framing, RequestHead, ResponseHead};
use super::{Client, Done, Next, READ_CHUNK};

impl<S: AsyncRead + AsyncWrite + Unpin> Client<'_, S> {
    /// Relays the response whose head is in `out` and whose first body
    /// bytes are in `ubuf`; puts `up` back when the server may be reused.
    pub(super) async fn respond(
        &mut self,
        head: &RequestHead,
        response: ResponseHead,
        mut up: TcpStream,
        slot: usize,
        done: &mut Done,
        shutdown: &CancellationToken,
    ) -> Next {
        let dechunk = response.framing == Framing::Chunked && head.minor == 0;
        let keep = head.keep_alive
            && !shutdown.is_cancelled()
            && response.framing != Framing::UntilClose
            && !dechunk;
        match (keep, head.minor) {
            (true, 0) => self.out.put_slice(b"Connection: keep-alive\r\n\r\n"),
            (true, _) => self.out.put_slice(b"\r\n"),
            (false, _) => self.out.put_slice(b"Connection: close\r\n\r\n"),
        }
        let body_done = match response.framing {
            Framing::Empty => true,
            Framing::Length(n) => self.length_body(&mut up, n, done).await,
            Framing::Chunked => self.chunked_body(&mut up, dechunk, done).await,
            Framing::UntilClose => {
                self.close_body(&mut up, done).await;
                false
            }
        };
        if !body_done {
            return Next::Close;
        }
        if !self.out.is_empty() && !self.flush().await {
            return Next::Close;
        }
        if !response.server_close && self.ubuf.is_empty() {
            self.fe.upstreams.release_raw(slot, up);
        }
        if keep {
            Next::Keep
        } else {
            Next::Close
        }
    }

    /// A body of `n` bytes; true when it all went through.
    async fn length_body(&mut self, up: &mut TcpStream, n: u64, done: &mut Done) -> bool {
        let mut left = n;
        loop {
            let take = (self.ubuf.len() as u64).min(left) as usize;
            if self.out.is_empty() && take == self.ubuf.len() {
                // Whole reads: sent from `ubuf` without a copy.
                if take > 0 && !self.write_ubuf().await {
                    return false;
                }
            } else {
                self.out.put_slice(&self.ubuf[..take]);
                self.ubuf.advance(take);
            }
            left -= take as u64;
            done.sent += take as u64;
            if left == 0 {
                return true;
            }
            if !self.out.is_empty() && !self.flush().await {
                return false;
            }
            if !self.read_server(up, (left as usize).min(READ_CHUNK)).await {
                return false;
            }
        }
    }

    async fn chunked_body(&mut self, up: &mut TcpStream, dechunk: bool, done: &mut Done) -> bool {
        let mut ch = Chunked::default();
        loop {
            while !self.ubuf.is_empty() && !ch.is_done() {
                let (n, data) = match ch.next(&self.ubuf) {
                    Ok(Segment::Data(n)) => (n, true),
                    Ok(Segment::Framing(n) | Segment::End(n)) => (n, false),
                    Err(e) => {
                        tracing::debug!("http: {e}");
                        return false;
                    }
                };
                if data || !dechunk {
                    self.out.put_slice(&self.ubuf[..n]);
                }
                if data {
                    done.sent += n as u64;
                }
                self.ubuf.advance(n);
            }
            if ch.is_done() {
                return true;
            }
            if !self.out.is_empty() && !self.flush().await {
                return false;
            }
            if !self.read_server(up, READ_CHUNK).await {
                return false;
            }
        }
    }

    async fn close_body(&mut self, up: &mut TcpStream, done: &mut Done) {
        loop {
            done.sent += self.ubuf.len() as u64;
            self.out.put_slice(&self.ubuf);
            self.ubuf.clear();
            if !self.flush().await || !self.read_server(up, READ_CHUNK).await {
                return;
            }
        }
    }

    /// Reads body bytes from the server into the empty `ubuf`; false at
    /// its end, an error or the idle timeout.
    async fn read_server(&mut self, up: &mut TcpStream, want: usize) -> bool {
        self.ubuf.clear();
        self.ubuf.reserve(want.max(1));
        self.wd.set(Instant::now() + self.idle);
        matches!(self.wd.run(up.read_buf(&mut self.ubuf)).await, Ok(Ok(n)) if n > 0)
    }

    /// Writes `out` to the client; false when it is gone or too slow.
    pub(super) async fn flush(&mut self) -> bool {
        self.wd.set(Instant::now() + self.idle);
        let ok = matches!(self.wd.run(self.io.write_all(&self.out)).await, Ok(Ok(())));
        self.out.clear();
        ok
    }

    async fn write_ubuf(&mut self) -> bool {
        self.wd.set(Instant::now() + self.idle);
        let ok = matches!(self.wd.run(self.io.write_all(&self.ubuf)).await, Ok(Ok(())));
        self.ubuf.clear();
        ok
    }
}
