//! The compressed protocol (CLIENT_COMPRESS, zlib): frames that carry the
//! ordinary packet stream. Pure framing and deflate; the socket side is
//! `mysql::io::Compressed`.
//!
//! MariaDB "0 - Packet" (Compressed packet) and MySQL "Compressed Packet"
//! (page_protocol_basic_compression_packet):
//!
//! ```text
//!  0               3       4               7
//! +---------------+-------+---------------+--------------------------+
//! | payload len   | seq   | uncompr. len  | payload                  |
//! | int<3>        | int<1>| int<3>        | zlib stream, or as is    |
//! +---------------+-------+---------------+--------------------------+
//! ```
//!
//! - An uncompressed length of 0 means the payload is not compressed
//!   (small frames, or data deflate does not shrink).
//! - A frame is a slice of the packet stream: several packets, or a piece of
//!   one; at most 0xFFFFFF bytes before compression.
//! - The compressed sequence id counts frames, independently of the packet
//!   sequence ids inside.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Bytes of a compressed frame header.
pub const HEADER_LEN: usize = 7;

/// Most bytes one frame carries, before or after compression (3-byte lengths).
pub const MAX_FRAME: usize = 0xFF_FFFF;

/// Frames smaller than this go out uncompressed, as the MariaDB server and
/// libmariadb do (MIN_COMPRESS_LENGTH = 50): deflate cannot win there.
pub const MIN_COMPRESS: usize = 50;

/// Why a compressed frame could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("compressed frame inflates to more than the {0} bytes it declares")]
    TooLong(usize),
    #[error("compressed frame inflates to {got} bytes, not the {declared} it declares")]
    TooShort { declared: usize, got: usize },
    #[error("compressed frame is not a valid zlib stream")]
    Corrupt,
}

/// One decoded frame: how many input bytes it took and its sequence id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub consumed: usize,
    pub seq: u8,
}

/// Reads frames. Keeps its inflate state between frames (reset per frame,
/// each frame is a zlib stream of its own) so a session does not allocate
/// one per frame.
pub struct Decoder {
    inflate: Decompress,
}

/// Writes frames with a reusable deflate state, for the same reason.
pub struct Encoder {
    deflate: Compress,
}

/// Follows the packet headers of a stream written in pieces, to tell
/// whether what was written so far ends exactly between two packets.
///
/// Why: a writer cuts frames of a long response wherever its buffer fills.
/// mysql_async (mysql_common) re-reads the packet sequence id from the
/// compressed one before each further result set when a frame ended right
/// there, because mysqld re-syncs them at its flush after each result
/// (net_serv.cc `net_flush`); tandem relays the backend's uncompressed
/// numbering, so it must not end a frame between packets except at a flush.
#[derive(Debug, Default)]
pub struct PacketCursor {
    header: [u8; 4],
    header_len: usize,
    body_left: usize,
}

// === impl PacketCursor ===

impl PacketCursor {
    pub fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (4 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == 4 {
                let h = self.header;
                self.body_left =
                    usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
                self.header_len = 0;
            }
        }
    }

    /// True when the bytes so far end a packet (or nothing was written).
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.body_left == 0
    }
}

// === impl Decoder ===

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            inflate: Decompress::new(true),
        }
    }
}

impl Decoder {
    /// Decodes the frame at the front of `input`, appending its bytes to
    /// `out`. `Ok(None)`: the frame is not all there yet. A frame never
    /// inflates past the length it declares: `out` grows by at most that
    /// (plus one byte to notice a lie), so a hostile frame is an error, not
    /// an allocation bomb.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Option<Frame>, FrameError> {
        let Some(h) = input.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
        let seq = h[3];
        let ulen = usize::from(h[4]) | usize::from(h[5]) << 8 | usize::from(h[6]) << 16;
        let Some(payload) = input.get(HEADER_LEN..HEADER_LEN + len) else {
            return Ok(None);
        };
        let frame = Frame {
            consumed: HEADER_LEN + len,
            seq,
        };
        if ulen == 0 {
            out.extend_from_slice(payload);
            return Ok(Some(frame));
        }
        let start = out.len();
        out.resize(start + ulen + 1, 0);
        self.inflate.reset(true);
        let status = self
            .inflate
            .decompress(payload, &mut out[start..], FlushDecompress::Finish);
        let got = self.inflate.total_out() as usize;
        out.truncate(start + got);
        match status {
            _ if got > ulen => Err(FrameError::TooLong(ulen)),
            Ok(Status::StreamEnd) if got == ulen => Ok(Some(frame)),
            Ok(Status::StreamEnd) => Err(FrameError::TooShort {
                declared: ulen,
                got,
            }),
            // Input ran out before the stream ended, or it is not zlib.
            Ok(_) | Err(_) => Err(FrameError::Corrupt),
        }
    }
}

