//! Sockets carrying MySQL packets: a plain-or-TLS stream (optionally under
//! the compressed protocol) and a buffered packet reader/writer over it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::protocol::compress::{Decoder, Encoder, PacketCursor, MAX_FRAME};
use super::protocol::wire::header_len;
use super::protocol::MAX_PAYLOAD;

/// A TCP connection, optionally wrapped in TLS (either direction), and
/// optionally speaking the compressed protocol over that (client side only).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
    Compressed(Box<Compressed>),
}

/// The compressed protocol (CLIENT_COMPRESS) as a transparent layer: reads
/// yield the ordinary packet stream from the peer's frames, and written
/// bytes go out as frames when flushed (or every [`WRITE_CHUNK`] bytes).
/// The framing and deflate are `protocol::compress`; this is the plumbing.
pub struct Compressed {
    inner: Stream,
    decoder: Decoder,
    encoder: Encoder,
    /// Frame bytes read from the socket, not yet decoded.
    raw: BytesMut,
    /// Decoded bytes the reader has not taken yet.
    plain: Vec<u8>,
    /// Where the reader is in `plain`.
    plain_pos: usize,
    /// Written bytes not framed yet.
    pending: Vec<u8>,
    /// Where the written bytes are in the packet stream: a full chunk is
    /// never framed so that it ends between two packets (see `PacketCursor`).
    cursor: PacketCursor,
    /// Frames not yet written to the socket, from `frames_pos` on.
    frames: Vec<u8>,
    frames_pos: usize,
    /// Sequence id of the next frame written.
    next_seq: u8,
    /// Bytes were written since the last flush: a response is under way.
    in_response: bool,
    /// A frame read during a response (a pipelined command) sets the
    /// sequence of the response after this one, applied at the next flush.
    next_response_seq: Option<u8>,
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

/// Written bytes are framed once this many are buffered, so a large result
/// streams in frames of this size instead of waiting for the flush.
const WRITE_CHUNK: usize = 64 * 1024;

/// Decode buffers larger than this are freed once empty (a frame may be
/// 16 MiB; most are a few KiB).
const KEEP_CAPACITY: usize = 1 << 20;

// === impl Stream ===

impl Stream {
    pub fn is_tls(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(_) => true,
            Stream::Compressed(c) => c.inner.is_tls(),
        }
    }

    pub fn is_compressed(&self) -> bool {
        matches!(self, Stream::Compressed(_))
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
            Stream::Compressed(c) => c.inner.tcp(),
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
            Stream::Compressed(c) => c.poll_read_plain(cx, buf),
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
            Stream::Compressed(c) => c.poll_write_plain(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Compressed(c) => c.poll_flush_frames(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Compressed(c) => {
                std::task::ready!(c.poll_flush_frames(cx))?;
                Pin::new(&mut c.inner).poll_shutdown(cx)
            }
        }
    }
}

// === impl Compressed ===

impl Compressed {
    /// Wraps `inner`; `read_ahead` = bytes already read from it, which are
    /// the start of the peer's first frame.
    fn new(inner: Stream, read_ahead: BytesMut) -> Compressed {
        Compressed {
            inner,
            decoder: Decoder::default(),
            encoder: Encoder::default(),
            raw: read_ahead,
            plain: Vec::new(),
            plain_pos: 0,
            pending: Vec::new(),
            cursor: PacketCursor::default(),
            frames: Vec::new(),
            frames_pos: 0,
            next_seq: 0,
            in_response: false,
            next_response_seq: None,
        }
    }

