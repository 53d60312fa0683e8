//! Pure MySQL/MariaDB wire protocol: no sockets are opened here.
//!
//! References: the MariaDB client/server protocol pages
//! (`clientserver-protocol/*`) and the MySQL source documentation
//! (`page_protocol_basic_*`, `page_protocol_connection_phase*`).

pub mod auth;
pub mod command;
pub mod compress;
pub mod err;
pub mod handshake;
pub mod ok;
pub mod response;
pub mod wire;

pub use mysql_common::constants::{CapabilityFlags, StatusFlags};

/// Largest payload of one physical packet; a payload of exactly this size is
/// continued by the next packet (MySQL docs: "Sending More Than 16Mb").
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// Character set announced to clients: utf8mb4_general_ci (45). Clients set
/// their own with the handshake response or `SET NAMES`.
pub const DEFAULT_COLLATION: u8 = 45;
