//! tandem as a client of a backend server: connect, optional TLS, log in as
//! the application's user, and hand back an authenticated packet stream.
//!
//! The capabilities asked of the backend are the client's own (minus what
//! tandem does not relay, e.g. compression), so every packet the backend sends
//! can be relayed to the client byte for byte.

pub mod query;

use std::sync::Arc;
use std::time::Duration;

use rsa::pkcs8::DecodePublicKey;
use tokio::net::TcpStream;

use super::io::{PacketError, PacketIo, Stream};
use super::protocol::auth::{self, Secret};
use super::protocol::err::ServerError;
use super::protocol::handshake::{BackendGreeting, ClientHello, CLIENT_MYSQL};
use super::protocol::ok::OkInfo;
use super::protocol::CapabilityFlags as Cap;

/// Everything needed to open one backend connection.
pub struct ConnectParams<'a> {
    pub backend_name: &'a str,
    pub address: &'a str,
    pub user: &'a str,
    pub secret: &'a Secret,
    pub database: Option<&'a str>,
    /// Capabilities the client negotiated with tandem.
    pub capabilities: u32,
    /// MariaDB extended capabilities the client negotiated with tandem.
    pub ext_capabilities: u32,
    pub collation: u8,
    pub attributes: Option<&'a [u8]>,
    pub timeout: Duration,
    pub tls: Option<&'a BackendTls>,
    pub max_packet: u32,
}

/// TLS towards backends.
pub struct BackendTls {
    pub config: Arc<rustls::ClientConfig>,
    /// Fail when the backend does not offer TLS (otherwise fall back to plain).
    pub required: bool,
}

/// An authenticated backend connection.
pub struct BackendConn {
    pub io: PacketIo,
    pub thread_id: u32,
    pub capabilities: u32,
    pub version: String,
    pub status: u16,
    /// A command was sent and its response not yet read to its end. Such a
    /// connection is never lent again (`Pool::release` closes it): the rest
    /// of that response would reach the next session as its own answer.
    pub awaiting_response: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// TCP connect failed: nothing was sent, retrying elsewhere is safe.
    #[error("{0}")]
    Connect(std::io::Error),
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    /// The backend refused the login or the database; relay its error.
    #[error("{0}")]
    Server(ServerError),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("{0}")]
    Io(#[from] PacketError),
}

/// Capabilities tandem can relay unchanged between a client and a backend.
/// Never CLIENT_COMPRESS: tandem compresses toward the client itself
/// (`io::Compressed`); backend connections stay uncompressed, so sessions
/// with and without compression share them.
pub const RELAYABLE: u32 = Cap::CLIENT_LONG_PASSWORD.bits()
    | Cap::CLIENT_FOUND_ROWS.bits()
    | Cap::CLIENT_LONG_FLAG.bits()
    | Cap::CLIENT_CONNECT_WITH_DB.bits()
    | Cap::CLIENT_NO_SCHEMA.bits()
    | Cap::CLIENT_ODBC.bits()
    | Cap::CLIENT_LOCAL_FILES.bits()
    | Cap::CLIENT_IGNORE_SPACE.bits()
    | Cap::CLIENT_PROTOCOL_41.bits()
    | Cap::CLIENT_INTERACTIVE.bits()
    | Cap::CLIENT_IGNORE_SIGPIPE.bits()
    | Cap::CLIENT_TRANSACTIONS.bits()
    | Cap::CLIENT_RESERVED.bits()
    | Cap::CLIENT_SECURE_CONNECTION.bits()
    | Cap::CLIENT_MULTI_STATEMENTS.bits()
    | Cap::CLIENT_MULTI_RESULTS.bits()
    | Cap::CLIENT_PS_MULTI_RESULTS.bits()
    | Cap::CLIENT_PLUGIN_AUTH.bits()
    | Cap::CLIENT_CONNECT_ATTRS.bits()
    | Cap::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
    | Cap::CLIENT_SESSION_TRACK.bits()
    | Cap::CLIENT_DEPRECATE_EOF.bits();

/// MariaDB extended capabilities tandem relays: extended metadata only adds
/// fields to column definitions, which the relay passes through unread.
/// Progress reports (extra packets mid-statement), bulk execution (a command
/// tandem does not route) and metadata caching (results without column
/// definitions) would change what the response scanner must understand.
pub const RELAYABLE_EXT: u32 = crate::mysql::protocol::handshake::ext::EXTENDED_METADATA;