// === impl Encoder ===

impl Default for Encoder {
    fn default() -> Self {
        // Level 1: a proxy compresses every response of the session; the
        // fastest level keeps most of the gain (MySQL's `compression=fast`).
        Encoder {
            deflate: Compress::new(Compression::fast(), true),
        }
    }
}

impl Encoder {
    /// Appends one frame carrying `data` (at most [`MAX_FRAME`] bytes) with
    /// sequence id `seq`. Small data, and data deflate does not shrink, go
    /// out as is (uncompressed length 0).
    pub fn encode(&mut self, data: &[u8], seq: u8, out: &mut Vec<u8>) {
        debug_assert!(data.len() <= MAX_FRAME);
        let start = out.len();
        if data.len() >= MIN_COMPRESS {
            // Deflate into at most data.len() bytes: if it needs more, the
            // data is sent as is instead.
            out.resize(start + HEADER_LEN + data.len(), 0);
            self.deflate.reset();
            let status =
                self.deflate
                    .compress(data, &mut out[start + HEADER_LEN..], FlushCompress::Finish);
            let n = self.deflate.total_out() as usize;
            if let (Ok(Status::StreamEnd), true) = (status, n < data.len()) {
                out.truncate(start + HEADER_LEN + n);
                out[start..start + HEADER_LEN].copy_from_slice(&header(n, seq, data.len()));
                return;
            }
            out.truncate(start);
        }
        out.extend_from_slice(&header(data.len(), seq, 0));
        out.extend_from_slice(data);
    }
}

