//! The hot path: relay one command to the backend and its response back,
//! as raw bytes.
//!
//! Per command, in the common case: one read from the client (already done
//! by `next_command`), one write to the backend, one read from the backend,
//! one write to the client. Bytes are never copied into per-row buffers and
//! nothing is allocated per query: both read buffers are reused.

use tokio::io::AsyncWriteExt;

use super::{AdvanceBy, Session, SessionError};
use crate::mysql::io::{PacketError, PacketIo};
use crate::mysql::protocol::command::{Expect, COM_INIT_DB};
use crate::mysql::protocol::err::{self, ServerError};
use crate::mysql::protocol::response::{Outcome, Scanner, Step};
use crate::mysql::protocol::wire::header_len;
use crate::mysql::protocol::{CapabilityFlags as Cap, StatusFlags, MAX_PAYLOAD};

/// How much a client may send ahead of its answer while tandem waits for a
/// backend (pipelined commands), before tandem stops reading from it.
const CLIENT_READ_AHEAD: usize = 1 << 20;

/// Changes to a relayed command (prepared statements).
#[derive(Debug, Default)]
pub(super) struct RelayOpts {
    /// The command packet (header included) to send instead of the client's
    /// bytes, which are still consumed: a statement id or parameter types
    /// rewritten for the backend.
    pub packet: Option<Vec<u8>>,
}

// === impl Session ===

impl Session {
    /// Relays the buffered command (`len` = its first packet's length) to
    /// slot `slot` and its whole response back.
    ///
    /// The command stays in the client buffer until the first response bytes
    /// arrive: if a replica breaks before that, nothing reached the client
    /// and `SessionError::Retry` lets the caller run it elsewhere.
    pub(super) async fn relay(
        &mut self,
        slot: usize,
        cmd: u8,
        expect: Expect,
        len: usize,
    ) -> Result<Outcome, SessionError> {
        self.relay_with(slot, cmd, expect, len, RelayOpts::default())
            .await
    }

