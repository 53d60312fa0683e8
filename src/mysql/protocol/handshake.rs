//! Connection phase packets: HandshakeV10 and HandshakeResponse41, in both
//! directions (tandem is the server to clients and a client to backends).
//!
//! ```text
//! HandshakeV10 (server -> client)
//! +----+-----------------+---------+--------------+---+-----------+---------+--------+------------+---------+-----------+---------+---------------+--------------+
//! | 10 | version str NUL | id int4 | scramble[0..8]| 0 | caps lo 2 | charset | status | caps hi 2  | auth len| filler 6  | ext 4   | scramble[8..]+0| plugin NUL   |
//! +----+-----------------+---------+--------------+---+-----------+---------+--------+------------+---------+-----------+---------+---------------+--------------+
//!
//! HandshakeResponse41 (client -> server)
//! +--------+--------------+---------+-----------+-------+----------+-----------------------+-----------+------------+-------------+
//! | caps 4 | max packet 4 | charset | filler 19 | ext 4 | user NUL | auth (lenenc or len1) | [db NUL]  | [plugin NUL]| [attrs lenenc]|
//! +--------+--------------+---------+-----------+-------+----------+-----------------------+-----------+------------+-------------+
//! SSLRequest = the first 32 bytes only, with CLIENT_SSL set.
//! ```
//!
//! `ext 4` are MariaDB's extended capabilities (capability bits 32..63), sent
//! only by a side that leaves `CLIENT_MYSQL` (bit 0, the old
//! CLIENT_LONG_PASSWORD) unset: MariaDB "Connection" page, "Initial
//! handshake packet" and "Handshake response packet". Elsewhere they are
//! reserved zeros.

use super::wire::{put_lenenc, put_lenenc_bytes, put_u16, put_u32, Reader, WireError};
use super::CapabilityFlags as Cap;

/// Capability bit 0: set by MySQL peers; MariaDB leaves it unset and uses
/// the extended capabilities instead.
pub const CLIENT_MYSQL: u32 = 1;

/// MariaDB extended capabilities (bits 32.. of the 64-bit capability word,
/// here as bits 0.. of the extended word).
pub mod ext {
    /// MARIADB_CLIENT_PROGRESS: progress report packets during a statement.
    pub const PROGRESS: u32 = 1 << 0;
    /// MARIADB_CLIENT_STMT_BULK_OPERATIONS: COM_STMT_BULK_EXECUTE.
    pub const STMT_BULK_OPERATIONS: u32 = 1 << 2;
    /// MARIADB_CLIENT_EXTENDED_METADATA: column definitions carry the
    /// extended type (`json`, `uuid`, `inet6`...) and format.
    pub const EXTENDED_METADATA: u32 = 1 << 3;
    /// MARIADB_CLIENT_CACHE_METADATA: executes may skip the metadata.
    pub const CACHE_METADATA: u32 = 1 << 4;
}

/// The extended capabilities of a peer whose capability word is `caps`:
/// zero for a MySQL peer (`CLIENT_MYSQL` set), whatever the bytes say.
fn ext_caps_of(caps: u32, raw: u32) -> u32 {
    if caps & CLIENT_MYSQL == 0 {
        raw
    } else {
        0
    }
}

/// The greeting tandem sends to a client.
#[derive(Debug, Clone)]
pub struct ServerGreeting<'a> {
    pub version: &'a str,
    pub connection_id: u32,
    pub scramble: [u8; 20],
    pub capabilities: u32,
    /// MariaDB extended capabilities; sent only without `CLIENT_MYSQL`.
    pub ext_capabilities: u32,
    pub collation: u8,
    pub status: u16,
    pub auth_plugin: &'a str,
}

/// A backend's greeting, as tandem reads it when connecting.
#[derive(Debug, Clone)]
pub struct BackendGreeting {
    pub version: String,
    pub connection_id: u32,
    pub scramble: Vec<u8>,
    pub capabilities: u32,
    /// MariaDB extended capabilities (0 from a MySQL server).
    pub ext_capabilities: u32,
    pub collation: u8,
    pub status: u16,
    pub auth_plugin: String,
}