/// Limit for packets during the login exchange.
pub const LOGIN_PACKET_LIMIT: usize = 1 << 20;

// === impl BackendError ===

impl BackendError {
    /// The ERR a client sees when this backend cannot serve it.
    pub fn to_client_error(&self, name: &str, addr: &str) -> ServerError {
        match self {
            BackendError::Server(e) => e.clone(),
            other => ServerError::backend_unreachable(name, addr, &other.to_string()),
        }
    }
}

/// Opens and authenticates a backend connection, bounded by `p.timeout`.
pub async fn connect(p: &ConnectParams<'_>) -> Result<BackendConn, BackendError> {
    match tokio::time::timeout(p.timeout, connect_inner(p)).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Timeout(p.timeout)),
    }
}

/// Reads a backend's greeting (no login) to learn its version string and
/// capabilities; used to announce the primary's version to clients.
pub async fn probe(address: &str, timeout: Duration) -> Result<BackendGreeting, BackendError> {
    let fut = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(BackendError::Connect)?;
        let mut io = PacketIo::new(Stream::Plain(tcp));
        let (_, greeting) = io.read_packet_exact(LOGIN_PACKET_LIMIT).await?;
        parse_greeting(&greeting)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| BackendError::Timeout(timeout))?
}

fn parse_greeting(payload: &[u8]) -> Result<BackendGreeting, BackendError> {
    if payload.first() == Some(&0xFF) {
        let e = ServerError::parse(payload).unwrap_or_else(ServerError::malformed_packet);
        return Err(BackendError::Server(e));
    }
    BackendGreeting::parse(payload).map_err(|e| BackendError::Protocol(e.to_string()))
}

/// A backend connection before its login: connected (and switched to TLS
/// when configured and offered), its greeting read, the capabilities to ask
/// for worked out.
pub struct LoginStart {
    pub io: PacketIo,
    pub greeting: BackendGreeting,
    pub capabilities: u32,
    pub ext_capabilities: u32,
    /// Sequence id of the HandshakeResponse to send.
    pub seq: u8,
    pub tls: bool,
}

impl LoginStart {
    /// The HandshakeResponse41 for this backend, with `auth_response`
    /// computed for `plugin`.
    pub fn hello(
        &self,
        p: &ConnectParams<'_>,
        plugin: &str,
        auth_response: Vec<u8>,
    ) -> ClientHello {
        ClientHello {
            capabilities: self.capabilities,
            ext_capabilities: self.ext_capabilities,
            max_packet: p.max_packet,
            collation: p.collation,
            ssl_request: false,
            user: p.user.to_string(),
            auth_response,
            database: p.database.map(str::to_string),
            auth_plugin: Some(plugin.to_string()),
            attributes: p.attributes.map(<[u8]>::to_vec),
        }
    }

    /// The plugin of the greeting (`mysql_native_password` when it names none).
    pub fn plugin(&self) -> &str {
        if self.greeting.auth_plugin.is_empty() {
            auth::NATIVE
        } else {
            &self.greeting.auth_plugin
        }
    }

    /// The greeting's scramble (the part the plugins use).
    pub fn scramble(&self) -> &[u8] {
        &self.greeting.scramble[..self.greeting.scramble.len().min(20)]
    }
}

async fn connect_inner(p: &ConnectParams<'_>) -> Result<BackendConn, BackendError> {
    let start = open_for_login(p).await?;
    let plugin = start.greeting.auth_plugin.clone();
    let token = auth_token(&plugin, p.secret, &start.greeting.scramble, start.tls)?;
    let hello = start.hello(p, start.plugin(), token);
    let LoginStart {
        mut io,
        greeting,
        capabilities,
        seq,
        tls,
        ..
    } = start;
    io.write_packet(seq, &hello.encode())
        .await
        .map_err(PacketError::Io)?;
    let status = login_exchange(&mut io, &plugin, p.secret, &greeting.scramble, tls).await?;
    Ok(BackendConn {
        io,
        thread_id: greeting.connection_id,
        capabilities,
        version: greeting.version,
        status,
        awaiting_response: false,
    })
}

