//! How a session borrows pooled backend connections (multiplexing).
//!
//! A session holds no backend connection between statements unless it must.
//! It keeps the connections it has when:
//!
//! | state                                         | kept                          |
//! |-----------------------------------------------|-------------------------------|
//! | open transaction (IN_TRANS, or autocommit=0)  | the primary's                 |
//! | read-only transaction on a replica            | that replica's                |
//! | pinned: temporary table, GET_LOCK, LOCK TABLES, user variable set by a query, multi-statement, SQL `PREPARE`, a statement tandem does not understand | all, until the session ends or COM_RESET_CONNECTION |
//! | an open cursor, or SEND_LONG_DATA awaiting its execute | all, until the statement is executed, reset or closed |
//! | the last statement left an AUTO_INCREMENT id, warnings or SQL_CALC_FOUND_ROWS | that connection, for the next statement or `hold_for_diagnostics_ms` |
//!
//! Session state that tandem replays (SET, USE, SET NAMES, user variables
//! set by SET) does not keep a connection: the next connection is brought to
//! the session's state before the statement runs (`backends.rs`), and a
//! connection last used by another session is reset first unless its state
//! is exactly the same (`pool/conn.rs`). Prepared statements are prepared
//! again on a connection that lacks them, from a per-connection cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Session;
use crate::mysql::backend::BackendError;
use crate::mysql::backend::{ConnectParams, RELAYABLE, RELAYABLE_EXT};
use crate::mysql::pool::{AcquireError, PoolKey, PooledConn, DIRTY, FRESH};
use crate::mysql::protocol::command::{Expect, COM_RESET_CONNECTION};
use crate::mysql::protocol::err::{self, ServerError};
use crate::mysql::protocol::CapabilityFlags as Cap;

/// Session-state owner tokens: a new one per session and per state reset,
/// so a connection's `applied` version is only trusted by the log it counts.
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

pub(super) fn new_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

/// The pool key of a session: its user, and the client capabilities that
/// reach a backend (those that only matter at login are left out), MariaDB's
/// extended ones included: they change the wire format too (extended
/// metadata in column definitions).
pub(super) fn pool_key(user: &str, caps: u32, ext_caps: u32, collation: u8) -> Arc<PoolKey> {
    let login_only = Cap::CLIENT_CONNECT_WITH_DB.bits()
        | Cap::CLIENT_CONNECT_ATTRS.bits()
        | crate::mysql::protocol::handshake::CLIENT_MYSQL;
    Arc::new(PoolKey {
        user: Arc::from(user),
        caps: caps & RELAYABLE & !login_only,
        ext_caps: ext_caps & RELAYABLE_EXT,
        collation,
    })
}

// === impl Session ===

impl Session {
    /// Attaches a pooled connection to slot `i` and works out how much of
    /// the session's state it already has (resetting it if it carries
    /// another session's).
    pub(super) async fn attach(&mut self, i: usize) -> Result<(), ServerError> {
        let mut conn = self.borrow(i).await?;
        let owner = self.state_owner;
        let applied = if conn.owner == owner && conn.applied <= self.state.version() {
            conn.applied
        } else if conn.fingerprint == self.state.fingerprint() {
            self.state.version()
        } else if conn.fingerprint == FRESH {
            0
        } else {
            self.reset_conn(i, &mut conn).await?;
            0
        };
        conn.owner = owner;
        self.slots[i].applied = applied;
        self.slots[i].conn = Some(conn);
        Ok(())
    }

    /// A connection from the pool (or a new one) for slot `i`'s backend.
    async fn borrow(&mut self, i: usize) -> Result<PooledConn, ServerError> {
        let backend = self.slots[i].backend.clone();
        let name = self.slots[i].pool_name.clone();
        let pool = self.shared.pool().clone();
        let params = ConnectParams {
            backend_name: &backend.name,
            address: &backend.address,
            user: &self.user.name,
            secret: &self.secret,
            database: None,
            capabilities: self.key.caps,
            ext_capabilities: self.key.ext_caps,
            collation: self.key.collation,
            attributes: None,
            timeout: Duration::from_millis(self.shared.config.backend_connect_timeout_ms),
            tls: self.shared.backend_tls.as_ref(),
            max_packet: self.shared.config.max_allowed_packet,
        };
        let owner = self.state_owner;
        let fingerprint = self.state.fingerprint();
        let has_db = self.database.is_some();
        // Never lend a connection with a default database to a session
        // without one: there is no statement to unselect it.
        let accept = |c: &PooledConn| has_db || c.database.is_none();
        let prefer = |c: &PooledConn| c.owner == owner || c.fingerprint == fingerprint;
        // A KILL QUERY while this statement waits for a connection ends it.
        let killed = self.handle.query_killed.notified();
        tokio::pin!(killed);
        killed.as_mut().enable();
        if self.handle.kill_query.load(Ordering::Relaxed) {
            return Err(ServerError::query_interrupted());
        }
        let acquired = tokio::select! {
            r = pool.acquire(&name, &self.key, &params, &prefer, &accept) => r,
            _ = killed => return Err(ServerError::query_interrupted()),
        };
        match acquired {
            Ok(mut c) => {
                backend.health.mark_up();
                if c.lent == 0 {
                    self.shared
                        .metrics
                        .backend_connection(&backend.name)
                        .increment(1);
                    if backend.role == crate::config::Role::Primary {
                        self.shared.note_backend_version(&c.version);
                    }
                }
                c.lent += 1;
                Ok(c)
            }
            Err(AcquireError::Connect(e)) => {
                if !matches!(e, BackendError::Server(_)) {
                    let retry = Duration::from_millis(self.shared.config.routing.backend_retry_ms);
                    backend.health.mark_down(Instant::now(), retry);
                    self.shared
                        .metrics
                        .backend_connect_error(&backend.name)
                        .increment(1);
                    tracing::warn!(backend = %backend.name, error = %e, "backend connect failed");
                }
                Err(e.to_client_error(&backend.name, &backend.address))
            }
            Err(e @ AcquireError::Timeout { .. }) => {
                self.shared.metrics.pool_timeout(&backend.name).increment(1);
                Err(ServerError::new(
                    err::ER_CON_COUNT_ERROR,
                    "08004",
                    format!(
                        "Too many connections: tandem: {e} (mysql.pool.max_backend_connections)"
                    ),
                ))
            }
        }
    }

