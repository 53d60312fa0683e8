//! One client session: the connection phase (`auth.rs`, `relay_login.rs`),
//! its start (`login.rs`), then the command loop.
//!
//! A session owns its client socket and its backend connections: the
//! primary's, opened at login as the same user, and the replicas' it reads
//! from, opened on first use (`backends.rs`). Each COM_QUERY is classified and
//! routed (`route.rs`); session state is replayed where needed (`state.rs`).
//! Commands are relayed as raw packets; see `relay.rs` for the hot path.

mod auth;
mod backends;
mod consistency;
mod control;
mod login;
mod pooling;
mod relay;
mod relay_login;
mod route;
pub mod rsa_keys;
mod state;
mod stmts;

pub use self::login::run;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::WaitForCancellationFutureOwned;

use self::backends::Slot;
use self::state::StateLog;
use self::stmts::Stmts;
use super::io::PacketIo;
use super::listener::{MysqlShared, SessionHandle};
use super::pool::PoolKey;
use super::protocol::auth::Secret;
use super::protocol::command::{
    self, COM_CHANGE_USER, COM_INIT_DB, COM_PROCESS_KILL, COM_QUERY, COM_QUIT,
    COM_RESET_CONNECTION, COM_STMT_CLOSE, COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_PREPARE,
    COM_STMT_RESET, COM_STMT_SEND_LONG_DATA,
};
use super::protocol::err::{self, ServerError};
use super::protocol::MAX_PAYLOAD;
use super::users::UserEntry;

/// Bytes of a command's payload buffered before it is dispatched even when
/// the packet is 16 MiB or more and streams: every handler's look at a
/// command (command byte, statement id, flags) fits in them.
const COMMAND_HEAD: usize = 64;

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
    /// This statement fails with this ERR; the session goes on.
    #[error("statement failed: {0}")]
    StatementFailed(ServerError),
    /// This statement was consumed and already answered with an ERR (its
    /// backend connection broke before any answer); the session goes on.
    #[error("statement answered with an error")]
    Answered,
    /// A replica connection broke before any of its response reached the
    /// client: the statement can run elsewhere.
    #[error("replica lost before answering")]
    Retry,
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
    /// MariaDB extended capabilities negotiated with the client.
    ext_caps: u32,
    collation: u8,
    database: Option<String>,
    attributes: Option<Vec<u8>>,
    scramble: [u8; 20],
    /// The backends this session uses and the pooled connections it holds
    /// there; slot 0 is the primary's.
    slots: Vec<Slot>,
    /// Which pooled connections fit this session (user, capabilities).
    key: Arc<PoolKey>,
    /// This session's state-log identity for pooled connections; renewed
    /// when the state is reset (see `pooling.rs`).
    state_owner: u64,
    /// A connection kept for the next statement (slot, until): the last one
    /// left diagnostics the client may ask for.
    hold: Option<(usize, Instant)>,
    /// Read-your-writes mode (see `consistency.rs`).
    consistency: crate::config::Consistency,
    /// The session's writes, for read-your-writes.
    writes: consistency::Writes,
    /// SET/USE statements to replay on the other backends.
    state: StateLog,
    /// Why the session is kept on the primary, if it is.
    pinned: Option<&'static str>,
    /// The slot running a read-only transaction.
    ro_txn_slot: Option<usize>,
    /// The slot that ran the previous statement (for SHOW WARNINGS...).
    last_slot: Option<usize>,
    /// The slot `KILL` currently points at.
    current_slot: Option<usize>,
    /// Prepared statements, by the ids the client sees.
    stmts: Stmts,
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

// === impl Session ===

