//! Prepared statements (binary protocol) across backends.
//!
//! Clients see tandem's statement ids. A statement is prepared on the
//! primary when the client prepares it (so the client gets the primary's
//! metadata and errors), and lazily on a replica the first time an execute
//! is routed there. Each backend has its own id for it; parameter types sent
//! once by the client are kept and re-sent to a backend that has not seen
//! them. SEND_LONG_DATA pins the next execute to the primary, where the data
//! went; CLOSE and RESET reach every backend that has the statement.

use std::collections::HashMap;

use bytes::Buf;

use super::relay::RelayOpts;
use super::route::After;
use super::{Session, SessionError};
use crate::mysql::classify::{self, Classification};
use crate::mysql::io::frame_into;
use crate::mysql::protocol::command::{
    Expect, COM_STMT_CLOSE, COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_PREPARE, COM_STMT_RESET,
    COM_STMT_SEND_LONG_DATA,
};
use crate::mysql::protocol::err::ServerError;
use crate::mysql::protocol::response::{Scanner, Step};
use crate::mysql::protocol::{CapabilityFlags as Cap, MAX_PAYLOAD};
use crate::mysql::router::{self, Intent, Reason};

/// MariaDB: statement id -1 means "the last one prepared".
const LAST_PREPARED: u32 = u32::MAX;

/// One client-visible prepared statement.
pub(super) struct Stmt {
    class: Classification,
    sql: Vec<u8>,
    params: u16,
    /// The parameter types (2 bytes each) from the last execute that sent them.
    types: Option<Vec<u8>>,
    /// Where it is prepared: backend name, that backend's id, types sent there.
    on: Vec<OnBackend>,
    /// SEND_LONG_DATA went to the primary since the last execute.
    long_data: bool,
    /// The backend holding the open cursor, for COM_STMT_FETCH.
    cursor_on: Option<String>,
    /// Use tick, for closing the least recently used on a full backend.
    last_used: u64,
}

struct OnBackend {
    backend: String,
    id: u32,
    types_sent: bool,
}

/// The session's prepared statements.
#[derive(Default)]
pub(super) struct Stmts {
    map: HashMap<u32, Stmt>,
    next: u32,
    last: Option<u32>,
    tick: u64,
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

    fn touch(&mut self, id: u32) {
        self.tick += 1;
        if let Some(s) = self.map.get_mut(&id) {
            s.last_used = self.tick;
        }
    }

