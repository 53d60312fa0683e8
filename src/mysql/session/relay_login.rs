//! Pass-through of a login tandem cannot check itself: an account of the
//! primary whose hash tandem could not read, or whose plugin it does not
//! speak (ed25519, ...).
//!
//! The primary checks the client's answers. tandem opens a connection to it,
//! asks the client (AuthSwitchRequest, MariaDB "Connection" page) to answer
//! the primary's own scramble, sends that answer in its HandshakeResponse,
//! and relays the rest of the exchange (the primary's auth switches and
//! plugin data, the client's answers) until the primary says OK or ERR; an
//! ERR reaches the client as it is. The connection opened this way becomes
//! the session's primary connection.
//!
//! When the exchange shows the password itself (`mysql_clear_password`, or
//! caching_sha2 full authentication from a client on TLS) tandem keeps it,
//! and the session is like any other. Otherwise only that connection is
//! authenticated: the session stays on it (pinned to the primary).

use std::sync::Arc;
use std::time::Duration;

use super::auth::{read, write};
use super::SessionError;
use crate::mysql::backend::{self, BackendConn, ConnectParams, LoginStart, LOGIN_PACKET_LIMIT};
use crate::mysql::io::PacketIo;
use crate::mysql::listener::MysqlShared;
use crate::mysql::pool::PooledConn;
use crate::mysql::protocol::auth::{self, Secret};
use crate::mysql::protocol::err::{self, ServerError};
use crate::mysql::protocol::handshake::{auth_switch_request, ClientHello};
use crate::mysql::protocol::ok::OkInfo;
use crate::mysql::users::UserEntry;

/// A login the primary accepted.
pub(super) struct Relayed {
    pub user: Arc<UserEntry>,
    pub secret: Secret,
    /// Authenticated as the user, in a place of this worker's pool.
    pub conn: PooledConn,
}

/// Plugin rounds relayed at most before tandem gives up.
const MAX_ROUNDS: usize = 8;

/// Relays the login of `hello` to the primary. `seq` is the next sequence
/// id towards the client, advanced through the exchange.
pub(super) async fn relay_login(
    shared: &MysqlShared,
    client: &mut PacketIo,
    seq: &mut u8,
    hello: &ClientHello,
) -> Result<Relayed, SessionError> {
    let refuse = |e: ServerError, seq: u8| SessionError::Refused(e, seq);
    let Some(primary) = shared.topology.load().primary().cloned() else {
        let e = ServerError::new(
            err::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
            "HY000",
            "tandem: no primary backend is known",
        );
        return Err(refuse(e, *seq));
    };
    let key = super::pooling::pool_key(
        &hello.user,
        hello.capabilities,
        hello.ext_capabilities,
        hello.collation,
    );
    let pool = shared.pool().clone();
    let name: Arc<str> = Arc::from(primary.name.as_str());
    let lease = match pool.reserve(&name, &key).await {
        Ok(l) => l,
        Err(e) => {
            let e = ServerError::new(
                err::ER_CON_COUNT_ERROR,
                "08004",
                format!("Too many connections: tandem: {e} (mysql.pool.max_backend_connections)"),
            );
            return Err(refuse(e, *seq));
        }
    };
    let timeout = Duration::from_millis(shared.config.backend_connect_timeout_ms);
    let params = ConnectParams {
        backend_name: &primary.name,
        address: &primary.address,
        user: &hello.user,
        secret: &Secret::RelayedOnly,
        database: None,
        capabilities: key.caps,
        ext_capabilities: key.ext_caps,
        collation: key.collation,
        attributes: None,
        timeout,
        tls: shared.backend_tls.as_ref(),
        max_packet: shared.config.max_allowed_packet,
    };
    let unreachable = |e: &dyn std::fmt::Display| {
        ServerError::backend_unreachable(&primary.name, &primary.address, &e.to_string())
    };
    let start = match tokio::time::timeout(timeout, backend::open_for_login(&params)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(refuse(unreachable(&e), *seq)),
        Err(_) => return Err(refuse(unreachable(&"connect timed out"), *seq)),
    };
    // The exchange itself waits for the client too: bounded by the
    // handshake timeout around the whole connection phase.
    let (conn, password) = exchange(client, seq, start, &params).await?;
    let mut conn = pool.adopt(conn, &key, lease);
    conn.lent = 1;
    let secret = match &password {
        Some(pw) => Secret::Plain(pw.clone()),
        None => Secret::RelayedOnly,
    };
    let user = UserEntry {
        name: hello.user.clone(),
        native_hash: auth::native_hash(password.as_deref().unwrap_or("")),
        password,
        max_connections: None,
        consistency: None,
        from_backend: true,
    };
    tracing::debug!(user = %hello.user, reusable = !matches!(secret, Secret::RelayedOnly), "pass-through: login relayed to the primary");
    Ok(Relayed {
        user: Arc::new(user),
        secret,
        conn,
    })
}

