//! One client session: the connection phase, then the command loop.
//!
//! A session owns its client socket and (in this version) one backend
//! connection to the primary, opened at login as the same user. Commands are
//! relayed as raw packets; see `relay.rs` for the hot path.

mod auth;
mod control;
mod relay;
pub mod rsa_keys;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::backend::{self, BackendConn, BackendError, ConnectParams};
use super::io::{PacketIo, Stream};
use super::listener::{MysqlShared, SessionHandle, UserEntry};
use super::protocol::auth::Secret;
use super::protocol::command::{self, COM_CHANGE_USER, COM_PROCESS_KILL, COM_QUERY, COM_QUIT};
use super::protocol::err::{self, ServerError};
use super::protocol::ok::OkInfo;
use super::protocol::MAX_PAYLOAD;
use crate::metrics::RejectReason;

/// Why a session ended. Variants that carry an ERR have it sent to the
/// client before the socket closes.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("client closed the connection")]
    ClientClosed,
    #[error("client i/o: {0}")]
    ClientIo(std::io::Error),
    /// Unreadable input during the connection phase.
    #[error("protocol: {0}")]
    Protocol(ServerError),
    /// Refused with this ERR at this sequence id.
    #[error("refused: {0}")]
    Refused(ServerError, u8),
    #[error("backend '{0}' lost: {1}")]
    BackendLost(String, String),
    #[error("handshake timed out")]
    HandshakeTimeout,
    #[error("idle timeout")]
    IdleTimeout,
    #[error("read timeout inside a packet")]
    ReadTimeout,
    #[error("shutting down")]
    Shutdown,
    #[error("killed")]
    Killed,
    #[error("internal: {0}")]
    Internal(String),
}

/// An authenticated client session.
pub struct Session {
    shared: Arc<MysqlShared>,
    handle: Arc<SessionHandle>,
    client: PacketIo,
    client_ip: String,
    user: Arc<UserEntry>,
    secret: Secret,
    /// Capabilities negotiated with the client (and so with the backend).
    caps: u32,
    collation: u8,
    max_packet: u32,
    database: Option<String>,
    attributes: Option<Vec<u8>>,
    scramble: [u8; 20],
    backend: BackendConn,
    backend_name: String,
    backend_addr: String,
    /// Status flags of the last response (IN_TRANS, AUTOCOMMIT...).
    status: u16,
    /// When the last command arrived; the idle timeout counts from here.
    last_active: Instant,
    /// Fires at the idle deadline. Armed once and re-armed only when it
    /// fires early, so a busy session does not touch the timer wheel per
    /// command.
    idle_timer: Pin<Box<tokio::time::Sleep>>,
    /// Resolves on `KILL CONNECTION` or shutdown; registered once.
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
}

/// Runs one client connection to its end.
pub async fn run(tcp: TcpStream, peer: SocketAddr, shared: &Arc<MysqlShared>) {
    let id = shared.next_connection_id();
    let client_ip = peer.ip().to_string();
    let io = PacketIo::new(Stream::Plain(tcp));
    let hs_timeout = Duration::from_millis(shared.config.handshake_timeout_ms);
    let login = tokio::time::timeout(hs_timeout, auth::handshake(shared, io, id, &client_ip)).await;
    let (mut io, login) = match login {
        Err(_) => {
            shared
                .metrics
                .rejected(RejectReason::HandshakeTimeout)
                .increment(1);
            return;
        }
        Ok(Err((io, e))) => {
            if matches!(e, SessionError::Protocol(_)) {
                shared
                    .metrics
                    .rejected(RejectReason::ProtocolError)
                    .increment(1);
            }
            if let Some(mut io) = io {
                send_final_error(&mut io, &e).await;
            }
            tracing::debug!(id, client = %peer, error = %e, "login failed");
            return;
        }
        Ok(Ok(x)) => x,
    };
    if !shared.acquire_user_slot(&login.user) {
        shared
            .metrics
            .rejected(RejectReason::UserMaxConnections)
            .increment(1);
        let e = ServerError::new(
            err::ER_TOO_MANY_USER_CONNECTIONS,
            "42000",
            format!(
                "User {} already has more than 'max_user_connections' active connections",
                login.user.name
            ),
        );
        let _ = io.write_packet(login.seq, &e.encode()).await;
        return;
    }
    let user_name = login.user.name.clone();
    let handle = Arc::new(SessionHandle {
        id,
        user: user_name.clone(),
        client_addr: peer,
        backend_thread: AtomicU32::new(0),
        backend_name: Mutex::new(String::new()),
        kill: shared.shutdown.child_token(),
    });
    shared.sessions.insert(id, handle.clone());
    if let Some(mut session) = Session::start(shared, handle, io, login, client_ip).await {
        let end = session.command_loop().await;
        session.finish(end).await;
    }
    shared.sessions.remove(&id);
    shared.release_user_slot(&user_name);
}