/// A client's HandshakeResponse41, or an SSLRequest when `ssl_request`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub capabilities: u32,
    /// MariaDB extended capabilities (0 from a MySQL client).
    pub ext_capabilities: u32,
    pub max_packet: u32,
    pub collation: u8,
    pub ssl_request: bool,
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    /// Raw connect attributes (the bytes after the lenenc total length).
    pub attributes: Option<Vec<u8>>,
}

// === impl ServerGreeting ===

impl ServerGreeting<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.version.len());
        out.push(10);
        out.extend_from_slice(self.version.as_bytes());
        out.push(0);
        put_u32(&mut out, self.connection_id);
        out.extend_from_slice(&self.scramble[..8]);
        out.push(0);
        put_u16(&mut out, self.capabilities as u16);
        out.push(self.collation);
        put_u16(&mut out, self.status);
        put_u16(&mut out, (self.capabilities >> 16) as u16);
        out.push(21);
        out.extend_from_slice(&[0u8; 6]);
        put_u32(
            &mut out,
            ext_caps_of(self.capabilities, self.ext_capabilities),
        );
        out.extend_from_slice(&self.scramble[8..]);
        out.push(0);
        out.extend_from_slice(self.auth_plugin.as_bytes());
        out.push(0);
        out
    }
}

// === impl BackendGreeting ===

impl BackendGreeting {
    pub fn parse(payload: &[u8]) -> Result<BackendGreeting, WireError> {
        let mut r = Reader::new(payload);
        if r.u8()? != 10 {
            return Err(WireError::Malformed("unsupported protocol version"));
        }
        let version = String::from_utf8_lossy(r.nul_bytes()?).into_owned();
        let connection_id = r.u32()?;
        let mut scramble = r.take(8)?.to_vec();
        r.skip(1)?;
        let caps_lo = u32::from(r.u16()?);
        let (collation, status, caps_hi, auth_len) = if r.is_empty() {
            (0, 0, 0, 0)
        } else {
            (r.u8()?, r.u16()?, u32::from(r.u16()?), r.u8()?)
        };
        let capabilities = caps_lo | caps_hi << 16;
        let mut auth_plugin = String::new();
        let mut ext_capabilities = 0;
        if !r.is_empty() {
            r.skip(6)?;
            ext_capabilities = ext_caps_of(capabilities, r.u32()?);
            if capabilities & Cap::CLIENT_SECURE_CONNECTION.bits() != 0 {
                let n = usize::from(auth_len).saturating_sub(9).max(12);
                scramble.extend_from_slice(r.take(n)?);
                r.skip(1)?;
            }
            if capabilities & Cap::CLIENT_PLUGIN_AUTH.bits() != 0 {
                auth_plugin = String::from_utf8_lossy(r.nul_or_eof_bytes()).into_owned();
            }
        }
        Ok(BackendGreeting {
            version,
            connection_id,
            scramble,
            capabilities,
            ext_capabilities,
            collation,
            status,
            auth_plugin,
        })
    }
}

// === impl ClientHello ===

