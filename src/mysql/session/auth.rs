//! The frontend connection phase: greeting, optional TLS, and checking the
//! client's credentials against tandem's user list.
//!
//! MariaDB "Connection" page: Initial handshake -> (SSLRequest -> TLS) ->
//! HandshakeResponse41 -> [AuthSwitchRequest / plugin rounds] -> OK | ERR.
//! tandem answers OK only after the backend accepted the same user, so a
//! backend-side refusal (unknown database...) reaches the client as is.

use std::sync::Arc;

use rsa::Oaep;

use super::SessionError;
use crate::metrics::RejectReason;
use crate::mysql::backend::RELAYABLE_EXT;
use crate::mysql::io::{PacketError, PacketIo, Stream};
use crate::mysql::listener::MysqlShared;
use crate::mysql::pool::PooledConn;
use crate::mysql::protocol::auth::{self, Secret};
use crate::mysql::protocol::compress::FrameError;
use crate::mysql::protocol::err::{ServerError, ER_SECURE_TRANSPORT_REQUIRED};
use crate::mysql::protocol::handshake::{
    auth_switch_request, ClientHello, ServerGreeting, CLIENT_MYSQL,
};
use crate::mysql::protocol::{CapabilityFlags as Cap, StatusFlags, DEFAULT_COLLATION};
use crate::mysql::users::UserEntry;

/// Capabilities tandem offers clients (further limited to the primary's).
const OFFERED: u32 = Cap::CLIENT_LONG_PASSWORD.bits()
    | Cap::CLIENT_FOUND_ROWS.bits()
    | Cap::CLIENT_LONG_FLAG.bits()
    | Cap::CLIENT_CONNECT_WITH_DB.bits()
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

/// Capabilities always present in what tandem announces. CLIENT_MYSQL
/// (CLIENT_LONG_PASSWORD) is announced as the primary does: a MariaDB
/// primary leaves it unset and offers extended capabilities instead.
const REQUIRED: u32 = Cap::CLIENT_PROTOCOL_41.bits()
    | Cap::CLIENT_SECURE_CONNECTION.bits()
    | Cap::CLIENT_PLUGIN_AUTH.bits()
    | Cap::CLIENT_TRANSACTIONS.bits();

const AUTH_PACKET_LIMIT: usize = 64 * 1024;

/// A client that proved who it is.
pub struct Login {
    pub user: Arc<UserEntry>,
    pub secret: Secret,
    pub hello: ClientHello,
    /// Sequence id for the final OK/ERR.
    pub seq: u8,
    pub scramble: [u8; 20],
    /// A relayed login's primary connection (pass-through).
    pub conn: Option<PooledConn>,
}