impl Session {
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
            self.handle
                .kill_query
                .store(false, std::sync::atomic::Ordering::Relaxed);
            // A held connection serves this one statement, then is released.
            self.hold = None;
            self.shared.metrics.command(cmd).increment(1);
            self.shared
                .metrics
                .client_bytes_received
                .increment((4 + len.min(MAX_PAYLOAD)) as u64);
            let result = match cmd {
                COM_QUIT => return Ok(()),
                COM_CHANGE_USER => self.change_user(len).await,
                COM_PROCESS_KILL => self.com_process_kill(len).await,
                COM_QUERY if len < MAX_PAYLOAD && self.try_kill_statement(len).await? => Ok(()),
                COM_QUERY if len < MAX_PAYLOAD && self.try_set_consistency(len).await? => Ok(()),
                COM_QUERY => self.query(len).await,
                COM_RESET_CONNECTION => self.reset_connection(len).await,
                COM_STMT_PREPARE => self.stmt_prepare(len).await,
                COM_STMT_EXECUTE => self.stmt_execute(len).await,
                COM_STMT_SEND_LONG_DATA => self.stmt_send_long_data(len).await,
                COM_STMT_CLOSE => self.stmt_close(len).await,
                COM_STMT_RESET => self.stmt_reset(len).await,
                COM_STMT_FETCH => self.stmt_fetch(len).await,
                COM_INIT_DB => match self.state_slot().await {
                    Ok(slot) => self
                        .relay(slot, cmd, command::Expect::Single, len)
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                },
                _ => match command::expect(cmd) {
                    Some(expect) => match self.primary_slot().await {
                        Ok(slot) => self.relay(slot, cmd, expect, len).await.map(|_| ()),
                        Err(e) => Err(e),
                    },
                    None => Err(SessionError::StatementFailed(ServerError::unknown_command())),
                },
            };
            match result {
                Ok(()) => {}
                // By convention a handler fails a statement before consuming
                // it: drop the command, answer with the ERR, go on.
                Err(SessionError::StatementFailed(e)) => {
                    self.discard_command(len).await?;
                    self.reply_error(1, &e).await?;
                }
                Err(SessionError::Answered) => {}
                Err(e) => return Err(e),
            }
            self.release_conns();
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
                // A 16 MiB+ command streams, but its head (the command byte,
                // a statement id...) must be here before it is dispatched.
                let need = if len >= MAX_PAYLOAD {
                    4 + COMMAND_HEAD
                } else {
                    4 + len
                };
                if self.client.rbuf.len() >= need {
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
            let hold_until = self.hold.map(|(_, until)| until);
            tokio::select! {
                biased;
                r = self.client.fill() => r.map_err(SessionError::from_packet)?,
                _ = tokio::time::sleep_until(hold_until.unwrap_or(self.last_active).into()), if hold_until.is_some() => {
                    // The client did not ask for the diagnostics in time.
                    self.hold = None;
                    self.release_conns();
                }
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

    /// COM_QUERY: route, relay, then update the session. A replica that
    /// breaks before answering is left out and the statement runs elsewhere.
    async fn query(&mut self, len: usize) -> Result<(), SessionError> {
        for _ in 0..4 {
            let (slot, after) = self.route_query(len).await?;
            let in_flight = self.slots[slot].backend.health.start_statement();
            let result = self
                .relay(slot, COM_QUERY, command::Expect::Results, len)
                .await;
            drop(in_flight);
            match result {
                Ok(outcome) => {
                    let wrote = after.writes;
                    self.after_statement(slot, &outcome, after);
                    self.note_write(slot, wrote, outcome.error).await;
                    return Ok(());
                }
                Err(SessionError::Retry) => self.drop_lost_replica(slot),
                Err(e) => return Err(e),
            }
        }
        Err(SessionError::Internal(
            "no backend could run the statement".into(),
        ))
    }

    /// A replica connection broke: put the backend aside and forget the slot.
    pub(super) fn drop_lost_replica(&mut self, slot: usize) {
        let backend = self.slots[slot].backend.clone();
        let retry = Duration::from_millis(self.shared.config.routing.backend_retry_ms);
        backend.health.mark_down(Instant::now(), retry);
        self.forget_slot(slot);
        self.current_slot = None;
        tracing::warn!(backend = %backend.name, "replica lost before answering; retrying elsewhere");
    }

    /// COM_RESET_CONNECTION: the primary's answer goes to the client; replica
    /// connections are closed (they reconnect clean on next use), and the
    /// replay log and pins go, as the server's session state does.
    async fn reset_connection(&mut self, len: usize) -> Result<(), SessionError> {
        let slot = self.primary_slot().await?;
        let outcome = self
            .relay(slot, COM_RESET_CONNECTION, command::Expect::Single, len)
            .await?;
        if !outcome.error {
            // Replica connections keep the old state: the pool resets them
            // before anyone uses them again.
            for mut s in self.slots.drain(1..) {
                if let Some(mut c) = s.conn.take() {
                    c.fingerprint = crate::mysql::pool::DIRTY;
                    c.owner = 0;
                    self.shared.pool().release(c);
                }
            }
            // The server dropped the connection's prepared statements and
            // state; the database stays selected.
            let conn = self.slots[slot].conn();
            conn.stmts.clear();
            self.forget_client_stmts();
            self.state.clear();
            self.state_owner = pooling::new_owner();
            if let Some(db) = self.database.clone() {
                self.state.record_database(&db);
            }
            self.slots[slot].applied = self.state.version();
            self.hold = None;
            // A relayed login has only this connection: it stays pinned.
            self.pinned =
                matches!(self.secret, Secret::RelayedOnly).then_some(route::PIN_RELAYED_LOGIN);
            self.ro_txn_slot = None;
            self.last_slot = None;
            self.current_slot = None;
        }
        Ok(())
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
        // Free the session's id and user slot before the client's socket
        // closes, so a client that sees the close can reconnect at once. The
        // slot is the current user's: COM_CHANGE_USER moved it.
        self.shared.sessions.remove(&self.handle.id);
        self.shared.release_user_slot(&self.user.name);
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
        // Connections go back to the pool, reset first if this session
        // left a transaction, locks or temporary tables on them.
        self.forget_client_stmts();
        self.return_all().await;
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