impl ClientHello {
    /// Parses an SSLRequest or a HandshakeResponse41. Pre-4.1 clients are
    /// refused by the caller (`capabilities` lacks PROTOCOL_41).
    pub fn parse(payload: &[u8]) -> Result<ClientHello, WireError> {
        let mut r = Reader::new(payload);
        let capabilities = r.u32()?;
        if capabilities & Cap::CLIENT_PROTOCOL_41.bits() == 0 {
            return Ok(ClientHello {
                capabilities,
                ..Default::default()
            });
        }
        let max_packet = r.u32()?;
        let collation = r.u8()?;
        r.skip(19)?;
        let ext_capabilities = ext_caps_of(capabilities, r.u32()?);
        let mut hello = ClientHello {
            capabilities,
            ext_capabilities,
            max_packet,
            collation,
            ..Default::default()
        };
        if r.is_empty() && capabilities & Cap::CLIENT_SSL.bits() != 0 {
            hello.ssl_request = true;
            return Ok(hello);
        }
        hello.user = utf8(r.nul_bytes()?)?;
        hello.auth_response =
            if capabilities & Cap::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits() != 0 {
                r.lenenc_bytes()?.to_vec()
            } else if capabilities & Cap::CLIENT_SECURE_CONNECTION.bits() != 0 {
                let n = r.u8()?;
                r.take(usize::from(n))?.to_vec()
            } else {
                r.nul_bytes()?.to_vec()
            };
        if capabilities & Cap::CLIENT_CONNECT_WITH_DB.bits() != 0 && !r.is_empty() {
            let db = utf8(r.nul_or_eof_bytes())?;
            hello.database = (!db.is_empty()).then_some(db);
        }
        if capabilities & Cap::CLIENT_PLUGIN_AUTH.bits() != 0 && !r.is_empty() {
            hello.auth_plugin = Some(utf8(r.nul_or_eof_bytes())?);
        }
        if capabilities & Cap::CLIENT_CONNECT_ATTRS.bits() != 0 && !r.is_empty() {
            hello.attributes = Some(r.lenenc_bytes()?.to_vec());
        }
        Ok(hello)
    }

    /// Encodes a HandshakeResponse41 (tandem as a client), or the 32-byte
    /// SSLRequest when `ssl_request` is set.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        put_u32(&mut out, self.capabilities);
        put_u32(&mut out, self.max_packet);
        out.push(self.collation);
        out.extend_from_slice(&[0u8; 19]);
        put_u32(
            &mut out,
            ext_caps_of(self.capabilities, self.ext_capabilities),
        );
        if self.ssl_request {
            return out;
        }
        out.extend_from_slice(self.user.as_bytes());
        out.push(0);
        if self.capabilities & Cap::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits() != 0 {
            put_lenenc_bytes(&mut out, &self.auth_response);
        } else {
            out.push(self.auth_response.len() as u8);
            out.extend_from_slice(&self.auth_response);
        }
        if self.capabilities & Cap::CLIENT_CONNECT_WITH_DB.bits() != 0 {
            out.extend_from_slice(self.database.as_deref().unwrap_or("").as_bytes());
            out.push(0);
        }
        if self.capabilities & Cap::CLIENT_PLUGIN_AUTH.bits() != 0 {
            out.extend_from_slice(self.auth_plugin.as_deref().unwrap_or("").as_bytes());
            out.push(0);
        }
        if self.capabilities & Cap::CLIENT_CONNECT_ATTRS.bits() != 0 {
            let attrs = self.attributes.as_deref().unwrap_or(&[]);
            put_lenenc(&mut out, attrs.len() as u64);
            out.extend_from_slice(attrs);
        }
        out
    }
}

fn utf8(b: &[u8]) -> Result<String, WireError> {
    String::from_utf8(b.to_vec()).map_err(|_| WireError::Malformed("invalid utf-8"))
}

/// AuthSwitchRequest: `0xFE plugin NUL data`.
pub fn auth_switch_request(plugin: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + plugin.len() + data.len() + 1);
    out.push(0xFE);
    out.extend_from_slice(plugin.as_bytes());
    out.push(0);
    out.extend_from_slice(data);
    out
}

