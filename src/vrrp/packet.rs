//! VRRP advertisement codec for IPv4: VRRPv3 (RFC 5798 / RFC 9568) and
//! VRRPv2 (RFC 3768). Pure: bytes in, typed packet or typed error out.
//!
//! VRRPv3 (RFC 5798 Section 5.1):
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IPv4 Address(es)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Max Adver Int is in centiseconds (12 bits).
//!
//! VRRPv2 (RFC 3768 Section 5.1):
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address(es)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (1)                   |
//! |                     Authentication Data (2)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Adver Int is in seconds. Authentication data is 8 bytes, always present
//! (zero for no authentication), as keepalived sends it.
//!
//! Checksums: v2 covers the VRRP message only. v3 over IPv4 covers an IPv4
//! pseudo-header (source, destination, zero, protocol 112, VRRP length) then
//! the message (RFC 5798 Section 5.2.8) — keepalived's default. Some
//! implementations leave the pseudo-header out for IPv4; receivers accept
//! both forms, senders use [`ChecksumMode`].

use std::net::Ipv4Addr;

/// IP protocol number of VRRP (RFC 5798 Section 5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// The IPv4 multicast group adverts go to (RFC 5798 Section 5.1.1.2).
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// Adverts must arrive with this TTL (RFC 5798 Section 5.1.1.3).
pub const TTL: u8 = 255;

const HEADER_LEN: usize = 8;
const V2_AUTH_LEN: usize = 8;
const TYPE_ADVERTISEMENT: u8 = 1;

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Version {
    V2,
    V3,
}

/// How a v3 IPv4 checksum is computed when sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumMode {
    /// With the IPv4 pseudo-header (RFC 5798 Section 5.2.8; keepalived's default).
    PseudoHeader,
    /// Over the VRRP message only.
    MessageOnly,
}

/// VRRPv2 authentication (RFC 3768 Section 5.3.6); only for migrations,
/// it protects nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Type 1: a plain-text password of at most 8 bytes, zero padded.
    Pass([u8; 8]),
}

/// A decoded advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// The advertisement interval in centiseconds (v2: seconds × 100).
    pub interval_cs: u16,
    pub addrs: Vec<Ipv4Addr>,
    /// v2 only; `Auth::None` for v3.
    pub auth: Auth,
}

/// An advertisement as received in an IPv4 datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub advert: Advert,
}

/// Why a datagram is not a valid advertisement. Labels are metric values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("datagram too short")]
    Truncated,
    #[error("not an IPv4 VRRP datagram")]
    IpHeader,
    #[error("ttl {0} is not 255")]
    Ttl(u8),
    #[error("unsupported version {0}")]
    Version(u8),
    #[error("unknown type {0}")]
    Type(u8),
    #[error("length does not match the address count")]
    Length,
    #[error("no virtual addresses")]
    AddrCount,
    #[error("bad checksum")]
    Checksum,
    #[error("advertisement interval is zero")]
    Interval,
}

// === impl Version ===

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

// === impl DecodeError ===

impl DecodeError {
    /// The `reason` label of the invalid-packets counter.
    pub fn label(self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated",
            DecodeError::IpHeader => "ip_header",
            DecodeError::Ttl(_) => "ttl",
            DecodeError::Version(_) => "version",
            DecodeError::Type(_) => "type",
            DecodeError::Length => "length",
            DecodeError::AddrCount => "address_count",
            DecodeError::Checksum => "checksum",
            DecodeError::Interval => "interval",
        }
    }
}

// === impl Advert ===

impl Advert {
    /// The VRRP message (no IP header). `src`/`dst` feed the v3 pseudo-header.
    pub fn encode(&self, src: Ipv4Addr, dst: Ipv4Addr, mode: ChecksumMode) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 4 * self.addrs.len() + V2_AUTH_LEN);
        out.push(self.version.number() << 4 | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(self.addrs.len() as u8);
        match self.version {
            Version::V3 => out.extend_from_slice(&(self.interval_cs & 0x0fff).to_be_bytes()),
            Version::V2 => {
                out.push(match self.auth {
                    Auth::None => 0,
                    Auth::Pass(_) => 1,
                });
                out.push((self.interval_cs / 100).clamp(1, 255) as u8);
            }
        }
        out.extend_from_slice(&[0, 0]);
        for a in &self.addrs {
            out.extend_from_slice(&a.octets());
        }
        if self.version == Version::V2 {
            match &self.auth {
                Auth::None => out.extend_from_slice(&[0; V2_AUTH_LEN]),
                Auth::Pass(p) => out.extend_from_slice(p),
            }
        }
        let sum = match (self.version, mode) {
            (Version::V3, ChecksumMode::PseudoHeader) => {
                checksum(&[&pseudo_header(src, dst, out.len()), &out])
            }
            _ => checksum(&[&out]),
        };
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        out
    }
}

