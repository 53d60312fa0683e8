//! ERR packets: the ones tandem sends itself, and parsing the backend's.
//!
//! ```text
//! ERR_Packet (PROTOCOL_41)
//! +------+-------------+-----+-----------+-----------------+
//! | 0xFF | code: int<2> | '#' | state: 5B | message: EOF str |
//! +------+-------------+-----+-----------+-----------------+
//! ```
//! Codes and SQLSTATEs are the server's own (MariaDB `include/mysqld_error.h`),
//! so drivers map them to the exceptions they already know.

use super::wire::{put_u16, Reader};

/// A server error as tandem sends it to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub code: u16,
    pub state: [u8; 5],
    pub message: String,
}

pub const ER_CON_COUNT_ERROR: u16 = 1040;
pub const ER_HANDSHAKE_ERROR: u16 = 1043;
pub const ER_ACCESS_DENIED_ERROR: u16 = 1045;
pub const ER_UNKNOWN_COM_ERROR: u16 = 1047;
pub const ER_SERVER_SHUTDOWN: u16 = 1053;
pub const ER_NO_SUCH_THREAD: u16 = 1094;
pub const ER_KILL_DENIED_ERROR: u16 = 1095;
pub const ER_UNKNOWN_ERROR: u16 = 1105;
pub const ER_NET_PACKET_TOO_LARGE: u16 = 1153;
pub const ER_NET_PACKETS_OUT_OF_ORDER: u16 = 1156;
pub const ER_NET_UNCOMPRESS_ERROR: u16 = 1157;
pub const ER_NET_READ_ERROR: u16 = 1158;
pub const ER_NET_READ_INTERRUPTED: u16 = 1159;
pub const ER_TOO_MANY_USER_CONNECTIONS: u16 = 1203;
pub const ER_OPTION_PREVENTS_STATEMENT: u16 = 1290;
pub const ER_QUERY_INTERRUPTED: u16 = 1317;
pub const ER_CONNECT_TO_FOREIGN_DATA_SOURCE: u16 = 1429;
pub const ER_NOT_SUPPORTED_AUTH_MODE: u16 = 1251;
pub const ER_MALFORMED_PACKET: u16 = 1835;
pub const ER_CONNECTION_KILLED: u16 = 1927;
pub const ER_SECURE_TRANSPORT_REQUIRED: u16 = 3159;
pub const ER_CLIENT_INTERACTION_TIMEOUT: u16 = 4031;
/// Client-library code for "can't connect"; tandem uses it for an unreachable
/// backend so applications treat it like a failed connect.
pub const CR_CONN_HOST_ERROR: u16 = 2003;

// === impl ServerError ===

impl ServerError {
    pub fn new(code: u16, state: &str, message: impl Into<String>) -> Self {
        let mut s = [b'H', b'Y', b'0', b'0', b'0'];
        if state.len() == 5 {
            s.copy_from_slice(state.as_bytes());
        }
        ServerError {
            code,
            state: s,
            message: message.into(),
        }
    }

    pub fn access_denied(user: &str, host: &str, using_password: bool) -> Self {
        let using = if using_password { "YES" } else { "NO" };
        Self::new(
            ER_ACCESS_DENIED_ERROR,
            "28000",
            format!("Access denied for user '{user}'@'{host}' (using password: {using})"),
        )
    }

    pub fn too_many_connections() -> Self {
        Self::new(ER_CON_COUNT_ERROR, "08004", "Too many connections")
    }

    /// What a statement stopped by `KILL QUERY` returns.
    pub fn query_interrupted() -> Self {
        Self::new(
            ER_QUERY_INTERRUPTED,
            "70100",
            "Query execution was interrupted",
        )
    }

    pub fn unknown_command() -> Self {
        Self::new(ER_UNKNOWN_COM_ERROR, "08S01", "Unknown command")
    }

    pub fn malformed_packet() -> Self {
        Self::new(
            ER_MALFORMED_PACKET,
            "HY000",
            "Malformed communication packet",
        )
    }

    pub fn bad_handshake() -> Self {
        Self::new(ER_HANDSHAKE_ERROR, "08S01", "Bad handshake")
    }

    pub fn packets_out_of_order() -> Self {
        Self::new(
            ER_NET_PACKETS_OUT_OF_ORDER,
            "08S01",
            "Got packets out of order",
        )
    }

    /// A compressed frame from the client that does not decode; `why` is
    /// the frame error.
    pub fn uncompress_error(why: &str) -> Self {
        Self::new(
            ER_NET_UNCOMPRESS_ERROR,
            "08S01",
            format!("Couldn't uncompress communication packet: {why}"),
        )
    }

    pub fn packet_too_large() -> Self {
        Self::new(
            ER_NET_PACKET_TOO_LARGE,
            "08S01",
            "Got a packet bigger than 'max_allowed_packet' bytes",
        )
    }

    /// A backend tandem cannot reach. A server-range code (1429, "Unable to
    /// connect to foreign data source"): the client's own connection is
    /// fine, and a client-range code such as 2003 in the connection phase
    /// makes libmariadb report "Received malformed packet" (2027).
    pub fn backend_unreachable(name: &str, addr: &str, reason: &str) -> Self {
        Self::new(
            ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
            "HY000",
            format!("tandem: can't connect to backend '{name}' ({addr}): {reason}"),
        )
    }

    /// The ERR packet payload (without the 4-byte header).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.message.len());
        out.push(0xFF);
        put_u16(&mut out, self.code);
        out.push(b'#');
        out.extend_from_slice(&self.state);
        out.extend_from_slice(self.message.as_bytes());
        out
    }

    /// Parses an ERR payload sent by a server (PROTOCOL_41 form).
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let mut r = Reader::new(payload);
        if r.u8().ok()? != 0xFF {
            return None;
        }
        let code = r.u16().ok()?;
        let mut state = *b"HY000";
        let rest = r.rest();
        let msg = if rest.first() == Some(&b'#') && rest.len() >= 6 {
            state.copy_from_slice(&rest[1..6]);
            &rest[6..]
        } else {
            rest
        };
        Some(ServerError {
            code,
            state,
            message: String::from_utf8_lossy(msg).into_owned(),
        })
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code,
            String::from_utf8_lossy(&self.state),
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_matches_mariadb_bytes() {
        let e = ServerError::access_denied("app", "127.0.0.1", true);
        let p = e.encode();
        assert_eq!(&p[..9], b"\xff\x15\x04#28000");
        assert_eq!(
            &p[9..],
            b"Access denied for user 'app'@'127.0.0.1' (using password: YES)"
        );
        assert_eq!(ServerError::parse(&p).unwrap(), e);
    }
}