/// Runs the relayed exchange on `start`; returns the authenticated
/// connection and the password, when the exchange showed it.
async fn exchange(
    client: &mut PacketIo,
    seq: &mut u8,
    start: LoginStart,
    params: &ConnectParams<'_>,
) -> Result<(BackendConn, Option<String>), SessionError> {
    let backend_error = |e: &dyn std::fmt::Display, seq: u8| {
        SessionError::Refused(
            ServerError::backend_unreachable(params.backend_name, params.address, &e.to_string()),
            seq,
        )
    };
    let client_tls = client.stream.is_tls();
    let mut plugin = start.plugin().to_string();
    let scramble = start.scramble().to_vec();
    let mut password = None;
    // The client answers the primary's scramble, for the primary's plugin.
    let mut data = scramble.clone();
    data.push(0);
    *seq = write(client, *seq, &auth_switch_request(&plugin, &data)).await?;
    let (s, answer) = read(client).await?;
    *seq = s.wrapping_add(1);
    if plugin == auth::CLEAR {
        password = clear_text(&answer);
    }
    let hello = start.hello(params, &plugin, answer);
    let LoginStart {
        mut io,
        greeting,
        capabilities,
        seq: hello_seq,
        tls: backend_tls,
        ..
    } = start;
    io.write_packet(hello_seq, &hello.encode())
        .await
        .map_err(|e| backend_error(&e, *seq))?;
    for _ in 0..MAX_ROUNDS {
        let (bs, pkt) = io
            .read_packet_exact(LOGIN_PACKET_LIMIT)
            .await
            .map_err(|e| backend_error(&e, *seq))?;
        let next = bs.wrapping_add(1);
        match pkt.first() {
            Some(0x00) => {
                let status = OkInfo::parse(&pkt).map(|o| o.status).unwrap_or(0);
                let conn = BackendConn {
                    io,
                    thread_id: greeting.connection_id,
                    capabilities,
                    version: greeting.version,
                    status,
                    awaiting_response: false,
                };
                return Ok((conn, password));
            }
            Some(0xFF) => {
                let e = ServerError::parse(&pkt).unwrap_or_else(ServerError::malformed_packet);
                return Err(SessionError::Refused(e, *seq));
            }
            Some(0xFE) => {
                // The account's own plugin: the client answers its data.
                let body = &pkt[1..];
                let nul = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                plugin = String::from_utf8_lossy(&body[..nul]).into_owned();
                *seq = write(client, *seq, &pkt).await?;
                let (s, answer) = read(client).await?;
                *seq = s.wrapping_add(1);
                if plugin == auth::CLEAR {
                    password = clear_text(&answer);
                }
                io.write_packet(next, &answer)
                    .await
                    .map_err(|e| backend_error(&e, *seq))?;
            }
            Some(0x01) if pkt.get(1) == Some(&auth::SHA2_FAST_AUTH_OK) => {
                *seq = write(client, *seq, &pkt).await?;
            }
            Some(0x01)
                if pkt.get(1) == Some(&auth::SHA2_PERFORM_FULL_AUTH)
                    && client_tls
                    && !backend_tls =>
            {
                // The client sends its password in clear over TLS; the
                // backend link is plain, so tandem does the RSA exchange.
                *seq = write(client, *seq, &pkt).await?;
                let (s, answer) = read(client).await?;
                *seq = s.wrapping_add(1);
                let Some(pw) = clear_text(&answer) else {
                    return Err(SessionError::Protocol(ServerError::bad_handshake()));
                };
                let secret = Secret::Plain(pw.clone());
                backend::sha2_full_auth(&mut io, next, &secret, &scramble, false)
                    .await
                    .map_err(|e| backend_error(&e, *seq))?;
                password = Some(pw);
            }
            Some(_) => {
                // Plugin data (caching_sha2 full auth, a public key...):
                // the client answers it. Over TLS on both sides, the answer
                // to a full-auth request is the password itself.
                let full_auth = pkt[..] == [0x01, auth::SHA2_PERFORM_FULL_AUTH];
                *seq = write(client, *seq, &pkt).await?;
                let (s, answer) = read(client).await?;
                *seq = s.wrapping_add(1);
                if full_auth && client_tls && backend_tls {
                    password = clear_text(&answer);
                }
                io.write_packet(next, &answer)
                    .await
                    .map_err(|e| backend_error(&e, *seq))?;
            }
            None => return Err(backend_error(&"empty packet during login", *seq)),
        }
    }
    Err(backend_error(&"too many authentication rounds", *seq))
}

/// A clear-text password packet (`pw NUL`), as UTF-8.
fn clear_text(packet: &[u8]) -> Option<String> {
    let pw = packet.strip_suffix(&[0]).unwrap_or(packet);
    String::from_utf8(pw.to_vec()).ok()
}