    /// [`Session::relay`] with a rewritten command and/or response.
    pub(super) async fn relay_with(
        &mut self,
        slot: usize,
        cmd: u8,
        expect: Expect,
        len: usize,
        opts: RelayOpts,
    ) -> Result<Outcome, SessionError> {
        self.note_current_slot(slot);
        let init_db = (cmd == COM_INIT_DB && len < MAX_PAYLOAD)
            .then(|| String::from_utf8_lossy(&self.client.rbuf[5..4 + len]).into_owned());
        if self
            .handle
            .kill_query
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            // KILL QUERY arrived before the statement reached a backend.
            return Err(SessionError::StatementFailed(
                ServerError::query_interrupted(),
            ));
        }
        // Cleared when the scanner saw the whole response: a connection left
        // mid-response (an error, a client that leaves) is never pooled.
        self.slots[slot].conn().awaiting_response = true;
        let mut unconsumed = self.forward_command(slot, len, opts.packet).await?;
        let deprecate_eof = self.caps & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
        let mut scanner = Scanner::new(expect, deprecate_eof);
        let mut relayed = 0usize;
        loop {
            let conn = self.slots[slot].conn();
            let (n, step) = scanner.scan(&conn.io.rbuf);
            if n > 0 {
                if let Some(k) = unconsumed.take() {
                    self.client.rbuf.advance_by(k);
                }
                self.client
                    .stream
                    .write_all(&conn.io.rbuf[..n])
                    .await
                    .map_err(SessionError::ClientIo)?;
                conn.io.rbuf.advance_by(n);
                relayed += n;
            }
            match step {
                Step::Done => {
                    conn.awaiting_response = false;
                    break;
                }
                Step::LocalInfile => {
                    self.client
                        .stream
                        .flush()
                        .await
                        .map_err(SessionError::ClientIo)?;
                    self.relay_local_infile(slot).await?;
                    continue;
                }
                Step::NeedMore => {}
            }
            if let Err(e) = self.fill_backend(slot).await? {
                if relayed == 0
                    && unconsumed.is_some()
                    && slot != 0
                    && self.ro_txn_slot != Some(slot)
                {
                    return Err(SessionError::Retry);
                }
                if let Some(k) = unconsumed.take() {
                    self.client.rbuf.advance_by(k);
                }
                return Err(self.backend_lost(slot, relayed == 0, e).await);
            }
        }
        if let Some(k) = unconsumed.take() {
            self.client.rbuf.advance_by(k);
        }
        self.flush_client(relayed).await?;
        let outcome = scanner.outcome();
        if outcome.has_status {
            self.status = outcome.status;
        }
        if let (Some(db), false) = (init_db, outcome.error) {
            self.state.record_database(&db);
            self.slots[slot].applied = self.state.version();
            self.database = Some(db);
        }
        Ok(outcome)
    }

    /// Flushes what was written to the client for this command (`sent`
    /// bytes, for the metrics).
    pub(super) async fn flush_client(&mut self, sent: usize) -> Result<(), SessionError> {
        self.client
            .stream
            .flush()
            .await
            .map_err(SessionError::ClientIo)?;
        self.shared.metrics.client_bytes_sent.increment(sent as u64);
        Ok(())
    }

    /// Waits for more of slot `slot`'s response. Meanwhile whatever the client
    /// sends is read ahead into its buffer (a pipelined next command waits
    /// there), so a client that leaves mid-statement ends the session at
    /// once instead of leaving it waiting with a backend connection.
    async fn fill_backend(&mut self, slot: usize) -> Result<Result<(), PacketError>, SessionError> {
        let Some(conn) = self.slots[slot].conn.as_mut() else {
            return Ok(Err(PacketError::Closed));
        };
        let client = &mut self.client;
        loop {
            // Past this much read-ahead the client waits for its answer
            // first (TCP back-pressure), as it would with the server.
            let watch = client.rbuf.len() < CLIENT_READ_AHEAD;
            tokio::select! {
                biased;
                r = conn.io.fill() => return Ok(r),
                r = client.fill(), if watch => r.map_err(SessionError::from_packet)?,
            }
        }
    }

    /// Writes the command to slot `slot`: a buffered packet in one write
    /// (left in the client buffer; returns its size for the caller to
    /// consume), or a multi-packet (>= 16 MiB) command streamed frame by frame.
    async fn forward_command(
        &mut self,
        slot: usize,
        len: usize,
        packet: Option<Vec<u8>>,
    ) -> Result<Option<usize>, SessionError> {
        if len < MAX_PAYLOAD {
            let n = 4 + len;
            let conn = self.slots[slot].conn();
            let bytes = packet.as_deref().unwrap_or(&self.client.rbuf[..n]);
            if let Err(e) = conn.io.stream.write_all(bytes).await {
                if slot != 0 && self.ro_txn_slot != Some(slot) {
                    return Err(SessionError::Retry);
                }
                self.client.rbuf.advance_by(n);
                return Err(self.backend_lost(slot, true, PacketError::Io(e)).await);
            }
            return Ok(Some(n));
        }
        let max = self.shared.config.max_allowed_packet as usize;
        let mut total = 0usize;
        loop {
            let frame_len = self.wait_client_header().await?;
            total += frame_len;
            if total > max {
                // The backend holds a partial command now; like mysqld, the
                // session ends with ER_NET_PACKET_TOO_LARGE.
                return Err(SessionError::Refused(ServerError::packet_too_large(), 1));
            }
            self.stream_client_frame(slot, frame_len).await?;
            if frame_len < MAX_PAYLOAD {
                return Ok(None);
            }
        }
    }

    /// LOAD DATA LOCAL INFILE: relays the client's file packets up to and
    /// including the empty packet that ends the file.
    async fn relay_local_infile(&mut self, slot: usize) -> Result<(), SessionError> {
        loop {
            let frame_len = self.wait_client_header().await?;
            self.stream_client_frame(slot, frame_len).await?;
            if frame_len == 0 {
                return Ok(());
            }
        }
    }

    /// Waits for the next client packet header; returns its payload length.
    async fn wait_client_header(&mut self) -> Result<usize, SessionError> {
        let timeout = std::time::Duration::from_millis(self.shared.config.net_read_timeout_ms);
        while self.client.rbuf.len() < 4 {
            fill_within(&mut self.client, timeout).await?;
        }
        Ok(header_len(&self.client.rbuf))
    }

    /// Forwards one client packet (header + `len` payload bytes) to the
    /// backend as it arrives, without buffering it whole.
    async fn stream_client_frame(&mut self, slot: usize, len: usize) -> Result<(), SessionError> {
        let timeout = std::time::Duration::from_millis(self.shared.config.net_read_timeout_ms);
        let mut left = 4 + len;
        loop {
            let take = left.min(self.client.rbuf.len());
            if take > 0 {
                if let Err(e) = self.slots[slot]
                    .conn()
                    .io
                    .stream
                    .write_all(&self.client.rbuf[..take])
                    .await
                {
                    return Err(self.backend_lost(slot, false, PacketError::Io(e)).await);
                }
                self.client.rbuf.advance_by(take);
                left -= take;
            }
            if left == 0 {
                return Ok(());
            }
            fill_within(&mut self.client, timeout).await?;
        }
    }

    /// The backend connection broke. If nothing of the response reached the
    /// client yet, this statement gets an ERR naming the backend and the
    /// session goes on without that connection: what lived there (an open
    /// transaction, temporary tables, locks) is gone, as it would be with the
    /// server directly, and the next statement gets a fresh connection. If
    /// part of the answer was sent, the client's protocol stream cannot be
    /// repaired: the session ends.
    pub(super) async fn backend_lost(
        &mut self,
        slot: usize,
        nothing_sent: bool,
        e: PacketError,
    ) -> SessionError {
        let backend = self.slots[slot].backend.clone();
        self.shared
            .metrics
            .backend_connect_error(&backend.name)
            .increment(1);
        let retry = std::time::Duration::from_millis(self.shared.config.routing.backend_retry_ms);
        backend.health.mark_down(std::time::Instant::now(), retry);
        let msg = format!(
            "tandem: lost the connection to backend '{}' ({}) during this statement: {e}; \
             a transaction open there is rolled back",
            backend.name, backend.address
        );
        if !nothing_sent {
            return SessionError::BackendLost(backend.name.clone(), msg);
        }
        self.connection_lost(slot);
        let err = ServerError::new(err::ER_CONNECT_TO_FOREIGN_DATA_SOURCE, "HY000", msg);
        match self.client.write_packet(1, &err.encode()).await {
            Ok(_) => SessionError::Answered,
            Err(e) => SessionError::ClientIo(e),
        }
    }

    /// Slot `slot`'s connection broke: the session forgets it and what lived
    /// on it.
    fn connection_lost(&mut self, slot: usize) {
        self.slots[slot].conn = None;
        self.stmts.connection_lost(slot);
        if self.ro_txn_slot == Some(slot) {
            self.ro_txn_slot = None;
        }
        if slot == 0 {
            self.status &= !StatusFlags::SERVER_STATUS_IN_TRANS.bits();
        }
        if self.pinned != Some(super::route::PIN_RELAYED_LOGIN) {
            self.pinned = None;
        }
        self.hold = None;
        self.current_slot = None;
    }

    /// Reads and drops the rest of a command tandem answers itself.
    pub(super) async fn discard_command(&mut self, len: usize) -> Result<(), SessionError> {
        let timeout = std::time::Duration::from_millis(self.shared.config.net_read_timeout_ms);
        let mut left = 4 + len;
        let mut frame = len;
        loop {
            let take = left.min(self.client.rbuf.len());
            self.client.rbuf.advance_by(take);
            left -= take;
            if left > 0 {
                fill_within(&mut self.client, timeout).await?;
                continue;
            }
            if frame < MAX_PAYLOAD {
                return Ok(());
            }
            frame = self.wait_client_header().await?;
            left = 4 + frame;
        }
    }
}

pub(super) async fn fill_within(
    io: &mut PacketIo,
    timeout: std::time::Duration,
) -> Result<(), SessionError> {
    match tokio::time::timeout(timeout, io.fill()).await {
        Ok(r) => r.map_err(SessionError::from_packet),
        Err(_) => Err(SessionError::ReadTimeout),
    }
}