/// Runs the connection phase up to (not including) the final OK.
pub async fn handshake(
    shared: &MysqlShared,
    io: PacketIo,
    id: u32,
    client_ip: &str,
) -> Result<(PacketIo, Login), (Option<PacketIo>, SessionError)> {
    let mut io = io;
    let scramble = auth::new_scramble();
    let mut caps = (OFFERED
        & shared
            .backend_caps
            .load(std::sync::atomic::Ordering::Relaxed))
        | REQUIRED;
    if shared.tls.is_some() {
        caps |= Cap::CLIENT_SSL.bits();
    }
    // tandem speaks the compressed protocol with the client itself
    // (`io::Compressed`), whatever the backend offers; backend connections
    // stay uncompressed (`backend::RELAYABLE` leaves it out). mysqlnd
    // compresses whenever it asked to, offered or not, so not offering it
    // would not keep PHP clients uncompressed anyway.
    caps |= Cap::CLIENT_COMPRESS.bits();
    let ext_caps = shared
        .backend_ext_caps
        .load(std::sync::atomic::Ordering::Relaxed)
        & RELAYABLE_EXT;
    let version = shared.server_version.load_full();
    let greeting = ServerGreeting {
        version: &version,
        connection_id: id,
        scramble,
        capabilities: caps,
        ext_capabilities: ext_caps,
        collation: DEFAULT_COLLATION,
        status: StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits(),
        auth_plugin: shared.default_plugin(),
    };
    if let Err(e) = io.write_packet(0, &greeting.encode()).await {
        return Err((None, SessionError::ClientIo(e)));
    }
    let (mut seq, mut hello) = match read_hello(&mut io, 1).await {
        Ok(x) => x,
        Err(e) => return Err((Some(io), e)),
    };
    if hello.ssl_request {
        let Some(acceptor) = shared.tls.clone() else {
            return Err((
                Some(io),
                SessionError::Protocol(ServerError::bad_handshake()),
            ));
        };
        let Stream::Plain(tcp) = io.stream else {
            return Err((None, SessionError::Protocol(ServerError::bad_handshake())));
        };
        let tls = match acceptor.accept(tcp).await {
            Ok(t) => t,
            Err(e) => return Err((None, SessionError::ClientIo(e))),
        };
        io = PacketIo::new(Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(tls))));
        (seq, hello) = match read_hello(&mut io, 2).await {
            Ok(x) => x,
            Err(e) => return Err((Some(io), e)),
        };
    }
    let mut seq = seq.wrapping_add(1);
    if hello.capabilities & Cap::CLIENT_PROTOCOL_41.bits() == 0 || hello.ssl_request {
        return Err((
            Some(io),
            SessionError::Protocol(ServerError::bad_handshake()),
        ));
    }
    if shared.config.require_tls && !io.stream.is_tls() {
        shared
            .metrics
            .rejected(RejectReason::TlsRequired)
            .increment(1);
        let e = ServerError::new(
            ER_SECURE_TRANSPORT_REQUIRED,
            "HY000",
            "Connections using insecure transport are prohibited: connect with TLS (tandem require_tls = true)",
        );
        return Err((Some(io), SessionError::Refused(e, seq)));
    }
    hello.capabilities &= caps;
    hello.ext_capabilities &= if caps & CLIENT_MYSQL == 0 {
        ext_caps
    } else {
        0
    };
    let using_password = !hello.auth_response.is_empty();
    let plugin = hello.auth_plugin.clone().unwrap_or_default();
    let found = find_user(
        shared,
        &hello.user,
        &plugin,
        &scramble,
        &hello.auth_response,
    )
    .await;
    let Some(user) = found else {
        if shared.users.passthrough() {
            // An account tandem cannot check itself: the primary does.
            return match super::relay_login::relay_login(shared, &mut io, &mut seq, &hello).await {
                Ok(r) => Ok((
                    io,
                    Login {
                        user: r.user,
                        secret: r.secret,
                        hello,
                        seq,
                        scramble,
                        conn: Some(r.conn),
                    },
                )),
                Err(e) => Err((Some(io), e)),
            };
        }
        shared
            .metrics
            .rejected(RejectReason::AuthFailed)
            .increment(1);
        let e = ServerError::access_denied(&hello.user, client_ip, using_password);
        return Err((Some(io), SessionError::Refused(e, seq)));
    };
    let response = std::mem::take(&mut hello.auth_response);
    match verify(
        shared, &mut io, &mut seq, &scramble, &user, &plugin, response,
    )
    .await
    {
        Ok(Some(secret)) => Ok((
            io,
            Login {
                user,
                secret,
                hello,
                seq,
                scramble,
                conn: None,
            },
        )),
        Ok(None) => {
            shared
                .metrics
                .rejected(RejectReason::AuthFailed)
                .increment(1);
            let e = ServerError::access_denied(&user.name, client_ip, using_password);
            Err((Some(io), SessionError::Refused(e, seq)))
        }
        Err(e) => Err((Some(io), e)),
    }
}

/// The user a login (or COM_CHANGE_USER) names. With pass-through, the
/// primary's accounts are read again when the name is unknown, or when the
/// client's mysql_native_password answer does not match the hash read earlier
/// (its password changed since): a login never fails on tandem's stale copy.
pub(super) async fn find_user(
    shared: &MysqlShared,
    name: &str,
    plugin: &str,
    scramble: &[u8; 20],
    response: &[u8],
) -> Option<Arc<UserEntry>> {
    let tls = shared.backend_tls.as_ref();
    let stale = |u: &UserEntry| {
        u.from_backend
            && matches!(plugin, "" | auth::NATIVE)
            && !response.is_empty()
            && auth::native_verify(&u.native_hash, scramble, response).is_none()
    };
    match shared.users.get(name) {
        Some(u) if stale(&u) => shared
            .users
            .refreshed(name, &shared.topology, tls)
            .await
            .or(Some(u)),
        Some(u) => Some(u),
        None => shared.users.refreshed(name, &shared.topology, tls).await,
    }
}

/// Reads the handshake response (or SSLRequest), which must carry sequence
/// id `expected`; refusals are answered with the next sequence id, as mysqld does.
async fn read_hello(io: &mut PacketIo, expected: u8) -> Result<(u8, ClientHello), SessionError> {
    let (seq, payload) = io
        .read_packet_exact(AUTH_PACKET_LIMIT)
        .await
        .map_err(SessionError::from_packet)?;
    let reply = seq.wrapping_add(1);
    if seq != expected {
        return Err(SessionError::Refused(
            ServerError::packets_out_of_order(),
            reply,
        ));
    }
    let hello = ClientHello::parse(&payload)
        .map_err(|_| SessionError::Refused(ServerError::bad_handshake(), reply))?;
    Ok((seq, hello))
}