/// Connects to `p.address`, reads the greeting and, with backend TLS
/// configured, switches to TLS: everything of a login but the login.
pub async fn open_for_login(p: &ConnectParams<'_>) -> Result<LoginStart, BackendError> {
    let tcp = TcpStream::connect(p.address)
        .await
        .map_err(BackendError::Connect)?;
    tcp.set_nodelay(true).map_err(BackendError::Connect)?;
    let mut io = PacketIo::new(Stream::Plain(tcp));
    let (_, greeting) = io.read_packet_exact(LOGIN_PACKET_LIMIT).await?;
    let greeting = parse_greeting(&greeting)?;

    let mut caps = (p.capabilities & RELAYABLE & greeting.capabilities)
        | Cap::CLIENT_PROTOCOL_41.bits()
        | Cap::CLIENT_SECURE_CONNECTION.bits()
        | Cap::CLIENT_PLUGIN_AUTH.bits()
        | Cap::CLIENT_TRANSACTIONS.bits();
    // A MariaDB server (CLIENT_MYSQL unset) reads extended capabilities only
    // from a client that also leaves CLIENT_MYSQL unset.
    let ext_caps = p.ext_capabilities & RELAYABLE_EXT & greeting.ext_capabilities;
    if greeting.capabilities & CLIENT_MYSQL != 0 {
        caps |= CLIENT_MYSQL;
    }
    caps &= !Cap::CLIENT_CONNECT_WITH_DB.bits();
    if p.database.is_some() {
        caps |= Cap::CLIENT_CONNECT_WITH_DB.bits();
    }
    if p.attributes.is_none() {
        caps &= !Cap::CLIENT_CONNECT_ATTRS.bits();
    }
    let mut seq = 1u8;
    let mut tls = false;
    if let Some(t) = p.tls {
        if greeting.capabilities & Cap::CLIENT_SSL.bits() != 0 {
            caps |= Cap::CLIENT_SSL.bits();
            let req = ClientHello {
                capabilities: caps,
                ext_capabilities: ext_caps,
                max_packet: p.max_packet,
                collation: p.collation,
                ssl_request: true,
                ..Default::default()
            };
            seq = io
                .write_packet(seq, &req.encode())
                .await
                .map_err(PacketError::Io)?;
            io = upgrade(io, t, p.address).await?;
            tls = true;
        } else if t.required {
            return Err(BackendError::Tls("backend does not offer TLS".into()));
        }
    }

    Ok(LoginStart {
        io,
        greeting,
        capabilities: caps,
        ext_capabilities: ext_caps,
        seq,
        tls,
    })
}

