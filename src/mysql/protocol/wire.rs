//! Little-endian integers, length-encoded integers and strings.
//!
//! A `Reader` never panics on short input: every accessor returns
//! [`WireError::Truncated`], so malformed client packets become a clean error.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("packet truncated")]
    Truncated,
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

/// A cursor over a packet payload.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

// === impl Reader ===

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated);
        }
        let r = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(r)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), WireError> {
        self.take(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u24(&mut self) -> Result<u32, WireError> {
        let b = self.take(3)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Length-encoded integer. `0xFB` (NULL) and `0xFF` are not integers here.
    pub fn lenenc(&mut self) -> Result<u64, WireError> {
        match self.u8()? {
            n @ 0..=0xFA => Ok(u64::from(n)),
            0xFC => self.u16().map(u64::from),
            0xFD => self.u24().map(u64::from),
            0xFE => self.u64(),
            _ => Err(WireError::Malformed("invalid length-encoded integer")),
        }
    }

    pub fn lenenc_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.lenenc()?;
        let n = usize::try_from(n).map_err(|_| WireError::Truncated)?;
        self.take(n)
    }

    /// A NUL-terminated string; the NUL is consumed, not returned.
    pub fn nul_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let rest = &self.buf[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(WireError::Truncated)?;
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    /// A NUL-terminated string, or the rest of the packet when no NUL follows
    /// (several clients omit the final NUL of the auth plugin name).
    pub fn nul_or_eof_bytes(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        match rest.iter().position(|&b| b == 0) {
            Some(end) => {
                self.pos += end + 1;
                &rest[..end]
            }
            None => self.rest(),
        }
    }
}

pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_lenenc(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0xFA => out.push(v as u8),
        0xFB..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

pub fn put_lenenc_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_lenenc(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Length of the 3-byte little-endian payload length in a packet header.
#[inline]
pub fn header_len(h: &[u8]) -> usize {
    usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16
}

/// The payload of the last packet in `bytes` (whole packets only).
pub fn last_packet(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = 0;
    let mut last = None;
    while bytes.len() >= pos + 4 {
        let len = header_len(&bytes[pos..]);
        let end = (pos + 4 + len).min(bytes.len());
        last = Some(&bytes[pos + 4..end]);
        pos = end;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trips() {
        for v in [
            0u64,
            1,
            250,
            251,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_lenenc(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.lenenc().unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[0xFC, 1]);
        assert_eq!(r.lenenc(), Err(WireError::Truncated));
        let mut r = Reader::new(b"abc");
        assert_eq!(r.nul_bytes(), Err(WireError::Truncated));
        let mut r = Reader::new(&[0xFF]);
        assert!(matches!(r.lenenc(), Err(WireError::Malformed(_))));
    }
}
