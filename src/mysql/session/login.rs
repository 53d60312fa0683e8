//! A session's start: the connection phase (`auth.rs`), the registry and
//! per-user limits, then the first backend connection with the client's
//! database selected (the primary's, or while it cannot be reached a
//! replica's), and the final OK.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::backends::Slot;
use super::state::StateLog;
use super::stmts::Stmts;
use super::{auth, consistency, pooling, route, Session, SessionError};
use crate::metrics::RejectReason;
use crate::mysql::io::{PacketIo, Stream};
use crate::mysql::listener::{MysqlShared, SessionHandle};
use crate::mysql::protocol::auth::Secret;
use crate::mysql::protocol::err::{self, ServerError};
use crate::mysql::protocol::ok::OkInfo;
use crate::mysql::protocol::{CapabilityFlags, StatusFlags};

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
        user: Mutex::new(user_name.clone()),
        client_addr: peer,
        backend_thread: AtomicU32::new(0),
        backend_name: Mutex::new(String::new()),
        kill: shared.shutdown.child_token(),
        kill_query: Default::default(),
        query_killed: Default::default(),
    });
    shared.sessions.insert(id, handle.clone());
    match Session::start(shared, handle, io, login, client_ip).await {
        Some(mut session) => {
            let end = session.command_loop().await;
            session.finish(end).await;
        }
        None => {
            shared.sessions.remove(&id);
            shared.release_user_slot(&user_name);
        }
    }
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
    /// Brings a logged-in client's session up: a primary connection from
    /// the pool (no backend handshake when one is idle) with the requested
    /// database selected, then the final OK (or the backend's refusal).
    async fn start(
        shared: &Arc<MysqlShared>,
        handle: Arc<SessionHandle>,
        io: PacketIo,
        login: auth::Login,
        client_ip: String,
    ) -> Option<Session> {
        let hello = login.hello;
        let relayed = login.conn;
        let Some(primary) = shared.topology.load().primary().cloned() else {
            let mut io = io;
            let e = ServerError::new(
                err::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
                "HY000",
                "tandem: no primary backend is known",
            );
            let _ = io.write_packet(login.seq, &e.encode()).await;
            return None;
        };
        let idle = Duration::from_millis(shared.config.client_idle_timeout_ms);
        let now = Instant::now();
        let mut session = Session {
            last_active: now,
            idle_timer: Box::pin(tokio::time::sleep_until((now + idle).into())),
            killed: Box::pin(handle.kill.clone().cancelled_owned()),
            shared: shared.clone(),
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits(),
            handle,
            client: io,
            client_ip,
            key: pooling::pool_key(
                &login.user.name,
                hello.capabilities,
                hello.ext_capabilities,
                hello.collation,
            ),
            state_owner: pooling::new_owner(),
            hold: None,
            consistency: login
                .user
                .consistency
                .unwrap_or(shared.config.routing.consistency),
            writes: consistency::Writes::default(),
            user: login.user,
            secret: login.secret,
            caps: hello.capabilities,
            ext_caps: hello.ext_capabilities,
            collation: hello.collation,
            database: None,
            attributes: hello.attributes,
            scramble: login.scramble,
            slots: vec![Slot::new(primary.clone())],
            state: StateLog::default(),
            pinned: None,
            ro_txn_slot: None,
            last_slot: None,
            current_slot: None,
            stmts: Stmts::default(),
        };
        if let Some(mut conn) = relayed.filter(|c| **c.backend() == *primary.name) {
            // A relayed login's connection is the session's first one.
            conn.owner = session.state_owner;
            session.slots[0].conn = Some(conn);
        }
        if matches!(session.secret, Secret::RelayedOnly) {
            session.pinned = Some(route::PIN_RELAYED_LOGIN);
        }
        if let Err(e) = session.enter(hello.database).await {
            shared
                .metrics
                .rejected(RejectReason::BackendUnavailable)
                .increment(1);
            let _ = session.client.write_packet(login.seq, &e.encode()).await;
            return None;
        }
        let ok = OkInfo {
            status: session.status,
            ..Default::default()
        };
        if session
            .client
            .write_packet(login.seq, &ok.encode())
            .await
            .is_err()
        {
            return None;
        }
        if session.caps & CapabilityFlags::CLIENT_COMPRESS.bits() != 0 {
            // From the packet after this OK on, for the connection's life
            // (COM_CHANGE_USER keeps the capabilities).
            session.client = session.client.into_compressed();
        }
        session.release_conns();
        Some(session)
    }

    /// Takes a connection for a session that starts (login or
    /// COM_CHANGE_USER) and selects `database` on it: a wrong or forbidden
    /// database fails here, with the server's error, as it would directly.
    /// The primary's connection, or while the primary cannot be reached a
    /// replica's: logins and reads never depend on the primary.
    pub(super) async fn enter(&mut self, database: Option<String>) -> Result<(), ServerError> {
        if let Some(db) = &database {
            self.state.record_database(db);
        }
        self.database = database;
        match self.state_slot().await {
            Ok(i) => {
                self.note_current_slot(i);
                Ok(())
            }
            // The server refused (database, privileges), or no backend
            // could be reached: the primary, then every replica, was tried.
            Err(SessionError::StatementFailed(e)) => Err(e),
            Err(e) => Err(ServerError::new(
                err::ER_UNKNOWN_ERROR,
                "HY000",
                format!("tandem: {e}"),
            )),
        }
    }
}
