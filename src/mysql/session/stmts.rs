//! Prepared statements (binary protocol) across backends and pooled
//! connections.
//!
//! Clients see tandem's statement ids. A statement is prepared on the
//! primary when the client prepares it (so the client gets the primary's
//! metadata and errors). Backend statements belong to connections, not to
//! sessions: each pooled connection keeps a cache by SQL text
//! (`pool/conn.rs`), so a statement is prepared on a connection once and then
//! executed there by any session, and a session that gets another connection
//! (multiplexing, or a replica) prepares it there lazily. Parameter types
//! sent once by the client are kept and re-sent to a backend statement that
//! last saw other types. SEND_LONG_DATA and an open cursor keep the session
//! on its connection until the statement is executed, reset or closed.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Buf;

use super::relay::RelayOpts;
use super::{Session, SessionError};
use crate::mysql::backend::BackendConn;
use crate::mysql::classify::{self, Classification};
use crate::mysql::io::{frame_into, PacketError};
use crate::mysql::pool::conn_close_packet;
use crate::mysql::protocol::command::{
    Expect, COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_PREPARE, COM_STMT_RESET,
    COM_STMT_SEND_LONG_DATA,
};
use crate::mysql::protocol::err::ServerError;
use crate::mysql::protocol::ok::OkInfo;
use crate::mysql::protocol::response::{Outcome, Scanner, Step};
use crate::mysql::protocol::{CapabilityFlags as Cap, StatusFlags, MAX_PAYLOAD};
use crate::mysql::router::{self, Intent, Reason};

/// MariaDB: statement id -1 means "the last one prepared".
const LAST_PREPARED: u32 = u32::MAX;

/// One client-visible prepared statement.
pub(super) struct Stmt {
    class: Classification,
    sql: Arc<[u8]>,
    params: u16,
    /// The parameter types (2 bytes each) from the last execute that sent them.
    types: Option<Vec<u8>>,
    /// The slot whose connection got SEND_LONG_DATA since the last execute.
    long_data: Option<usize>,
    /// The slot whose connection holds this statement's open cursor.
    cursor: Option<usize>,
}

/// The session's prepared statements.
#[derive(Default)]
pub(super) struct Stmts {
    map: HashMap<u32, Stmt>,
    next: u32,
    last: Option<u32>,
}

// === impl Stmts ===

impl Stmts {
    fn resolve(&self, id: u32) -> u32 {
        if id == LAST_PREPARED {
            self.last.unwrap_or(id)
        } else {
            id
        }
    }

    /// True while a statement's long data or cursor lives on a connection.
    pub fn holds_connection(&self) -> bool {
        self.map
            .values()
            .any(|s| s.long_data.is_some() || s.cursor.is_some())
    }

    /// Slot `i` was removed: what lived on its connection is gone, and the
    /// slots after it moved down by one.
    pub fn forget_slot(&mut self, i: usize) {
        let fix = |x: &mut Option<usize>| {
            *x = match *x {
                Some(j) if j == i => None,
                Some(j) if j > i => Some(j - 1),
                other => other,
            }
        };
        for s in self.map.values_mut() {
            fix(&mut s.long_data);
            fix(&mut s.cursor);
        }
    }

