//! OK and EOF packets.
//!
//! ```text
//! OK_Packet                                  EOF_Packet (before DEPRECATE_EOF)
//! +-----------+--------------------+         +------+----------------+---------------+
//! | 0x00/0xFE | affected: lenenc   |         | 0xFE | warnings int<2>| status int<2> |
//! |           | last_insert: lenenc|         +------+----------------+---------------+
//! |           | status: int<2>     |
//! |           | warnings: int<2>   |
//! |           | info / session state (SESSION_TRACK) ...
//! +-----------+--------------------+
//! ```

use super::wire::{put_lenenc, put_u16, Reader};

/// The fields of an OK packet tandem reads (the rest is relayed untouched).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

// === impl OkInfo ===

impl OkInfo {
    /// Parses an OK packet payload (header 0x00, or 0xFE as the
    /// DEPRECATE_EOF end-of-result marker).
    pub fn parse(payload: &[u8]) -> Option<OkInfo> {
        let mut r = Reader::new(payload);
        let h = r.u8().ok()?;
        if h != 0x00 && h != 0xFE {
            return None;
        }
        let affected_rows = r.lenenc().ok()?;
        let last_insert_id = r.lenenc().ok()?;
        let status = r.u16().ok()?;
        let warnings = r.u16().unwrap_or(0);
        Some(OkInfo {
            affected_rows,
            last_insert_id,
            status,
            warnings,
        })
    }

    /// A plain OK packet payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(11);
        out.push(0x00);
        put_lenenc(&mut out, self.affected_rows);
        put_lenenc(&mut out, self.last_insert_id);
        put_u16(&mut out, self.status);
        put_u16(&mut out, self.warnings);
        out
    }
}

/// Status flags of a classic EOF packet payload.
pub fn eof_status(payload: &[u8]) -> Option<u16> {
    if payload.len() >= 5 && payload[0] == 0xFE {
        Some(u16::from_le_bytes([payload[3], payload[4]]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_round_trip() {
        let ok = OkInfo {
            affected_rows: 300,
            last_insert_id: 7,
            status: 0x0002,
            warnings: 1,
        };
        assert_eq!(OkInfo::parse(&ok.encode()), Some(ok));
    }

    #[test]
    fn eof_status_reads_flags() {
        assert_eq!(eof_status(&[0xFE, 0, 0, 0x22, 0]), Some(0x22));
        assert_eq!(eof_status(&[0x00]), None);
    }
}
