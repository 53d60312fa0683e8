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
use tokio::io::AsyncWriteExt;

use super::relay::RelayOpts;
use super::{Session, SessionError};
use crate::mysql::backend::BackendConn;
use crate::mysql::classify::{self, Classification};
use crate::mysql::io::{frame_into, PacketError};
use crate::mysql::pool::conn_close_packet;
use crate::mysql::protocol::command::{
    Expect, COM_PING, COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_PREPARE, COM_STMT_RESET,
    COM_STMT_SEND_LONG_DATA,
};
use crate::mysql::protocol::err::ServerError;
use crate::mysql::protocol::ok::OkInfo;
use crate::mysql::protocol::response::{Outcome, Scanner, Step};
use crate::mysql::protocol::{CapabilityFlags as Cap, StatusFlags, MAX_PAYLOAD};
use crate::mysql::router::{self, Intent, Reason};

/// MariaDB: statement id -1 means "the last one prepared".
const LAST_PREPARED: u32 = u32::MAX;

/// "Can't create more than max_prepared_stmt_count statements".
const ER_MAX_PREPARED_STMT_COUNT_REACHED: u16 = 1461;

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
    command_collect(conn, packet, expect, deprecate_eof, None).await
}

/// [`command_on`], keeping the response's bytes (packet headers included)
/// in `keep` when given.
pub(super) async fn command_collect(
    conn: &mut BackendConn,
    packet: &[u8],
    expect: Expect,
    deprecate_eof: bool,
    mut keep: Option<&mut Vec<u8>>,
) -> Result<Outcome, PacketError> {
    conn.awaiting_response = expect != Expect::Nothing;
    conn.io.write_packet(0, packet).await?;
    let mut scanner = Scanner::new(expect, deprecate_eof);
    loop {
        let (n, step) = scanner.scan(&conn.io.rbuf);
        if let Some(out) = keep.as_deref_mut() {
            out.extend_from_slice(&conn.io.rbuf[..n]);
        }
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

/// The error code of an ERR packet that ends `bytes` (whole packets).
fn last_error_code(bytes: &[u8]) -> Option<u16> {
    let last = crate::mysql::protocol::wire::last_packet(bytes)?;
    (last.first() == Some(&0xFF)).then(|| ServerError::parse(last).map(|e| e.code))?
}

/// Closes backend statements `ids` on `conn`, then waits for a COM_PING's
/// answer: the server has freed them before the caller prepares again.
async fn close_stmts(conn: &mut BackendConn, ids: &[u32], deprecate_eof: bool) -> bool {
    for id in ids {
        if conn
            .io
            .write_packet(0, &conn_close_packet(*id))
            .await
            .is_err()
        {
            return false;
        }
    }
    let ping = command_on(conn, &[COM_PING], Expect::Single, deprecate_eof);
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), ping).await,
        Ok(Ok(_))
    )
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
        self.note_current_slot(slot);
        let (outcome, mut answer) = match self.prepare_on(slot, &sql).await {
            Ok(x) => x,
            Err(e) => {
                self.client.rbuf.advance(4 + len);
                return Err(self.backend_lost(slot, true, e).await);
            }
        };
        self.client.rbuf.advance(4 + len);
        if let (Some(_), Some(0x00)) = (outcome.prepared, answer.get(4)) {
            // The client sees tandem's statement id in the PREPARE_OK.
            answer[5..9].copy_from_slice(&id.to_le_bytes());
        }
        self.client
            .stream
            .write_all(&answer)
            .await
            .map_err(SessionError::ClientIo)?;
        self.flush_client(answer.len()).await?;
        if let (Some((backend_id, _, params)), false) = (outcome.prepared, outcome.error) {
            self.cache_prepared(slot, sql.clone(), backend_id).await;
            self.shared.open_stmts.opened(&sql);
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

    /// Prepares `sql` on slot `slot`'s connection and returns the whole
    /// answer. When the server's `max_prepared_stmt_count` is reached, the
    /// cached statements no client holds are closed first (on this
    /// connection and this worker's idle ones) and the prepare is retried
    /// once: a client never fails where it would succeed directly.
    async fn prepare_on(
        &mut self,
        slot: usize,
        sql: &[u8],
    ) -> Result<(Outcome, Vec<u8>), PacketError> {
        let mut p = Vec::with_capacity(sql.len() + 1);
        p.push(COM_STMT_PREPARE);
        p.extend_from_slice(sql);
        let deprecate = self.caps & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
        let mut retried = false;
        loop {
            let mut answer = Vec::new();
            let conn = self.slots[slot].conn();
            let outcome =
                command_collect(conn, &p, Expect::Prepare, deprecate, Some(&mut answer)).await?;
            let full = outcome.error
                && last_error_code(&answer) == Some(ER_MAX_PREPARED_STMT_COUNT_REACHED);
            if full && !retried && self.free_unused_stmts(slot).await {
                retried = true;
                continue;
            }
            return Ok((outcome, answer));
        }
    }

    /// Closes the backend statements no client holds, on slot `slot`'s
    /// connection and on the idle connections to its backend. Returns true
    /// if any was closed.
    ///
    /// The idle connections of the other workers' pools are included: the
    /// server's limit counts them all. Their sockets then do I/O from this
    /// worker's runtime for a moment, which tokio allows (their own runtime
    /// still drives them); it happens only when the limit is reached.
    async fn free_unused_stmts(&mut self, slot: usize) -> bool {
        let deprecate = self.caps & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
        let open = self.shared.open_stmts.snapshot();
        let in_use = |sql: &[u8]| open.contains(sql);
        let conn = self.slots[slot].conn();
        let ids = conn.stmts.evict_unused(&in_use);
        let mut freed = !ids.is_empty() && close_stmts(conn, &ids, deprecate).await;
        let name = self.slots[slot].pool_name.clone();
        for pool in self.shared.pools.clone() {
            for mut c in pool.take_idle_with_unused_stmts(&name, &in_use) {
                let ids = c.stmts.evict_unused(&in_use);
                if close_stmts(&mut c, &ids, deprecate).await {
                    freed = true;
                    pool.release(c);
                } else {
                    c.close();
                }
            }
        }
        tracing::debug!(backend = %name, freed, "max_prepared_stmt_count reached: unused cached statements closed");
        freed
    }

    /// The client's statements are gone (COM_RESET_CONNECTION,
    /// COM_CHANGE_USER, the session's end).
    pub(super) fn forget_client_stmts(&mut self) {
        for s in self.stmts.map.values() {
            self.shared.open_stmts.closed(&s.sql);
        }
        self.stmts.clear();
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
            let opts = RelayOpts { packet };
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
        self.shared.open_stmts.closed(&stmt.sql);
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
        let outcome = match self.prepare_on(slot, &sql).await {
            Ok((o, _)) => o,
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