    /// Slot `i`'s connection broke or was replaced.
    pub fn connection_lost(&mut self, i: usize) {
        for s in self.map.values_mut() {
            if s.long_data == Some(i) {
                s.long_data = None;
            }
            if s.cursor == Some(i) {
                s.cursor = None;
            }
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.last = None;
    }
}

fn stmt_id(payload: &[u8]) -> u32 {
    payload
        .get(1..5)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

fn unknown_statement(id: u32, what: &str) -> ServerError {
    ServerError::new(
        1243,
        "HY000",
        format!("Unknown prepared statement handler ({id}) given to {what}"),
    )
}

/// Runs one command of tandem's own on `conn` and reads its whole response.
pub(super) async fn command_on(
    conn: &mut BackendConn,
    packet: &[u8],
    expect: Expect,
    deprecate_eof: bool,
) -> Result<Outcome, PacketError> {
    conn.awaiting_response = expect != Expect::Nothing;
    conn.io.write_packet(0, packet).await?;
    let mut scanner = Scanner::new(expect, deprecate_eof);
    loop {
        let (n, step) = scanner.scan(&conn.io.rbuf);
        conn.io.rbuf.advance(n);
        match step {
            Step::Done => {
                conn.awaiting_response = false;
                return Ok(scanner.outcome());
            }
            // tandem never sends LOAD DATA LOCAL itself: refuse the file.
            Step::LocalInfile => conn.io.write_packet(2, &[]).await.map(|_| ())?,
            Step::NeedMore => conn.io.fill().await?,
        }
    }
}

// === impl Session ===

impl Session {
    /// COM_STMT_PREPARE: prepare on the primary, under a tandem id.
    pub(super) async fn stmt_prepare(&mut self, len: usize) -> Result<(), SessionError> {
        if len >= MAX_PAYLOAD {
            self.discard_command(len).await?;
            return self.reply_error(1, &ServerError::packet_too_large()).await;
        }
        let sql: Arc<[u8]> = Arc::from(&self.client.rbuf[5..4 + len]);
        let class = classify::classify(&sql, &self.classify_options());
        self.stmts.next = self.stmts.next.wrapping_add(1).max(1);
        let id = self.stmts.next;
        let slot = self.primary_slot().await?;
        let opts = RelayOpts {
            prepare_id: Some(id),
            ..Default::default()
        };
        let outcome = self
            .relay_with(slot, COM_STMT_PREPARE, Expect::Prepare, len, opts)
            .await?;
        if let (Some((backend_id, _, params)), false) = (outcome.prepared, outcome.error) {
            self.cache_prepared(slot, sql.clone(), backend_id).await;
            let stmt = Stmt {
                class,
                sql,
                params,
                types: None,
                long_data: None,
                cursor: None,
            };
            self.stmts.map.insert(id, stmt);
            self.stmts.last = Some(id);
        }
        Ok(())
    }

    /// Records a backend statement in slot `slot`'s connection cache,
    /// closing what the cache lets go.
    async fn cache_prepared(&mut self, slot: usize, sql: Arc<[u8]>, backend_id: u32) {
        let cap = self
            .shared
            .config
            .routing
            .max_prepared_statements_per_backend;
        let conn = self.slots[slot].conn();
        for old in conn.stmts.insert(sql, backend_id, cap) {
            let _ = conn.io.write_packet(0, &conn_close_packet(old)).await;
        }
    }

    /// COM_STMT_EXECUTE: routed like the statement's text would be.
    pub(super) async fn stmt_execute(&mut self, len: usize) -> Result<(), SessionError> {
        let id = self
            .stmts
            .resolve(stmt_id(&self.client.rbuf[4..4 + len.min(9)]));
        let Some(stmt) = self.stmts.map.get(&id) else {
            return Err(SessionError::StatementFailed(unknown_statement(
                id,
                "mysqld_stmt_execute",
            )));
        };
        let mut intent = match stmt.long_data {
            // The long data waits on that connection.
            Some(slot) => {
                Intent::Backend(self.slots[slot].backend.name.clone(), Reason::SessionState)
            }
            None if len >= MAX_PAYLOAD => Intent::Primary(Reason::SessionState),
            None => router::decide(
                &stmt.class,
                &self.session_view(),
                &self.shared.config.routing,
            ),
        };
        // Copies: routing borrows the session mutably.
        let class = stmt.class.clone();
        let sql = stmt.sql.clone();
        let cursor = self.client.rbuf.get(9).is_some_and(|&f| f != 0);
        for _attempt in 0..4 {
            let (slot, reason) = self.resolve_consistent(intent.clone(), &class).await?;
            let Some(backend_id) = self.ensure_prepared(slot, id).await else {
                if self.is_primary_slot(slot) {
                    if self.slots[slot].conn.is_none() {
                        // Its connection broke before anything was sent:
                        // a fresh one can run it.
                        continue;
                    }
                    return Err(self.statement_lost(id));
                }
                // The replica refused the statement: run it on the primary.
                intent = Intent::Primary(Reason::NoReplicaFallback);
                continue;
            };
            self.shared
                .metrics
                .routed(&self.slots[slot].backend.name, reason);
            let packet = self.execute_packet(id, slot, backend_id, len).await?;
            let opts = RelayOpts {
                packet,
                ..Default::default()
            };
            let in_flight = self.slots[slot].backend.health.start_statement();
            let outcome = self
                .relay_with(slot, COM_STMT_EXECUTE, Expect::Execute, len, opts)
                .await;
            drop(in_flight);
            let outcome = match outcome {
                Err(SessionError::Retry) => {
                    self.drop_lost_replica(slot);
                    intent = Intent::Primary(Reason::NoReplicaFallback);
                    continue;
                }
                other => other?,
            };
            let open_cursor = cursor
                && !outcome.error
                && outcome.status & StatusFlags::SERVER_STATUS_CURSOR_EXISTS.bits() != 0;
            if let Some(stmt) = self.stmts.map.get_mut(&id) {
                stmt.long_data = None;
                stmt.cursor = open_cursor.then_some(slot);
            }
            self.after_statement(slot, &outcome, super::route::after_prepared(&class, &sql));
            let wrote = super::route::writes(&class);
            self.note_write(slot, wrote, outcome.error).await;
            return Ok(());
        }
        Err(self.statement_lost(id))
    }

    /// COM_STMT_SEND_LONG_DATA: to the primary (the execute will follow it
    /// on the same connection).
    pub(super) async fn stmt_send_long_data(&mut self, len: usize) -> Result<(), SessionError> {
        let id = self
            .stmts
            .resolve(stmt_id(&self.client.rbuf[4..4 + len.min(9)]));
        let Some(stmt) = self.stmts.map.get(&id) else {
            // No response is expected: like the server, drop it silently.
            return self.discard_command(len).await;
        };
        let slot = match stmt.long_data {
            Some(slot) => slot,
            None => self.primary_slot().await?,
        };
        let Some(backend_id) = self.ensure_prepared(slot, id).await else {
            return self.discard_command(len).await;
        };
        self.patch_stmt_id(backend_id).await?;
        if let Some(stmt) = self.stmts.map.get_mut(&id) {
            stmt.long_data = Some(slot);
        }
        self.relay(slot, COM_STMT_SEND_LONG_DATA, Expect::Nothing, len)
            .await?;
        Ok(())
    }

    /// COM_STMT_CLOSE: no response. The backend statement stays in its
    /// connection's cache for other sessions, unless it holds this
    /// session's cursor or long data: then it is closed there.
    pub(super) async fn stmt_close(&mut self, len: usize) -> Result<(), SessionError> {
        let id = self
            .stmts
            .resolve(stmt_id(&self.client.rbuf[4..4 + len.min(9)]));
        self.discard_command(len).await?;
        let Some(stmt) = self.stmts.map.remove(&id) else {
            return Ok(());
        };
        if let Some(slot) = stmt.cursor.or(stmt.long_data) {
            if let Some(conn) = self.slots.get_mut(slot).and_then(|s| s.conn.as_mut()) {
                if let Some(backend_id) = conn.stmts.remove(&stmt.sql) {
                    let _ = conn
                        .io
                        .write_packet(0, &conn_close_packet(backend_id))
                        .await;
                }
            }
        }
        Ok(())
    }

    /// COM_STMT_RESET: reaches the connection holding the statement's
    /// cursor or long data; with neither, there is nothing to reset on any
    /// backend and tandem answers OK itself.
    pub(super) async fn stmt_reset(&mut self, len: usize) -> Result<(), SessionError> {
        let id = self
            .stmts
            .resolve(stmt_id(&self.client.rbuf[4..4 + len.min(9)]));
        let Some(stmt) = self.stmts.map.get_mut(&id) else {
            return Err(SessionError::StatementFailed(unknown_statement(
                id,
                "mysqld_stmt_reset",
            )));
        };
        let target = stmt.cursor.or(stmt.long_data);
        stmt.cursor = None;
        stmt.long_data = None;
        let sql = stmt.sql.clone();
        let on = target.and_then(|slot| {
            let conn = self.slots.get_mut(slot)?.conn.as_mut()?;
            Some((slot, conn.stmts.get(&sql)?.id))
        });
        let Some((slot, backend_id)) = on else {
            self.discard_command(len).await?;
            let ok = OkInfo {
                status: self.status,
                ..Default::default()
            };
            return self.reply_ok(&ok).await;
        };
        self.patch_stmt_id(backend_id).await?;
        self.relay(slot, COM_STMT_RESET, Expect::Single, len)
            .await?;
        Ok(())
    }

    /// COM_STMT_FETCH: to the connection that holds the cursor.
    pub(super) async fn stmt_fetch(&mut self, len: usize) -> Result<(), SessionError> {
        let id = self
            .stmts
            .resolve(stmt_id(&self.client.rbuf[4..4 + len.min(9)]));
        let target = self.stmts.map.get(&id).and_then(|s| {
            let slot = s.cursor?;
            let conn = self.slots.get_mut(slot)?.conn.as_mut()?;
            Some((slot, conn.stmts.get(&s.sql)?.id))
        });
        let Some((slot, backend_id)) = target else {
            return Err(SessionError::StatementFailed(unknown_statement(
                id,
                "mysqld_stmt_fetch",
            )));
        };
        if len >= 5 {
            self.patch_stmt_id(backend_id).await?;
        }
        let outcome = self.relay(slot, COM_STMT_FETCH, Expect::Fetch, len).await?;
        if outcome.error || outcome.status & StatusFlags::SERVER_STATUS_LAST_ROW_SENT.bits() != 0 {
            if let Some(stmt) = self.stmts.map.get_mut(&id) {
                stmt.cursor = None;
            }
        }
        Ok(())
    }

    /// The statement's id on slot `slot`'s connection, preparing it there
    /// first if needed.
    async fn ensure_prepared(&mut self, slot: usize, id: u32) -> Option<u32> {
        let sql = self.stmts.map.get(&id)?.sql.clone();
        if let Some(c) = self.slots[slot].conn().stmts.get(&sql) {
            return Some(c.id);
        }
        let mut p = Vec::with_capacity(sql.len() + 1);
        p.push(COM_STMT_PREPARE);
        p.extend_from_slice(&sql);
        let deprecate = self.caps & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
        let outcome =
            match command_on(self.slots[slot].conn(), &p, Expect::Prepare, deprecate).await {
                Ok(o) => o,
                Err(_) => {
                    // The connection broke: never give it back to the pool.
                    if !self.is_primary_slot(slot) {
                        self.drop_lost_replica(slot);
                    } else {
                        self.slots[slot].conn = None;
                        self.stmts.connection_lost(slot);
                    }
                    return None;
                }
            };
        let (backend_id, _, _) = outcome.prepared.filter(|_| !outcome.error)?;
        self.cache_prepared(slot, sql, backend_id).await;
        Some(backend_id)
    }

    /// Writes `backend_id` over the statement id of the buffered command, in
    /// place (for a 16 MiB+ command, its first frame is read that far first).
    async fn patch_stmt_id(&mut self, backend_id: u32) -> Result<(), SessionError> {
        let timeout = std::time::Duration::from_millis(self.shared.config.net_read_timeout_ms);
        while self.client.rbuf.len() < 9 {
            super::relay::fill_within(&mut self.client, timeout).await?;
        }
        self.client.rbuf[5..9].copy_from_slice(&backend_id.to_le_bytes());
        Ok(())
    }

    /// Prepares the client's COM_STMT_EXECUTE for slot `slot`: the backend's
    /// statement id (patched in place), and the parameter types the client
    /// sent earlier when the backend statement last saw others (then a new
    /// packet is returned).
    async fn execute_packet(
        &mut self,
        id: u32,
        slot: usize,
        backend_id: u32,
        len: usize,
    ) -> Result<Option<Vec<u8>>, SessionError> {
        self.patch_stmt_id(backend_id).await?;
        if len >= MAX_PAYLOAD {
            // Streamed as it comes; it carries its own types.
            return Ok(None);
        }
        let Some(stmt) = self.stmts.map.get_mut(&id) else {
            return Ok(None);
        };
        let params = usize::from(stmt.params);
        let payload = &self.client.rbuf[4..4 + len];
        let bound_at = 10 + params.div_ceil(8);
        if params == 0 || payload.len() <= bound_at {
            return Ok(None);
        }
        let Some(slot) = self.slots.get_mut(slot) else {
            return Ok(None);
        };
        let Some(cached) = slot.conn().stmts.get(&stmt.sql) else {
            return Ok(None);
        };
        if payload[bound_at] == 1 {
            let end = (bound_at + 1 + 2 * params).min(payload.len());
            let types = payload[bound_at + 1..end].to_vec();
            cached.types = Some(types.clone());
            stmt.types = Some(types);
            return Ok(None);
        }
        match &stmt.types {
            Some(types) if cached.types.as_ref() != Some(types) => {
                let mut p = payload.to_vec();
                p[bound_at] = 1;
                p.splice(bound_at + 1..bound_at + 1, types.iter().copied());
                cached.types = Some(types.clone());
                let mut out = Vec::with_capacity(p.len() + 4);
                frame_into(&mut out, 0, &p);
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }

    /// A statement that no backend can run any more (its connection broke).
    fn statement_lost(&mut self, id: u32) -> SessionError {
        SessionError::StatementFailed(unknown_statement(id, "mysqld_stmt_execute"))
    }

    /// Sends an OK as the whole response to the current command.
    async fn reply_ok(&mut self, ok: &OkInfo) -> Result<(), SessionError> {
        self.client
            .write_packet(1, &ok.encode())
            .await
            .map_err(SessionError::ClientIo)?;
        Ok(())
    }
}