    /// A backend connection went away: its statement ids are gone with it.
    pub fn forget_backend(&mut self, backend: &str) {
        for s in self.map.values_mut() {
            s.on.retain(|o| o.backend != backend);
            if s.cursor_on.as_deref() == Some(backend) {
                s.cursor_on = None;
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

// === impl Session ===

impl Session {
    /// COM_STMT_PREPARE: prepare on the primary, under a tandem id.
    pub(super) async fn stmt_prepare(&mut self, len: usize) -> Result<(), SessionError> {
        if len >= MAX_PAYLOAD {
            self.discard_command(len).await?;
            return self.reply_error(1, &ServerError::packet_too_large()).await;
        }
        let sql = self.client.rbuf[5..4 + len].to_vec();
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
            let stmt = Stmt {
                class,
                sql,
                params,
                types: None,
                on: vec![OnBackend {
                    backend: self.slots[slot].backend.name.clone(),
                    id: backend_id,
                    types_sent: false,
                }],
                long_data: false,
                cursor_on: None,
                last_used: 0,
            };
            self.stmts.map.insert(id, stmt);
            self.stmts.touch(id);
            self.evict_if_full(slot, id).await;
            self.stmts.last = Some(id);
        }
        Ok(())
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
        let mut intent = if stmt.long_data || len >= MAX_PAYLOAD {
            Intent::Primary(Reason::SessionState)
        } else {
            router::decide(
                &stmt.class,
                &self.session_view(),
                &self.shared.config.routing,
            )
        };
        let cursor = self.client.rbuf.get(9).is_some_and(|&f| f != 0);
        self.stmts.touch(id);
        loop {
            let (slot, reason) = self.resolve(intent.clone()).await?;
            let Some(backend_id) = self.ensure_prepared(slot, id).await else {
                if slot == 0 {
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
                .relay_with(slot, COM_STMT_EXECUTE, Expect::Results, len, opts)
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
            let name = self.slots[slot].backend.name.clone();
            if let Some(stmt) = self.stmts.map.get_mut(&id) {
                stmt.long_data = false;
                if cursor {
                    stmt.cursor_on = Some(name);
                }
            }
            self.after_statement(slot, &outcome, After::default());
            return Ok(());
        }
    }

    /// COM_STMT_SEND_LONG_DATA: to the primary (the execute will follow it).
    pub(super) async fn stmt_send_long_data(&mut self, len: usize) -> Result<(), SessionError> {
        let id = self
            .stmts
            .resolve(stmt_id(&self.client.rbuf[4..4 + len.min(9)]));
        if !self.stmts.map.contains_key(&id) {
            // No response is expected: like the server, drop it silently.
            return self.discard_command(len).await;
        }
        let slot = self.primary_slot().await?;
        let Some(backend_id) = self.ensure_prepared(slot, id).await else {
            return self.discard_command(len).await;
        };
        self.patch_stmt_id(backend_id).await?;
        if let Some(stmt) = self.stmts.map.get_mut(&id) {
            stmt.long_data = true;
        }
        self.relay(slot, COM_STMT_SEND_LONG_DATA, Expect::Nothing, len)
            .await?;
        Ok(())
    }

    /// COM_STMT_CLOSE: closed on every backend that has it; no response.
    pub(super) async fn stmt_close(&mut self, len: usize) -> Result<(), SessionError> {
        let id = self
            .stmts
            .resolve(stmt_id(&self.client.rbuf[4..4 + len.min(9)]));
        self.discard_command(len).await?;
        if let Some(stmt) = self.stmts.map.remove(&id) {
            for on in stmt.on {
                if let Some(slot) = self.slots.iter_mut().find(|s| s.backend.name == on.backend) {
                    let mut p = vec![COM_STMT_CLOSE];
                    p.extend_from_slice(&on.id.to_le_bytes());
                    let _ = slot.conn.io.write_packet(0, &p).await;
                }
            }
        }
        Ok(())
    }

    /// COM_STMT_RESET: reset everywhere; the client gets the last answer.
    pub(super) async fn stmt_reset(&mut self, len: usize) -> Result<(), SessionError> {
        let id = self
            .stmts
            .resolve(stmt_id(&self.client.rbuf[4..4 + len.min(9)]));
        let targets: Vec<(String, u32)> = match self.stmts.map.get_mut(&id) {
            Some(stmt) => {
                stmt.long_data = false;
                stmt.cursor_on = None;
                stmt.on.iter().map(|o| (o.backend.clone(), o.id)).collect()
            }
            None => Vec::new(),
        };
        let Some(((last_backend, last_id), others)) = targets.split_last() else {
            return Err(SessionError::StatementFailed(unknown_statement(
                id,
                "mysqld_stmt_reset",
            )));
        };
        for (backend, bid) in others {
            if let Some(i) = self.slots.iter().position(|s| &s.backend.name == backend) {
                let mut p = vec![COM_STMT_RESET];
                p.extend_from_slice(&bid.to_le_bytes());
                if self.internal_command(i, &p, Expect::Single).await.is_err() {
                    return Err(self.statement_lost(id));
                }
            }
        }
        let Some(slot) = self
            .slots
            .iter()
            .position(|s| &s.backend.name == last_backend)
        else {
            return Err(self.statement_lost(id));
        };
        if len >= 5 {
            self.patch_stmt_id(*last_id).await?;
        }
        self.relay(slot, COM_STMT_RESET, Expect::Single, len)
            .await?;
        Ok(())
    }

    /// COM_STMT_FETCH: to the backend that holds the cursor.
    pub(super) async fn stmt_fetch(&mut self, len: usize) -> Result<(), SessionError> {
        let id = self
            .stmts
            .resolve(stmt_id(&self.client.rbuf[4..4 + len.min(9)]));
        let target = self.stmts.map.get(&id).and_then(|s| {
            let backend = s.cursor_on.as_ref()?;
            let on = s.on.iter().find(|o| &o.backend == backend)?;
            Some((backend.clone(), on.id))
        });
        let slot = target
            .as_ref()
            .and_then(|(b, _)| self.slots.iter().position(|s| &s.backend.name == b));
        let (Some((_, bid)), Some(slot)) = (target, slot) else {
            return Err(SessionError::StatementFailed(unknown_statement(
                id,
                "mysqld_stmt_fetch",
            )));
        };
        if len >= 5 {
            self.patch_stmt_id(bid).await?;
        }
        self.relay(slot, COM_STMT_FETCH, Expect::Fetch, len).await?;
        Ok(())
    }

    /// The statement's id on slot `slot`, preparing it there first if needed.
    async fn ensure_prepared(&mut self, slot: usize, id: u32) -> Option<u32> {
        let name = self.slots[slot].backend.name.clone();
        let stmt = self.stmts.map.get(&id)?;
        if let Some(on) = stmt.on.iter().find(|o| o.backend == name) {
            return Some(on.id);
        }
        let mut p = Vec::with_capacity(stmt.sql.len() + 1);
        p.push(COM_STMT_PREPARE);
        p.extend_from_slice(&stmt.sql);
        let outcome = self
            .internal_command(slot, &p, Expect::Prepare)
            .await
            .ok()?;
        let (backend_id, _, _) = outcome.prepared.filter(|_| !outcome.error)?;
        self.stmts.map.get_mut(&id)?.on.push(OnBackend {
            backend: name,
            id: backend_id,
            types_sent: false,
        });
        self.evict_if_full(slot, id).await;
        Some(backend_id)
    }

    /// Keeps at most `max_prepared_statements_per_backend` statements open
    /// on slot `slot`'s connection, closing the least recently used there
    /// (never `keep`); a closed one is prepared again when next executed. So
    /// many sessions with many statements cannot exhaust the server's
    /// `max_prepared_stmt_count`.
    async fn evict_if_full(&mut self, slot: usize, keep: u32) {
        let cap = self
            .shared
            .config
            .routing
            .max_prepared_statements_per_backend;
        let name = self.slots[slot].backend.name.clone();
        loop {
            let on_backend = self
                .stmts
                .map
                .values()
                .filter(|s| s.on.iter().any(|o| o.backend == name));
            if on_backend.count() <= cap {
                return;
            }
            let victim = self
                .stmts
                .map
                .iter()
                .filter(|(id, s)| **id != keep && s.on.iter().any(|o| o.backend == name))
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            let Some(victim) = victim else { return };
            let Some(stmt) = self.stmts.map.get_mut(&victim) else {
                return;
            };
            let Some(pos) = stmt.on.iter().position(|o| o.backend == name) else {
                return;
            };
            let on = stmt.on.remove(pos);
            if stmt.cursor_on.as_deref() == Some(name.as_str()) {
                stmt.cursor_on = None;
            }
            let mut p = vec![COM_STMT_CLOSE];
            p.extend_from_slice(&on.id.to_le_bytes());
            let _ = self.slots[slot].conn.io.write_packet(0, &p).await;
        }
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
    /// sent earlier when this backend has not seen them yet (then a new
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
            // Streamed as it comes; the primary already has the types.
            return Ok(None);
        }
        let name = &self.slots[slot].backend.name;
        let Some(stmt) = self.stmts.map.get_mut(&id) else {
            return Ok(None);
        };
        let params = usize::from(stmt.params);
        let payload = &self.client.rbuf[4..4 + len];
        let bound_at = 10 + params.div_ceil(8);
        if params == 0 || payload.len() <= bound_at {
            return Ok(None);
        }
        let on = stmt.on.iter_mut().find(|o| &o.backend == name);
        if payload[bound_at] == 1 {
            let end = (bound_at + 1 + 2 * params).min(payload.len());
            stmt.types = Some(payload[bound_at + 1..end].to_vec());
            if let Some(on) = on {
                on.types_sent = true;
            }
            return Ok(None);
        }
        match (on, &stmt.types) {
            (Some(on), Some(types)) if !on.types_sent => {
                let mut p = payload.to_vec();
                p[bound_at] = 1;
                p.splice(bound_at + 1..bound_at + 1, types.iter().copied());
                on.types_sent = true;
                let mut out = Vec::with_capacity(p.len() + 4);
                frame_into(&mut out, 0, &p);
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }

    /// Runs a command of tandem's own on slot `i`, reading its response.
    async fn internal_command(
        &mut self,
        i: usize,
        packet: &[u8],
        expect: Expect,
    ) -> Result<crate::mysql::protocol::response::Outcome, crate::mysql::io::PacketError> {
        let deprecate = self.caps & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
        let conn = &mut self.slots[i].conn;
        conn.io.write_packet(0, packet).await?;
        let mut scanner = Scanner::new(expect, deprecate);
        loop {
            let (n, step) = scanner.scan(&conn.io.rbuf);
            conn.io.rbuf.advance(n);
            match step {
                Step::Done => return Ok(scanner.outcome()),
                Step::LocalInfile => conn.io.write_packet(2, &[]).await.map(|_| ())?,
                Step::NeedMore => conn.io.fill().await?,
            }
        }
    }

    /// A statement that no backend can run any more (its connection broke).
    fn statement_lost(&mut self, id: u32) -> SessionError {
        SessionError::StatementFailed(unknown_statement(id, "mysqld_stmt_execute"))
    }
}
