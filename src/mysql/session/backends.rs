//! The backend connections of one session: the primary's (slot 0, opened at
//! login) and the replicas' (opened on first use), each brought to the
//! session's state before a statement runs on it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Buf;

use super::Session;
use crate::mysql::backend::{self, BackendConn, BackendError, ConnectParams};
use crate::mysql::io::PacketError;
use crate::mysql::protocol::command::{Expect, COM_QUERY};
use crate::mysql::protocol::err::ServerError;
use crate::mysql::protocol::response::{Scanner, Step};
use crate::mysql::protocol::CapabilityFlags as Cap;
use crate::topology::Backend;

/// One backend connection of a session.
pub(super) struct Slot {
    pub backend: Arc<Backend>,
    pub conn: BackendConn,
    /// The session-state version (see `state.rs`) this connection has applied.
    pub applied: u64,
}

/// Why a slot could not be used: connect or state replay failed. Nothing of
/// the client's statement was sent, so another backend may be tried.
pub(super) struct SlotError(pub ServerError);

// === impl Session ===

impl Session {
    /// The slot for `backend`, connecting and replaying session state as
    /// needed. A replica that fails either is dropped from the session (and
    /// put aside for `backend_retry_ms` if it failed to connect).
    pub(super) async fn slot_for(&mut self, backend: &Arc<Backend>) -> Result<usize, SlotError> {
        let i = match self
            .slots
            .iter()
            .position(|s| s.backend.name == backend.name)
        {
            Some(i) => i,
            None => {
                let conn = self.connect(backend).await.map_err(SlotError)?;
                self.slots.push(Slot {
                    backend: backend.clone(),
                    conn,
                    applied: 0,
                });
                self.slots.len() - 1
            }
        };
        if let Err(e) = self.sync(i).await {
            if i != 0 {
                let gone = self.slots.remove(i);
                self.stmts.forget_backend(&gone.backend.name);
                self.fix_slot_indexes_after_remove(i);
            }
            return Err(e);
        }
        Ok(i)
    }

    async fn connect(&self, backend: &Arc<Backend>) -> Result<BackendConn, ServerError> {
        let params = ConnectParams {
            backend_name: &backend.name,
            address: &backend.address,
            user: &self.user.name,
            secret: &self.secret,
            database: self.database.as_deref(),
            capabilities: self.caps,
            collation: self.collation,
            attributes: self.attributes.as_deref(),
            timeout: Duration::from_millis(self.shared.config.backend_connect_timeout_ms),
            tls: self.shared.backend_tls.as_ref(),
            max_packet: self.max_packet.max(1024),
        };
        match backend::connect(&params).await {
            Ok(conn) => {
                backend.health.mark_up();
                self.shared
                    .metrics
                    .backend_connection(&backend.name)
                    .increment(1);
                Ok(conn)
            }
            Err(e) => {
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
        }
    }

    /// Replays the session-state changes slot `i` has not applied yet.
    async fn sync(&mut self, i: usize) -> Result<(), SlotError> {
        let target = self.state.version();
        if self.slots[i].applied >= target {
            return Ok(());
        }
        let pending: Vec<Vec<u8>> = self
            .state
            .pending(self.slots[i].applied)
            .map(|(sql, _)| sql.to_vec())
            .collect();
        for sql in pending {
            match self.run_internal(i, &sql).await {
                Ok(None) => {}
                Ok(Some(err)) => {
                    tracing::debug!(backend = %self.slots[i].backend.name, error = %err, "state replay failed");
                    return Err(SlotError(err));
                }
                Err(e) => {
                    let name = self.slots[i].backend.name.clone();
                    return Err(SlotError(ServerError::backend_unreachable(
                        &name,
                        &self.slots[i].backend.address,
                        &e.to_string(),
                    )));
                }
            }
        }
        self.slots[i].applied = target;
        Ok(())
    }

    /// Runs one of tandem's own statements on slot `i` and reads its whole
    /// response; returns the server's ERR, if it answered with one.
    pub(super) async fn run_internal(
        &mut self,
        i: usize,
        sql: &[u8],
    ) -> Result<Option<ServerError>, PacketError> {
        let mut q = Vec::with_capacity(sql.len() + 1);
        q.push(COM_QUERY);
        q.extend_from_slice(sql);
        let conn = &mut self.slots[i].conn;
        conn.io.write_packet(0, &q).await?;
        let deprecate = self.caps & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
        let mut scanner = Scanner::new(Expect::Results, deprecate);
        let mut seen = Vec::new();
        loop {
            let (n, step) = scanner.scan(&conn.io.rbuf);
            seen.extend_from_slice(&conn.io.rbuf[..n]);
            conn.io.rbuf.advance(n);
            match step {
                Step::Done => break,
                // tandem never sends LOAD DATA LOCAL itself: refuse the file.
                Step::LocalInfile => conn.io.write_packet(2, &[]).await.map(|_| ())?,
                Step::NeedMore => conn.io.fill().await?,
            }
        }
        if !scanner.outcome().error {
            return Ok(None);
        }
        Ok(last_packet(&seen).and_then(ServerError::parse))
    }

    /// Keeps the slot indexes the session remembers valid after a removal.
    pub(super) fn fix_slot_indexes_after_remove(&mut self, removed: usize) {
        let fix = |x: &mut Option<usize>| {
            *x = match *x {
                Some(i) if i == removed => None,
                Some(i) if i > removed => Some(i - 1),
                other => other,
            }
        };
        fix(&mut self.last_slot);
        fix(&mut self.ro_txn_slot);
    }

    /// Points `KILL` at the backend thread that runs the current statement.
    pub(super) fn note_current_slot(&mut self, i: usize) {
        if self.current_slot == Some(i) {
            return;
        }
        self.current_slot = Some(i);
        let slot = &self.slots[i];
        self.handle
            .backend_thread
            .store(slot.conn.thread_id, Ordering::Relaxed);
        *self
            .handle
            .backend_name
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = slot.backend.name.clone();
    }
}

/// The payload of the last packet in `bytes` (whole packets only).
fn last_packet(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = 0;
    let mut last = None;
    while bytes.len() >= pos + 4 {
        let len = crate::mysql::protocol::wire::header_len(&bytes[pos..]);
        let end = (pos + 4 + len).min(bytes.len());
        last = Some(&bytes[pos + 4..end]);
        pos = end;
    }
    last
}
