//! A scanner for chunked transfer coding (RFC 9112 section 7.1): it finds
//! where a chunked body ends and which of its bytes are data, so the relay
//! can pass the body on as it arrives (as is to an HTTP/1.1 client, data
//! only to an HTTP/1.0 one) without buffering it.
//!
//! ```text
//!   size[;ext] CRLF  data  CRLF  ...  0[;ext] CRLF  (trailer CRLF)*  CRLF
//!   └ Framing ┘      └Data┘ └F┘        └─────────── End ──────────────┘
//! ```

/// The next run of bytes of a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Size lines, extensions and CRLFs: `n` bytes.
    Framing(usize),
    /// Chunk data: `n` bytes.
    Data(usize),
    /// The last framing bytes: `n` bytes, then the body is over.
    End(usize),
}

/// Malformed chunked framing from a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body: {0}")]
pub struct ChunkError(&'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the hex size; `digits` read so far.
    Size {
        digits: u8,
    },
    /// After the size, in extensions or whitespace, up to CR.
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

/// Where in a chunked body the bytes seen so far end.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    /// Size of the chunk being read, then data bytes left in it.
    size: u64,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size { digits: 0 },
            size: 0,
        }
    }
}

impl Chunked {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The segment that `buf` (not empty, body not done) starts with. A
    /// framing run may end at the end of `buf`; the state carries over to
    /// the next call.
    pub fn next(&mut self, buf: &[u8]) -> Result<Segment, ChunkError> {
        if self.state == State::Data {
            let n = (self.size.min(buf.len() as u64)) as usize;
            self.size -= n as u64;
            if self.size == 0 {
                self.state = State::DataCr;
            }
            return Ok(Segment::Data(n));
        }
        for (i, &b) in buf.iter().enumerate() {
            self.state = match (self.state, b) {
                (State::Size { digits }, _) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(ChunkError("chunk size too large"));
                    }
                    self.size = self.size * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                    State::Size { digits: digits + 1 }
                }
                (State::Size { digits: 0 }, _) => return Err(ChunkError("chunk size expected")),
                (State::Size { .. }, b';' | b' ' | b'\t') => State::Ext,
                (State::Size { .. } | State::Ext, b'\r') => State::SizeLf,
                (State::Size { .. }, _) => return Err(ChunkError("bad chunk size")),
                (State::Ext, b'\n') => return Err(ChunkError("bare LF in chunk extension")),
                (State::Ext, _) => State::Ext,
                (State::SizeLf, b'\n') if self.size == 0 => State::TrailerStart,
                (State::SizeLf, b'\n') => {
                    self.state = State::Data;
                    return Ok(Segment::Framing(i + 1));
                }
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => State::Size { digits: 0 },
                (State::TrailerStart, b'\r') => State::EndLf,
                (State::TrailerStart | State::TrailerLine, b'\n') => State::TrailerStart,
                (State::TrailerStart | State::TrailerLine, _) => State::TrailerLine,
                (State::EndLf, b'\n') => {
                    self.state = State::Done;
                    return Ok(Segment::End(i + 1));
                }
                (State::SizeLf | State::DataCr | State::DataLf | State::EndLf, _) => {
                    return Err(ChunkError("CRLF expected"))
                }
                (State::Data | State::Done, _) => unreachable!("handled above"),
            };
        }
        Ok(Segment::Framing(buf.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns (data, bytes used).
    fn scan(input: &[u8], step: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut c = Chunked::default();
        let mut data = Vec::new();
        let mut used = 0;
        let mut avail = 0;
        while !c.is_done() {
            if used == avail {
                if avail == input.len() {
                    break;
                }
                avail = (avail + step).min(input.len());
            }
            match c.next(&input[used..avail])? {
                Segment::Framing(n) | Segment::End(n) => used += n,
                Segment::Data(n) => {
                    data.extend_from_slice(&input[used..used + n]);
                    used += n;
                }
            }
        }
        assert!(c.is_done(), "body did not end");
        Ok((data, used))
    }

    #[test]
    fn finds_data_and_end_in_any_split() {
        let body = b"5\r\nhello\r\n1;ext=\"a b\"\r\n \r\nA \r\n0123456789\r\n0\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, 100] {
            let (data, used) = scan(body, step).unwrap();
            assert_eq!(data, b"hello 0123456789", "step {step}");
            assert_eq!(&body[used..], b"NEXT", "step {step}");
        }
    }

    #[test]
    fn trailers_are_framing() {
        let body = b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n";
        let (data, used) = scan(body, 4).unwrap();
        assert_eq!(data, b"abc");
        assert_eq!(used, body.len());
    }

    #[test]
    fn malformed_framing_is_an_error() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"3\r\nabcX\r\n0\r\n\r\n",
            b"3\nabc\r\n",
            b"10000000000000000\r\n",
            b"0\r\n\rX",
        ] {
            assert!(
                scan(bad, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