/// Sends the ERR a session error carries, if any, as the last packet.
async fn send_final_error(io: &mut PacketIo, e: &SessionError) {
    let (err, seq) = match e {
        SessionError::Refused(err, seq) => (err.clone(), *seq),
        SessionError::Protocol(err) => (err.clone(), 2),
        _ => return,
    };
    let _ = io.write_packet(seq, &err.encode()).await;
}

// === impl Session ===

impl Session {
    /// Opens the backend connection for a logged-in client and sends the
    /// final OK (or the backend's refusal).
    async fn start(
        shared: &Arc<MysqlShared>,
        handle: Arc<SessionHandle>,
        mut io: PacketIo,
        login: auth::Login,
        client_ip: String,
    ) -> Option<Session> {
        let hello = login.hello;
        let caps = hello.capabilities;
        let conn = connect_primary(
            shared,
            &login.user.name,
            &login.secret,
            hello.database.as_deref(),
            caps,
            hello.collation,
            hello.attributes.as_deref(),
            hello.max_packet,
        )
        .await;
        let (backend, backend_name, backend_addr) = match conn {
            Ok(x) => x,
            Err(e) => {
                shared
                    .metrics
                    .rejected(RejectReason::BackendUnavailable)
                    .increment(1);
                let _ = io.write_packet(login.seq, &e.encode()).await;
                return None;
            }
        };
        handle
            .backend_thread
            .store(backend.thread_id, Ordering::Relaxed);
        *handle
            .backend_name
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = backend_name.clone();
        let ok = OkInfo {
            status: backend.status,
            ..Default::default()
        };
        if io.write_packet(login.seq, &ok.encode()).await.is_err() {
            return None;
        }
        let idle = Duration::from_millis(shared.config.client_idle_timeout_ms);
        let now = Instant::now();
        Some(Session {
            last_active: now,
            idle_timer: Box::pin(tokio::time::sleep_until((now + idle).into())),
            killed: Box::pin(handle.kill.clone().cancelled_owned()),
            shared: shared.clone(),
            status: backend.status,
            handle,
            client: io,
            client_ip,
            user: login.user,
            secret: login.secret,
            caps,
            collation: hello.collation,
            max_packet: hello.max_packet,
            database: hello.database,
            attributes: hello.attributes,
            scramble: login.scramble,
            backend,
            backend_name,
            backend_addr,
        })
    }

    async fn command_loop(&mut self) -> Result<(), SessionError> {
        let max = self.shared.config.max_allowed_packet as usize;
        loop {
            let (len, seq) = self.next_command().await?;
            let started = Instant::now();
            self.last_active = started;
            if seq != 0 {
                return Err(SessionError::Refused(
                    ServerError::packets_out_of_order(),
                    seq.wrapping_add(1),
                ));
            }
            if len == 0 {
                self.client.rbuf.advance_by(4);
                self.reply_error(1, &ServerError::malformed_packet())
                    .await?;
                continue;
            }
            if len < MAX_PAYLOAD && len > max {
                return Err(SessionError::Refused(ServerError::packet_too_large(), 1));
            }
            let cmd = self.client.rbuf[4];
            self.shared.metrics.command(cmd).increment(1);
            self.shared
                .metrics
                .client_bytes_received
                .increment((4 + len.min(MAX_PAYLOAD)) as u64);
            match cmd {
                COM_QUIT => return Ok(()),
                COM_CHANGE_USER => self.change_user(len).await?,
                COM_PROCESS_KILL => self.com_process_kill(len).await?,
                COM_QUERY if len < MAX_PAYLOAD && self.try_kill_statement(len).await? => {}
                _ => match command::expect(cmd) {
                    Some(expect) => self.relay(cmd, expect, len).await?,
                    None => {
                        self.discard_command(len).await?;
                        self.reply_error(1, &ServerError::unknown_command()).await?;
                    }
                },
            }
            self.shared
                .metrics
                .query_duration
                .record(started.elapsed().as_secs_f64());
        }
    }