/// Checks `response` (computed by the client for `plugin` over `scramble`);
/// switches the client to tandem's default plugin when it proposed one
/// tandem does not speak. `Ok(None)` = wrong credentials. `seq` is the next
/// sequence id to send and is advanced through the exchange.
pub async fn verify(
    shared: &MysqlShared,
    io: &mut PacketIo,
    seq: &mut u8,
    scramble: &[u8; 20],
    user: &UserEntry,
    plugin: &str,
    response: Vec<u8>,
) -> Result<Option<Secret>, SessionError> {
    let (plugin, response) = match plugin {
        "" | auth::NATIVE => (auth::NATIVE, response),
        auth::CACHING_SHA2 => (auth::CACHING_SHA2, response),
        _ => {
            // AuthSwitchRequest to the default plugin with the same scramble.
            let target = shared.default_plugin();
            let mut data = scramble.to_vec();
            data.push(0);
            *seq = write(io, *seq, &auth_switch_request(target, &data)).await?;
            let (s, resp) = read(io).await?;
            *seq = s.wrapping_add(1);
            (target, resp)
        }
    };
    if plugin == auth::NATIVE {
        return Ok(verify_native(user, scramble, &response));
    }
    // caching_sha2_password
    if response.is_empty() {
        return Ok(empty_password_ok(user));
    }
    if let Some(pw) = &user.password {
        if !auth::sha2_verify(pw, scramble, &response) {
            return Ok(None);
        }
        *seq = write(io, *seq, &[0x01, auth::SHA2_FAST_AUTH_OK]).await?;
        return Ok(Some(Secret::Plain(pw.clone())));
    }
    // Only the native hash is known: ask for the password itself.
    *seq = write(io, *seq, &[0x01, auth::SHA2_PERFORM_FULL_AUTH]).await?;
    let (s, pkt) = read(io).await?;
    *seq = s.wrapping_add(1);
    let clear = if io.stream.is_tls() {
        pkt
    } else if pkt == [auth::SHA2_REQUEST_PUBLIC_KEY] {
        let keys = shared
            .rsa
            .get()
            .await
            .map_err(|e| SessionError::Internal(format!("rsa key: {e}")))?;
        let mut msg = vec![0x01];
        msg.extend_from_slice(keys.public_pem.as_bytes());
        *seq = write(io, *seq, &msg).await?;
        let (s, enc) = read(io).await?;
        *seq = s.wrapping_add(1);
        match keys.private.decrypt(Oaep::new::<sha1::Sha1>(), &enc) {
            Ok(p) => auth::xor_with_scramble(&p, scramble),
            Err(_) => return Ok(None),
        }
    } else {
        // A clear-text password over an unencrypted connection: refuse it.
        return Ok(None);
    };
    let pw = clear.strip_suffix(&[0]).unwrap_or(&clear);
    let Ok(pw) = std::str::from_utf8(pw) else {
        return Ok(None);
    };
    Ok((auth::native_hash(pw) == user.native_hash).then(|| Secret::Plain(pw.to_string())))
}

fn verify_native(user: &UserEntry, scramble: &[u8; 20], response: &[u8]) -> Option<Secret> {
    if response.is_empty() {
        return empty_password_ok(user);
    }
    let stage1 = auth::native_verify(&user.native_hash, scramble, response)?;
    Some(match &user.password {
        Some(pw) => Secret::Plain(pw.clone()),
        None => Secret::NativeStage1(stage1),
    })
}

fn empty_password_ok(user: &UserEntry) -> Option<Secret> {
    (user.password.as_deref() == Some("")).then(|| Secret::Plain(String::new()))
}

pub(super) async fn write(io: &mut PacketIo, seq: u8, payload: &[u8]) -> Result<u8, SessionError> {
    io.write_packet(seq, payload)
        .await
        .map_err(SessionError::ClientIo)
}

pub(super) async fn read(io: &mut PacketIo) -> Result<(u8, Vec<u8>), SessionError> {
    io.read_packet_exact(AUTH_PACKET_LIMIT)
        .await
        .map_err(SessionError::from_packet)
}

impl SessionError {
    pub(super) fn from_packet(e: PacketError) -> SessionError {
        match e {
            PacketError::Closed => SessionError::ClientClosed,
            PacketError::TooLarge(_) => SessionError::Protocol(ServerError::packet_too_large()),
            PacketError::Io(e) => {
                // A compressed frame that does not decode: like mysqld,
                // tell the client before closing.
                let frame = e.get_ref().and_then(|r| r.downcast_ref::<FrameError>());
                match frame {
                    Some(f) => {
                        SessionError::Refused(ServerError::uncompress_error(&f.to_string()), 1)
                    }
                    None => SessionError::ClientIo(e),
                }
            }
        }
    }
}