// === impl Auth ===

impl Auth {
    /// A v2 PASS password: at most 8 bytes (longer ones are cut like keepalived does).
    pub fn pass(text: &str) -> Auth {
        let mut p = [0u8; 8];
        for (d, s) in p.iter_mut().zip(text.as_bytes()) {
            *d = *s;
        }
        Auth::Pass(p)
    }
}

/// Decodes an IPv4 datagram as a raw socket returns it (IP header included)
/// and checks it as RFC 5798 Section 7.1 asks, except the VRID, the source
/// and the authentication, which the instance checks.
pub fn decode_ipv4(datagram: &[u8]) -> Result<Received, DecodeError> {
    if datagram.len() < 20 {
        return Err(DecodeError::Truncated);
    }
    let ihl = usize::from(datagram[0] & 0x0f) * 4;
    if datagram[0] >> 4 != 4 || ihl < 20 || datagram[9] != IPPROTO_VRRP {
        return Err(DecodeError::IpHeader);
    }
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if datagram.len() < ihl || total < ihl || datagram.len() < total {
        return Err(DecodeError::Truncated);
    }
    let ttl = datagram[8];
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    if ttl != TTL {
        return Err(DecodeError::Ttl(ttl));
    }
    let advert = decode(&datagram[ihl..total], src, dst)?;
    Ok(Received {
        src,
        dst,
        ttl,
        advert,
    })
}

/// Decodes a VRRP message (no IP header).
pub fn decode(msg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<Advert, DecodeError> {
    if msg.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let version = match msg[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        v => return Err(DecodeError::Version(v)),
    };
    if msg[0] & 0x0f != TYPE_ADVERTISEMENT {
        return Err(DecodeError::Type(msg[0] & 0x0f));
    }
    let count = usize::from(msg[3]);
    if count == 0 {
        return Err(DecodeError::AddrCount);
    }
    let addrs_end = HEADER_LEN + 4 * count;
    // v2: keepalived and RFC 3768 always carry the 8 authentication bytes;
    // some senders omit them when there is no authentication.
    let len_ok = match version {
        Version::V3 => msg.len() == addrs_end,
        Version::V2 => msg.len() == addrs_end + V2_AUTH_LEN || msg.len() == addrs_end,
    };
    if !len_ok {
        return Err(DecodeError::Length);
    }
    let valid = match version {
        Version::V2 => checksum(&[msg]) == 0,
        Version::V3 => {
            checksum(&[&pseudo_header(src, dst, msg.len()), msg]) == 0 || checksum(&[msg]) == 0
        }
    };
    if !valid {
        return Err(DecodeError::Checksum);
    }
    let addrs = msg[HEADER_LEN..addrs_end]
        .chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect();
    let (interval_cs, auth) = match version {
        Version::V3 => (u16::from_be_bytes([msg[4] & 0x0f, msg[5]]), Auth::None),
        Version::V2 => {
            let auth = match (msg[4], msg.get(addrs_end..addrs_end + V2_AUTH_LEN)) {
                (1, Some(data)) => {
                    let mut p = [0u8; 8];
                    p.copy_from_slice(data);
                    Auth::Pass(p)
                }
                _ => Auth::None,
            };
            (u16::from(msg[5]) * 100, auth)
        }
    };
    if interval_cs == 0 {
        return Err(DecodeError::Interval);
    }
    Ok(Advert {
        version,
        vrid: msg[1],
        priority: msg[2],
        interval_cs,
        addrs,
        auth,
    })
}

fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = IPPROTO_VRRP;
    p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`
/// (each part of even length except possibly the last).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests;