    /// Waits until a whole command packet is buffered (or, for a 16 MiB
    /// multi-packet command, its first header), bounded by the idle timeout
    /// between commands and by a read timeout inside a packet.
    async fn next_command(&mut self) -> Result<(usize, u8), SessionError> {
        let max = self.shared.config.max_allowed_packet as usize;
        loop {
            if let Some((len, seq)) = self.client.peek_header() {
                if len >= MAX_PAYLOAD || self.client.rbuf.len() >= 4 + len {
                    return Ok((len, seq));
                }
                if len > max {
                    return Err(SessionError::Refused(ServerError::packet_too_large(), 1));
                }
            }
            if !self.client.rbuf.is_empty() {
                // Inside a packet: the rest must come within net_read_timeout.
                let timeout = Duration::from_millis(self.shared.config.net_read_timeout_ms);
                relay::fill_within(&mut self.client, timeout).await?;
                continue;
            }
            tokio::select! {
                biased;
                r = self.client.fill() => r.map_err(SessionError::from_packet)?,
                _ = &mut self.idle_timer => {
                    let idle = Duration::from_millis(self.shared.config.client_idle_timeout_ms);
                    let deadline = self.last_active + idle;
                    if Instant::now() >= deadline {
                        return Err(SessionError::IdleTimeout);
                    }
                    self.idle_timer.as_mut().reset(deadline.into());
                }
                _ = &mut self.killed => {
                    return Err(if self.shared.shutdown.is_cancelled() {
                        SessionError::Shutdown
                    } else {
                        SessionError::Killed
                    });
                }
            }
        }
    }

    /// Sends an ERR as the whole response to the current command.
    async fn reply_error(&mut self, seq: u8, e: &ServerError) -> Result<(), SessionError> {
        self.client
            .write_packet(seq, &e.encode())
            .await
            .map_err(SessionError::ClientIo)?;
        Ok(())
    }

    /// Closes the session, telling the client why when the protocol allows.
    async fn finish(mut self, end: Result<(), SessionError>) {
        let unsolicited = match &end {
            Ok(()) | Err(SessionError::ClientClosed) | Err(SessionError::ClientIo(_)) => None,
            Err(SessionError::Refused(e, seq)) => Some((e.clone(), *seq)),
            Err(SessionError::IdleTimeout) => Some((
                ServerError::new(
                    err::ER_CLIENT_INTERACTION_TIMEOUT,
                    "HY000",
                    "The client was disconnected by the server because of inactivity.",
                ),
                0,
            )),
            Err(SessionError::ReadTimeout) => Some((
                ServerError::new(
                    err::ER_NET_READ_INTERRUPTED,
                    "08S01",
                    "Got timeout reading communication packets",
                ),
                1,
            )),
            Err(SessionError::Shutdown) => Some((
                ServerError::new(
                    err::ER_SERVER_SHUTDOWN,
                    "08S01",
                    "Server shutdown in progress",
                ),
                0,
            )),
            Err(SessionError::Killed) => Some((
                ServerError::new(err::ER_CONNECTION_KILLED, "70100", "Connection was killed"),
                0,
            )),
            Err(_) => None,
        };
        if let Some((e, seq)) = unsolicited {
            let _ = self.client.write_packet(seq, &e.encode()).await;
        }
        if let Err(e) = &end {
            tracing::debug!(id = self.handle.id, error = %e, "session ended");
        }
        // Tell the backend politely so it does not log an aborted connection.
        let _ = self.backend.io.write_packet(0, &[COM_QUIT]).await;
    }
}

/// Opens a backend connection to the current primary for a session.
#[allow(clippy::too_many_arguments)]
async fn connect_primary(
    shared: &MysqlShared,
    user: &str,
    secret: &Secret,
    database: Option<&str>,
    caps: u32,
    collation: u8,
    attributes: Option<&[u8]>,
    max_packet: u32,
) -> Result<(BackendConn, String, String), ServerError> {
    let snap = shared.topology.load();
    let Some(primary) = snap.primary() else {
        return Err(ServerError::new(
            err::CR_CONN_HOST_ERROR,
            "HY000",
            "tandem: no primary backend is known",
        ));
    };
    let params = ConnectParams {
        backend_name: &primary.name,
        address: &primary.address,
        user,
        secret,
        database,
        capabilities: caps,
        collation,
        attributes,
        timeout: Duration::from_millis(shared.config.backend_connect_timeout_ms),
        tls: shared.backend_tls.as_ref(),
        max_packet: max_packet.max(1024),
    };
    match backend::connect(&params).await {
        Ok(conn) => {
            shared
                .metrics
                .backend_connection(&primary.name)
                .increment(1);
            shared.note_backend_version(&conn.version);
            Ok((conn, primary.name.clone(), primary.address.clone()))
        }
        Err(e) => {
            if !matches!(e, BackendError::Server(_)) {
                shared
                    .metrics
                    .backend_connect_error(&primary.name)
                    .increment(1);
                tracing::warn!(backend = %primary.name, error = %e, "backend connect failed");
            }
            Err(e.to_client_error(&primary.name, &primary.address))
        }
    }
}

/// `BytesMut::advance` under a name that reads well at call sites.
trait AdvanceBy {
    fn advance_by(&mut self, n: usize);
}

impl AdvanceBy for bytes::BytesMut {
    fn advance_by(&mut self, n: usize) {
        bytes::Buf::advance(self, n);
    }
}
