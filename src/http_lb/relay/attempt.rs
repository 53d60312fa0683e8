//! One attempt on one server: a kept socket (or a new one), the request
//! head and body sent, the response head read. A kept socket that turns
//! out closed by the server is replaced without counting as an attempt.

use bytes::{Buf, BufMut};
use hyper::Method;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::head::{self, RequestHead, ResponseHead};
use super::{idempotent, Client, Failed, HEAD_CHUNK, MAX_HEAD, READ_CHUNK};
use crate::http_lb::headers;
use crate::http_lb::server::Server;

impl<S: AsyncRead + AsyncWrite + Unpin> Client<'_, S> {
    /// Sends the request to server `index` and reads its response head
    /// (into `out`, rewritten for the client). Returns the socket and its
    /// pool slot.
    pub(super) async fn on_server(
        &mut self,
        head: &RequestHead,
        server: &Server,
        index: usize,
        buffered: bool,
    ) -> Result<(TcpStream, usize, ResponseHead), Failed> {
        let fe = self.fe;
        let slot = fe.upstreams.raw_slot(index);
        let set_cookie = fe.cfg.cookie.as_deref().and_then(|name| {
            (head.sticky.as_deref() != Some(server.name.as_str()))
                .then(|| headers::sticky_cookie(name, &server.name))
        });
        let mut stale = 0;
        loop {
            let (mut up, reused) = match fe.upstreams.take_raw(slot) {
                Some(s) => (s, true),
                None => (
                    fe.upstreams
                        .connect_raw(server.addr)
                        .await
                        .map_err(Failed::Connect)?,
                    false,
                ),
            };
            let result = match self.send(head, &mut up, reused, buffered, server).await {
                Ok(()) => self
                    .read_head(head, &mut up, reused, buffered, set_cookie.as_deref())
                    .await
                    .map(|r| (up, slot, r)),
                Err(e) => Err(e),
            };
            match result {
                // An idle socket closed by the server, seen before any byte
                // of an answer: the next one (or a new one).
                Err(Failed::Stale) if stale < fe.cfg.pool_max_idle_per_server => stale += 1,
                r => return r,
            }
        }
    }

    /// Writes the head (naming the server when the client sent no `Host`)
    /// and the body: a buffered one with the head, a large one as it comes.
    async fn send(
        &mut self,
        head: &RequestHead,
        up: &mut TcpStream,
        reused: bool,
        buffered: bool,
        server: &Server,
    ) -> Result<(), Failed> {
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
            // The server closed the kept socket: it read nothing.
            Ok(Err(_)) if reused => return Err(Failed::Stale),
            Ok(Err(e)) => return Err(Failed::Sent(e.to_string())),
            Err(_) => return Err(Failed::Timeout),
        }
        if buffered {
            return Ok(());
        }
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
        Ok(())
    }

    /// Reads the response head (skipping informational ones) into `out`;
    /// its first body bytes stay in `ubuf`.
    async fn read_head(
        &mut self,
        head: &RequestHead,
        up: &mut TcpStream,
        reused: bool,
        buffered: bool,
        set_cookie: Option<&str>,
    ) -> Result<ResponseHead, Failed> {
        // Closed with nothing answered: a kept socket the server was
        // closing. Only an idempotent request goes again: a POST may have
        // reached the application.
        let stale = reused && buffered && idempotent(head);
        self.ubuf.clear();
        self.out.clear();
        loop {
            let parsed = head::parse_response(
                &self.ubuf,
                head.method == Method::HEAD,
                head.minor,
                set_cookie,
                &mut self.out,
            );
            match parsed {
                Ok(Some(r)) => {
                    self.ubuf.advance(r.len);
                    if r.status >= 200 {
                        return Ok(r);
                    }
                    continue;
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
                Ok(Ok(_)) if self.ubuf.is_empty() && stale => return Err(Failed::Stale),
                Ok(Ok(_)) => return Err(Failed::Sent("closed before a response".into())),
                Ok(Err(e)) if self.ubuf.is_empty() && stale => {
                    tracing::trace!("http: kept server socket failed: {e}");
                    return Err(Failed::Stale);
                }
                Ok(Err(e)) => return Err(Failed::Sent(e.to_string())),
                Err(_) => return Err(Failed::Timeout),
            }
        }
    }
}