    /// Serves decoded bytes, decoding the next frame (reading the socket as
    /// needed) when none are left. A malformed frame is an `InvalidData`
    /// error: the session ends, as with any unreadable client input.
    fn poll_read_plain(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.plain_pos == self.plain.len() {
            self.plain.clear();
            self.plain_pos = 0;
            // One large upload must not leave a session holding 16 MiB.
            if self.plain.capacity() > KEEP_CAPACITY {
                self.plain = Vec::new();
            }
            if self.raw.is_empty() && self.raw.capacity() > KEEP_CAPACITY {
                self.raw = BytesMut::new();
            }
            let decoded = self
                .decoder
                .decode(&self.raw, &mut self.plain)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if let Some(frame) = decoded {
                self.raw.advance(frame.consumed);
                self.frame_read(frame.seq);
                continue;
            }
            let start = self.raw.len();
            self.raw.resize(start + READ_CHUNK, 0);
            let mut into = ReadBuf::new(&mut self.raw[start..]);
            let polled = Pin::new(&mut self.inner).poll_read(cx, &mut into);
            let n = into.filled().len();
            self.raw.truncate(start + n);
            std::task::ready!(polled)?;
            if n == 0 {
                if self.raw.is_empty() {
                    return Poll::Ready(Ok(())); // end of stream between frames
                }
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        let n = buf.remaining().min(self.plain.len() - self.plain_pos);
        buf.put_slice(&self.plain[self.plain_pos..self.plain_pos + n]);
        self.plain_pos += n;
        Poll::Ready(Ok(()))
    }

    /// MariaDB net_serv.cc: the frames of a response continue the sequence
    /// of the frames of the command they answer (the client resets its
    /// count with each command). Reading a frame sets the next written
    /// sequence id, unless a response is being written: then the frame is
    /// the client's next command, answered after this response's flush.
    fn frame_read(&mut self, seq: u8) {
        let next = seq.wrapping_add(1);
        if self.in_response {
            self.next_response_seq = Some(next);
        } else {
            self.next_seq = next;
        }
    }

    /// Buffers `buf`; frames and writes out what is buffered first when a
    /// chunk is full (so a slow client holds back the writer).
    fn poll_write_plain(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.pending.len() >= WRITE_CHUNK {
            // Leaves at most one byte in `pending`.
            std::task::ready!(self.poll_write_frames(cx, false))?;
        }
        let n = buf.len().min(WRITE_CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        self.cursor.advance(&buf[..n]);
        self.in_response |= n > 0;
        Poll::Ready(Ok(n))
    }

    /// Frames what is buffered and writes it to the socket: everything at
    /// a flush (`all`), else all but the last byte when the buffer ends
    /// between two packets.
    fn poll_write_frames(&mut self, cx: &mut Context<'_>, all: bool) -> Poll<io::Result<()>> {
        loop {
            if self.frames_pos < self.frames.len() {
                let n = std::task::ready!(
                    Pin::new(&mut self.inner).poll_write(cx, &self.frames[self.frames_pos..])
                )?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.frames_pos += n;
                continue;
            }
            self.frames.clear();
            self.frames_pos = 0;
            let keep = usize::from(!all && self.cursor.at_boundary());
            if self.pending.len() <= keep {
                return Poll::Ready(Ok(()));
            }
            let end = self.pending.len() - keep;
            for chunk in self.pending[..end].chunks(MAX_FRAME) {
                self.encoder.encode(chunk, self.next_seq, &mut self.frames);
                self.next_seq = self.next_seq.wrapping_add(1);
            }
            self.pending.drain(..end);
        }
    }

    /// Writes every buffered byte out as frames; the response is over.
    fn poll_flush_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_write_frames(cx, true))?;
        std::task::ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.in_response = false;
        if let Some(seq) = self.next_response_seq.take() {
            self.next_seq = seq;
        }
        Poll::Ready(Ok(()))
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

    /// Switches to the compressed protocol, for the rest of the connection
    /// (MariaDB "Compressed packet": from the packet after the handshake's
    /// final OK, which is the last one sent plain). Bytes read ahead are
    /// the start of the first frame.
    pub fn into_compressed(self) -> PacketIo {
        if self.stream.is_compressed() {
            return self;
        }
        let stream = Stream::Compressed(Box::new(Compressed::new(self.stream, self.rbuf)));
        PacketIo::new(stream)
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
