//! Sockets carrying MySQL packets: a plain-or-TLS stream and a buffered
//! packet reader/writer over it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::protocol::wire::header_len;
use super::protocol::MAX_PAYLOAD;

/// A TCP connection, optionally wrapped in TLS (either direction).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("connection closed")]
    Closed,
    #[error("packet of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Buffered packet I/O. During the connection phase packets are read exactly
/// (no read-ahead), so the socket can be handed to TLS after an SSLRequest;
/// in the command phase `rbuf` reads ahead and the relay works on its bytes.
pub struct PacketIo {
    pub stream: Stream,
    pub rbuf: BytesMut,
}

const READ_CHUNK: usize = 64 * 1024;

// === impl Stream ===

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

// === impl PacketIo ===

impl PacketIo {
    pub fn new(stream: Stream) -> PacketIo {
        PacketIo {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    /// Reads more bytes into `rbuf`; a closed socket is an error.
    pub async fn fill(&mut self) -> Result<(), PacketError> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        match self.stream.read_buf(&mut self.rbuf).await? {
            0 => Err(PacketError::Closed),
            _ => Ok(()),
        }
    }

    /// Header of the first buffered packet, if four bytes are there.
    pub fn peek_header(&self) -> Option<(usize, u8)> {
        (self.rbuf.len() >= 4).then(|| (header_len(&self.rbuf), self.rbuf[3]))
    }

    /// Reads one logical packet (joining 16 MiB continuations) without reading
    /// past it. For the connection phase and tandem's own queries, not the relay.
    pub async fn read_packet_exact(&mut self, limit: usize) -> Result<(u8, Vec<u8>), PacketError> {
        let mut payload = Vec::new();
        loop {
            let mut h = [0u8; 4];
            self.read_exact_buffered(&mut h).await?;
            let len = header_len(&h);
            if payload.len() + len > limit {
                return Err(PacketError::TooLarge(payload.len() + len));
            }
            let start = payload.len();
            payload.resize(start + len, 0);
            self.read_exact_buffered(&mut payload[start..]).await?;
            if len < MAX_PAYLOAD {
                return Ok((h[3], payload));
            }
        }
    }

    /// Serves `out` from `rbuf` first, then from the socket without read-ahead.
    async fn read_exact_buffered(&mut self, out: &mut [u8]) -> Result<(), PacketError> {
        let from_buf = out.len().min(self.rbuf.len());
        out[..from_buf].copy_from_slice(&self.rbuf.split_to(from_buf));
        if from_buf < out.len() {
            match self.stream.read_exact(&mut out[from_buf..]).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(PacketError::Closed)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes one logical packet starting at `seq`, split at 16 MiB; returns
    /// the next sequence id.
    pub async fn write_packet(&mut self, seq: u8, payload: &[u8]) -> io::Result<u8> {
        let mut buf = Vec::with_capacity(payload.len() + 4 + 4 * (payload.len() / MAX_PAYLOAD));
        let seq = frame_into(&mut buf, seq, payload);
        self.stream.write_all(&buf).await?;
        self.stream.flush().await?;
        Ok(seq)
    }
}

/// Appends `payload` framed as packets starting at `seq`; returns the next seq.
pub fn frame_into(out: &mut Vec<u8>, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD);
        out.extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, seq]);
        out.extend_from_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_PAYLOAD {
            return seq;
        }
    }
}