fn header(len: usize, seq: u8, ulen: usize) -> [u8; HEADER_LEN] {
    [
        len as u8,
        (len >> 8) as u8,
        (len >> 16) as u8,
        seq,
        ulen as u8,
        (ulen >> 8) as u8,
        (ulen >> 16) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of MySQL's "Compressed Packet" page: a COM_QUERY for
    /// `select "012345678901234567890123456789012345"` in one frame.
    const MYSQL_DOC_FRAME: &[u8] = &[
        0x22, 0x00, 0x00, 0x00, 0x32, 0x00, 0x00, 0x78, 0x9c, 0xd3, 0x63, 0x60, 0x60, 0x60, 0x2e,
        0x4e, 0xcd, 0x49, 0x4d, 0x2e, 0x51, 0x50, 0x32, 0x30, 0x34, 0x32, 0x36, 0x31, 0x35, 0x33,
        0xb7, 0xb0, 0xc4, 0xcd, 0x52, 0x02, 0x00, 0x0c, 0xd1, 0x0a, 0x6c,
    ];

    /// One ordinary packet (payload of at most 0xFFFFFF bytes).
    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut out = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        out.extend_from_slice(payload);
        out
    }

    /// Decodes every frame of `wire`; returns the bytes and the sequence ids.
    fn decode_all(wire: &[u8]) -> Result<(Vec<u8>, Vec<u8>), FrameError> {
        let mut d = Decoder::default();
        let (mut out, mut seqs, mut at) = (Vec::new(), Vec::new(), 0);
        while at < wire.len() {
            let f = d.decode(&wire[at..], &mut out)?.expect("a whole frame");
            at += f.consumed;
            seqs.push(f.seq);
        }
        Ok((out, seqs))
    }

    #[test]
    fn decodes_the_mysql_documentation_example() {
        let mut want = vec![0x2e, 0, 0, 0, 0x03];
        want.extend_from_slice(b"select \"012345678901234567890123456789012345\"");
        assert_eq!(decode_all(MYSQL_DOC_FRAME), Ok((want, vec![0])));
    }

    #[test]
    fn several_packets_round_trip_in_one_compressed_frame() {
        let text = b"SELECT id, title FROM posts WHERE id = 1 ORDER BY id".repeat(4);
        let stream = [
            packet(0, &text),
            packet(1, b""),
            packet(2, &[0xfe, 0, 0, 2, 0]),
        ]
        .concat();
        let mut wire = Vec::new();
        Encoder::default().encode(&stream, 3, &mut wire);
        assert!(wire[4..7] != [0, 0, 0], "compressed: {:?}", &wire[..7]);
        assert!(wire.len() < stream.len());
        assert_eq!(decode_all(&wire), Ok((stream, vec![3])));
    }

    #[test]
    fn one_packet_spans_several_frames() {
        // A 16 MiB packet split into frames the way a writer flushes it.
        let big: Vec<u8> = (0..MAX_FRAME + 100).map(|i| (i % 7) as u8).collect();
        let stream = [packet(0, &big[..MAX_FRAME]), packet(1, &big[MAX_FRAME..])].concat();
        let mut enc = Encoder::default();
        let mut wire = Vec::new();
        for (i, chunk) in stream.chunks(MAX_FRAME).enumerate() {
            enc.encode(chunk, i as u8, &mut wire);
        }
        let (out, seqs) = decode_all(&wire).unwrap();
        assert_eq!(seqs, vec![0, 1]);
        assert!(out == stream, "16 MiB packet differs after the round trip");
    }

    #[test]
    fn small_and_incompressible_data_goes_as_is() {
        let mut wire = Vec::new();
        Encoder::default().encode(b"\x01\x00\x00\x00\x0e", 0, &mut wire);
        assert_eq!(wire, [5, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x0e]);
        // Bytes deflate cannot shrink (a xorshift sequence).
        let mut x = 0x2545_f491u32;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut wire = Vec::new();
        Encoder::default().encode(&noise, 9, &mut wire);
        assert_eq!(&wire[..7], &[0x00, 0x10, 0x00, 9, 0, 0, 0]);
        assert_eq!(decode_all(&wire), Ok((noise, vec![9])));
    }

    #[test]
    fn uncompressed_frames_from_a_client_decode() {
        let mut wire = vec![5, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x0e];
        wire.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0xff]);
        assert_eq!(
            decode_all(&wire),
            Ok((vec![1, 0, 0, 0, 0x0e, 0xff], vec![0, 1]))
        );
    }

    #[test]
    fn a_frame_that_inflates_past_its_declared_length_is_an_error() {
        let mut lie = MYSQL_DOC_FRAME.to_vec();
        lie[4] = 0x31; // declares 49 bytes, inflates to 50
        let mut out = Vec::new();
        assert_eq!(
            Decoder::default().decode(&lie, &mut out),
            Err(FrameError::TooLong(49))
        );
        assert!(out.len() <= 50, "grew by {} bytes", out.len());
        // A bomb: 1 MiB of zeros declared as 100 bytes stops at 101.
        let mut wire = Vec::new();
        Encoder::default().encode(&vec![0u8; 1 << 20], 0, &mut wire);
        wire[4..7].copy_from_slice(&[100, 0, 0]);
        let mut out = Vec::new();
        assert_eq!(
            Decoder::default().decode(&wire, &mut out),
            Err(FrameError::TooLong(100))
        );
        assert!(out.len() <= 101);
    }

    #[test]
    fn a_frame_short_of_its_declared_length_or_not_zlib_is_an_error() {
        let mut short = MYSQL_DOC_FRAME.to_vec();
        short[4] = 0x33;
        assert_eq!(
            decode_all(&short),
            Err(FrameError::TooShort {
                declared: 51,
                got: 50
            })
        );
        let mut garbage = MYSQL_DOC_FRAME.to_vec();
        garbage[7..].fill(0xab);
        assert_eq!(decode_all(&garbage), Err(FrameError::Corrupt));
        // A zlib stream cut short inside a frame whose length covers it.
        let mut cut = MYSQL_DOC_FRAME[..MYSQL_DOC_FRAME.len() - 10].to_vec();
        cut[0] = 0x22 - 10;
        assert_eq!(decode_all(&cut), Err(FrameError::Corrupt));
    }

    #[test]
    fn packet_cursor_finds_the_end_of_packets_written_in_pieces() {
        let stream = [packet(1, b"abc"), packet(2, b""), packet(3, &[7; 300])].concat();
        let ends = [7, 11, stream.len()];
        for piece in [1, 2, 3, 5, 64] {
            let mut c = PacketCursor::default();
            let mut at = 0;
            for chunk in stream.chunks(piece) {
                c.advance(chunk);
                at += chunk.len();
                assert_eq!(
                    c.at_boundary(),
                    ends.contains(&at),
                    "{piece}-byte pieces, at {at}"
                );
            }
        }
    }

    #[test]
    fn partial_input_needs_more() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for n in 0..MYSQL_DOC_FRAME.len() {
            assert_eq!(d.decode(&MYSQL_DOC_FRAME[..n], &mut out), Ok(None), "{n}");
            assert!(out.is_empty());
        }
        let mut two = MYSQL_DOC_FRAME.to_vec();
        two.extend_from_slice(&MYSQL_DOC_FRAME[..10]);
        let f = d.decode(&two, &mut out).unwrap().unwrap();
        assert_eq!(f.consumed, MYSQL_DOC_FRAME.len());
        assert_eq!(d.decode(&two[f.consumed..], &mut out), Ok(None));
        assert_eq!(out.len(), 0x32);
    }
}
