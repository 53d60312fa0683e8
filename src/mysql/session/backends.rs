//! The backend connections of one session: the primary's (slot 0, opened at
//! login) and the replicas' (opened on first use), each brought to the
//! session's state before a statement runs on it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Session;
use crate::mysql::io::PacketError;
use crate::mysql::pool::PooledConn;
use crate::mysql::protocol::command::{Expect, COM_QUERY};
use crate::mysql::protocol::err::ServerError;
use crate::mysql::protocol::wire::last_packet;
use crate::mysql::protocol::CapabilityFlags as Cap;
use crate::topology::Backend;

/// One backend a session uses, and the pooled connection it holds there
/// between statements when it must (see `pooling.rs`).
pub(super) struct Slot {
    pub backend: Arc<Backend>,
    /// The backend's name as the pool keys it.
    pub pool_name: Arc<str>,
    /// `None` while the session holds no connection there.
    pub conn: Option<PooledConn>,
    /// The session-state version (see `state.rs`) this connection has applied.
    pub applied: u64,
}

/// Why a slot could not be used: connect or state replay failed. Nothing of
/// the client's statement was sent, so another backend may be tried.
pub(super) struct SlotError(pub ServerError);

// === impl Slot ===

impl Slot {
    pub fn new(backend: Arc<Backend>) -> Slot {
        Slot {
            pool_name: Arc::from(backend.name.as_str()),
            backend,
            conn: None,
            applied: 0,
        }
    }

    /// The connection; `slot_for` attaches one before a slot index is used.
    pub fn conn(&mut self) -> &mut PooledConn {
        self.conn
            .as_mut()
            .expect("slot_for attaches a connection before the slot is used")
    }
}

// === impl Session ===

impl Session {
    /// The slot for `backend`, with a connection brought to the session's
    /// state. A replica that fails either is dropped from the session (and
    /// put aside for `backend_retry_ms` if it failed to connect).
    pub(super) async fn slot_for(&mut self, backend: &Arc<Backend>) -> Result<usize, SlotError> {
        let i = match self
            .slots
            .iter()
            .position(|s| s.backend.name == backend.name)
        {
            Some(i) => i,
            None => {
                self.slots.push(Slot::new(backend.clone()));
                self.slots.len() - 1
            }
        };
        let attached = if self.slots[i].conn.is_none() {
            self.attach(i).await
        } else {
            Ok(())
        };
        let synced = match attached {
            Ok(()) => self.sync(i).await,
            Err(e) => Err(SlotError(e)),
        };
        if let Err(e) = synced {
            if let Some(c) = self.slots[i].conn.take() {
                // Its state is half-replayed or unknown: never pool it.
                drop(c);
            }
            if i != 0 {
                self.forget_slot(i);
            }
            return Err(e);
        }
        Ok(i)
    }

    /// Forgets replica slot `i` (its connection, if any, is closed).
    pub(super) fn forget_slot(&mut self, i: usize) {
        let gone = self.slots.remove(i);
        self.stmts.forget_slot(i);
        drop(gone);
        self.fix_slot_indexes_after_remove(i);
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
            .map(|(command, _)| command.to_vec())
            .collect();
        for command in pending {
            match self.run_internal(i, &command).await {
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

    /// Runs one of tandem's own commands (a state log entry: COM_QUERY or
    /// COM_INIT_DB, command byte first) on slot `i` and reads its whole
    /// response; returns the server's ERR, if it answered with one.
    pub(super) async fn run_internal(
        &mut self,
        i: usize,
        command: &[u8],
    ) -> Result<Option<ServerError>, PacketError> {
        let expect = match command.first() {
            Some(&COM_QUERY) => Expect::Results,
            _ => Expect::Single,
        };
        let deprecate = self.caps & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
        let mut seen = Vec::new();
        let conn = self.slots[i].conn();
        let outcome =
            super::stmts::command_collect(conn, command, expect, deprecate, Some(&mut seen))
                .await?;
        if !outcome.error {
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
        let slot = &mut self.slots[i];
        let thread = slot.conn().thread_id;
        self.handle.backend_thread.store(thread, Ordering::Relaxed);
        *self
            .handle
            .backend_name
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = slot.backend.name.clone();
    }
}