/// Appends one connect attribute (key, value) in the wire form.
pub fn put_attribute(out: &mut Vec<u8>, key: &str, value: &str) {
    put_lenenc_bytes(out, key.as_bytes());
    put_lenenc_bytes(out, value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_round_trips_through_the_backend_parser() {
        let g = ServerGreeting {
            version: "5.5.5-10.11.6-MariaDB",
            connection_id: 42,
            scramble: *b"abcdefghijklmnopqrst",
            capabilities: 0xF7FE | Cap::CLIENT_PLUGIN_AUTH.bits() | Cap::CLIENT_PROTOCOL_41.bits(),
            ext_capabilities: ext::EXTENDED_METADATA | ext::CACHE_METADATA,
            collation: 45,
            status: 2,
            auth_plugin: "mysql_native_password",
        };
        let p = BackendGreeting::parse(&g.encode()).unwrap();
        assert_eq!(p.version, "5.5.5-10.11.6-MariaDB");
        assert_eq!(p.connection_id, 42);
        assert_eq!(p.scramble, b"abcdefghijklmnopqrst");
        assert_eq!(p.auth_plugin, "mysql_native_password");
        assert_eq!(p.capabilities, g.capabilities);
        assert_eq!(p.ext_capabilities, g.ext_capabilities);
        let mysql = ServerGreeting {
            capabilities: g.capabilities | CLIENT_MYSQL,
            ..g
        };
        let p = BackendGreeting::parse(&mysql.encode()).unwrap();
        assert_eq!(
            p.ext_capabilities, 0,
            "a MySQL greeting has no extended capabilities"
        );
    }

    #[test]
    fn hello_round_trip_with_all_options() {
        let caps = Cap::CLIENT_PROTOCOL_41
            | Cap::CLIENT_SECURE_CONNECTION
            | Cap::CLIENT_PLUGIN_AUTH
            | Cap::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | Cap::CLIENT_CONNECT_WITH_DB
            | Cap::CLIENT_CONNECT_ATTRS;
        let mut attrs = Vec::new();
        put_attribute(&mut attrs, "_client_name", "x");
        let h = ClientHello {
            capabilities: caps.bits(),
            ext_capabilities: ext::EXTENDED_METADATA,
            max_packet: 1 << 24,
            collation: 45,
            ssl_request: false,
            user: "app".into(),
            auth_response: vec![1; 20],
            database: Some("appdb".into()),
            auth_plugin: Some("mysql_native_password".into()),
            attributes: Some(attrs),
        };
        assert_eq!(ClientHello::parse(&h.encode()).unwrap(), h);
        let mysql = ClientHello {
            capabilities: h.capabilities | CLIENT_MYSQL,
            ..h.clone()
        };
        let parsed = ClientHello::parse(&mysql.encode()).unwrap();
        assert_eq!(parsed.ext_capabilities, 0);
    }

    /// The bytes MariaDB Connector/C (mysql2 alike) sends: CLIENT_MYSQL
    /// unset and EXTENDED_METADATA in the last 4 filler bytes.
    #[test]
    fn extended_capabilities_sit_in_the_last_four_filler_bytes() {
        let caps = (Cap::CLIENT_PROTOCOL_41 | Cap::CLIENT_SECURE_CONNECTION).bits();
        let mut p = caps.to_le_bytes().to_vec();
        p.extend_from_slice(&[0, 0, 0, 1, 45]);
        p.extend_from_slice(&[0; 19]);
        p.extend_from_slice(&8u32.to_le_bytes());
        p.extend_from_slice(b"app\0\0");
        let h = ClientHello::parse(&p).unwrap();
        assert_eq!(h.ext_capabilities, ext::EXTENDED_METADATA);
        assert_eq!(&h.encode()[..p.len()], &p[..]);
    }

    #[test]
    fn truncated_hello_is_an_error() {
        let caps = (Cap::CLIENT_PROTOCOL_41 | Cap::CLIENT_SECURE_CONNECTION).bits();
        let mut p = caps.to_le_bytes().to_vec();
        p.extend_from_slice(&[0; 28]);
        p.extend_from_slice(b"app\0");
        p.push(20);
        p.extend_from_slice(&[1; 5]);
        assert_eq!(ClientHello::parse(&p), Err(WireError::Truncated));
    }
}