async fn upgrade(io: PacketIo, t: &BackendTls, address: &str) -> Result<PacketIo, BackendError> {
    let Stream::Plain(tcp) = io.stream else {
        return Err(BackendError::Tls("already encrypted".into()));
    };
    let host = address.rsplit_once(':').map(|(h, _)| h).unwrap_or(address);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name = rustls::pki_types::ServerName::try_from(host)
        .map_err(|e| BackendError::Tls(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(t.config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| BackendError::Tls(e.to_string()))?;
    Ok(PacketIo::new(Stream::Tls(Box::new(
        tokio_rustls::TlsStream::Client(tls),
    ))))
}

/// The auth response for `plugin`, from what tandem knows of the password.
fn auth_token(
    plugin: &str,
    secret: &Secret,
    scramble: &[u8],
    tls: bool,
) -> Result<Vec<u8>, BackendError> {
    let scramble = &scramble[..scramble.len().min(20)];
    match (plugin, secret) {
        ("" | auth::NATIVE, Secret::Plain(pw)) => Ok(auth::native_token(pw, scramble)),
        ("" | auth::NATIVE, Secret::NativeStage1(s1)) => {
            Ok(auth::native_token_from_stage1(s1, scramble).to_vec())
        }
        (auth::CACHING_SHA2, Secret::Plain(pw)) => Ok(auth::sha2_token(pw, scramble)),
        (auth::CLEAR, Secret::Plain(pw)) if tls => {
            let mut v = pw.as_bytes().to_vec();
            v.push(0);
            Ok(v)
        }
        (_, Secret::RelayedOnly) => Err(BackendError::Protocol(
            "this user logged in by a relayed exchange (pass-through of an authentication plugin tandem cannot check): tandem cannot open another connection as this user".into(),
        )),
        (other, Secret::NativeStage1(_)) => Err(BackendError::Protocol(format!(
            "backend asks for {other}; tandem only has this user's mysql_native_password hash: configure its clear-text password"
        ))),
        (other, _) => Err(BackendError::Protocol(format!(
            "unsupported backend authentication plugin {other}"
        ))),
    }
}

/// Follows the server through auth switches and caching_sha2 rounds until OK.
async fn login_exchange(
    io: &mut PacketIo,
    plugin: &str,
    secret: &Secret,
    scramble: &[u8],
    tls: bool,
) -> Result<u16, BackendError> {
    let mut plugin = plugin.to_string();
    let mut scramble = scramble.to_vec();
    for _ in 0..8 {
        let (s, pkt) = io.read_packet_exact(LOGIN_PACKET_LIMIT).await?;
        let seq = s.wrapping_add(1);
        match pkt.first() {
            Some(0x00) => return Ok(OkInfo::parse(&pkt).map(|o| o.status).unwrap_or(0)),
            Some(0xFF) => {
                let e = ServerError::parse(&pkt).unwrap_or_else(ServerError::malformed_packet);
                return Err(BackendError::Server(e));
            }
            Some(0xFE) => {
                // AuthSwitchRequest: plugin NUL data (data ends with a NUL).
                let body = &pkt[1..];
                let nul = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                plugin = String::from_utf8_lossy(&body[..nul]).into_owned();
                let mut data = body.get(nul + 1..).unwrap_or(&[]).to_vec();
                if data.last() == Some(&0) {
                    data.pop();
                }
                scramble = data;
                let token = auth_token(&plugin, secret, &scramble, tls)?;
                io.write_packet(seq, &token)
                    .await
                    .map_err(PacketError::Io)?;
            }
            Some(0x01) if plugin == auth::CACHING_SHA2 => match pkt.get(1) {
                Some(&auth::SHA2_FAST_AUTH_OK) => {}
                Some(&auth::SHA2_PERFORM_FULL_AUTH) => {
                    sha2_full_auth(io, seq, secret, &scramble, tls).await?;
                }
                _ => {
                    return Err(BackendError::Protocol(
                        "unexpected caching_sha2 data".into(),
                    ))
                }
            },
            _ => {
                return Err(BackendError::Protocol(
                    "unexpected packet during login".into(),
                ))
            }
        }
    }
    Err(BackendError::Protocol(
        "too many authentication rounds".into(),
    ))
}

pub(crate) async fn sha2_full_auth(
    io: &mut PacketIo,
    seq: u8,
    secret: &Secret,
    scramble: &[u8],
    tls: bool,
) -> Result<u8, BackendError> {
    let Secret::Plain(pw) = secret else {
        return Err(BackendError::Protocol(
            "caching_sha2_password full authentication needs the clear-text password".into(),
        ));
    };
    let mut clear = pw.as_bytes().to_vec();
    clear.push(0);
    if tls {
        return Ok(io
            .write_packet(seq, &clear)
            .await
            .map_err(PacketError::Io)?);
    }
    let seq = io
        .write_packet(seq, &[auth::SHA2_REQUEST_PUBLIC_KEY])
        .await
        .map_err(PacketError::Io)?;
    let (s, pkt) = io.read_packet_exact(LOGIN_PACKET_LIMIT).await?;
    let _ = seq;
    let pem = pkt
        .strip_prefix(&[0x01])
        .ok_or_else(|| BackendError::Protocol("expected the server's public key".into()))?;
    let pem = std::str::from_utf8(pem).map_err(|e| BackendError::Protocol(e.to_string()))?;
    let key = rsa::RsaPublicKey::from_public_key_pem(pem)
        .map_err(|e| BackendError::Protocol(format!("server public key: {e}")))?;
    let plain = auth::xor_with_scramble(&clear, &scramble[..scramble.len().min(20)]);
    let enc = key
        .encrypt(
            &mut rand::thread_rng(),
            rsa::Oaep::new::<sha1::Sha1>(),
            &plain,
        )
        .map_err(|e| BackendError::Protocol(e.to_string()))?;
    Ok(io
        .write_packet(s.wrapping_add(1), &enc)
        .await
        .map_err(PacketError::Io)?)
}