    /// COM_RESET_CONNECTION on a connection that carries another session's
    /// state: the server drops its variables, temporary tables, locks and
    /// prepared statements.
    async fn reset_conn(&mut self, i: usize, conn: &mut PooledConn) -> Result<(), ServerError> {
        if conn.awaiting_response {
            // The reset's answer would be read from the middle of another.
            return Err(ServerError::backend_unreachable(
                &self.slots[i].backend.name,
                &self.slots[i].backend.address,
                "the connection is in the middle of a response",
            ));
        }
        let deprecate = self.caps & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
        let fail = |e: String| {
            ServerError::backend_unreachable(
                &self.slots[i].backend.name,
                &self.slots[i].backend.address,
                &e,
            )
        };
        let outcome =
            super::stmts::command_on(conn, &[COM_RESET_CONNECTION], Expect::Single, deprecate)
                .await
                .map_err(|e| fail(e.to_string()))?;
        if outcome.error {
            return Err(fail("COM_RESET_CONNECTION failed".into()));
        }
        conn.stmts.clear();
        conn.fingerprint = FRESH;
        self.shared.metrics.pool_resets.increment(1);
        Ok(())
    }

    /// After a command: gives back every connection the session does not
    /// need to keep (see the table at the top of this file).
    pub(super) fn release_conns(&mut self) {
        if !self.shared.config.pool.multiplex
            || self.pinned.is_some()
            || self.stmts.holds_connection()
        {
            return;
        }
        let hold = self
            .hold
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(s, _)| s);
        let in_transaction = self.in_transaction();
        for i in 0..self.slots.len() {
            let keep = (i == 0 && in_transaction) || self.ro_txn_slot == Some(i) || hold == Some(i);
            if keep || self.slots[i].conn.is_none() {
                continue;
            }
            self.give_back(i);
        }
        if self.slots.iter().all(|s| s.conn.is_none()) {
            self.current_slot = None;
            self.handle.backend_thread.store(0, Ordering::Relaxed);
        }
    }

    /// Returns slot `i`'s connection to the pool, recording the state it has.
    fn give_back(&mut self, i: usize) {
        let Some(mut c) = self.slots[i].conn.take() else {
            return;
        };
        let applied = self.slots[i].applied;
        c.owner = self.state_owner;
        c.applied = applied;
        c.fingerprint = if applied >= self.state.version() {
            self.state.fingerprint()
        } else {
            DIRTY
        };
        if c.database.as_deref() != self.database.as_deref() {
            c.database = self.database.as_deref().map(Arc::from);
        }
        let snap = self.shared.topology.load();
        let current = snap.by_name(&self.slots[i].backend.name);
        let healthy = self.slots[i].backend.health.is_usable(Instant::now());
        if healthy && current.is_some_and(|b| crate::mysql::pool::accepts_work(b)) {
            self.shared.pool().release(c);
        } else {
            c.close();
        }
    }

    /// At the end of the session: connections in a clean state go back to
    /// the pool; one holding a transaction, locks or temporary tables is
    /// reset first (or closed if that fails), so nothing leaks.
    pub(super) async fn return_all(&mut self) {
        let bound = self.pinned.is_some() || self.stmts.holds_connection();
        let in_transaction = self.in_transaction();
        for i in 0..self.slots.len() {
            let Some(mut c) = self.slots[i].conn.take() else {
                continue;
            };
            let dirty = bound || (i == 0 && in_transaction) || self.ro_txn_slot == Some(i);
            if dirty {
                let reset =
                    tokio::time::timeout(Duration::from_secs(2), self.reset_conn(i, &mut c));
                if !matches!(reset.await, Ok(Ok(()))) {
                    c.close();
                    continue;
                }
                c.owner = 0;
                c.applied = 0;
                self.shared.pool().release(c);
            } else {
                self.slots[i].conn = Some(c);
                self.give_back(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compression is between the client and tandem only: a compressing
    /// session borrows the same (uncompressed) backend connections.
    #[test]
    fn compression_is_not_part_of_the_pool_key() {
        let caps = (Cap::CLIENT_PROTOCOL_41 | Cap::CLIENT_DEPRECATE_EOF).bits();
        let with = pool_key("app", caps | Cap::CLIENT_COMPRESS.bits(), 0, 45);
        assert_eq!(with, pool_key("app", caps, 0, 45));
        assert_eq!(RELAYABLE & Cap::CLIENT_COMPRESS.bits(), 0);
    }
}
