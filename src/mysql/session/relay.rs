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
use crate::mysql::protocol::err::ServerError;
use crate::mysql::protocol::response::{Scanner, Step};
use crate::mysql::protocol::wire::header_len;
use crate::mysql::protocol::{CapabilityFlags as Cap, MAX_PAYLOAD};

/// Client error code for a lost server connection (CR_SERVER_LOST).
const CR_SERVER_LOST: u16 = 2013;

// === impl Session ===

impl Session {
    /// Relays the buffered command (`len` = its first packet's length) and
    /// its whole response.
    pub(super) async fn relay(
        &mut self,
        cmd: u8,
        expect: Expect,
        len: usize,
    ) -> Result<(), SessionError> {
        let init_db = (cmd == COM_INIT_DB && len < MAX_PAYLOAD)
            .then(|| String::from_utf8_lossy(&self.client.rbuf[5..4 + len]).into_owned());
        self.forward_command(len).await?;
        let deprecate_eof = self.caps & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
        let mut scanner = Scanner::new(expect, deprecate_eof);
        let mut relayed = 0usize;
        loop {
            let (n, step) = scanner.scan(&self.backend.io.rbuf);
            if n > 0 {
                self.client
                    .stream
                    .write_all(&self.backend.io.rbuf[..n])
                    .await
                    .map_err(SessionError::ClientIo)?;
                self.backend.io.rbuf.advance_by(n);
                relayed += n;
            }
            match step {
                Step::Done => break,
                Step::LocalInfile => {
                    self.client
                        .stream
                        .flush()
                        .await
                        .map_err(SessionError::ClientIo)?;
                    self.relay_local_infile().await?;
                    continue;
                }
                Step::NeedMore => {}
            }
            if let Err(e) = self.backend.io.fill().await {
                return Err(self.backend_lost(relayed == 0, e).await);
            }
        }
        self.client
            .stream
            .flush()
            .await
            .map_err(SessionError::ClientIo)?;
        self.shared
            .metrics
            .client_bytes_sent
            .increment(relayed as u64);
        let outcome = scanner.outcome();
        if outcome.status != 0 {
            self.status = outcome.status;
        }
        if let (Some(db), false) = (init_db, outcome.error) {
            self.database = Some(db);
        }
        Ok(())
    }

    /// Writes the command to the backend: a buffered packet in one write, or
    /// a multi-packet (>= 16 MiB) command streamed frame by frame.
    async fn forward_command(&mut self, len: usize) -> Result<(), SessionError> {
        if len < MAX_PAYLOAD {
            let n = 4 + len;
            if let Err(e) = self
                .backend
                .io
                .stream
                .write_all(&self.client.rbuf[..n])
                .await
            {
                return Err(self.backend_lost(true, PacketError::Io(e)).await);
            }
            self.client.rbuf.advance_by(n);
            return Ok(());
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
            self.stream_client_frame(frame_len).await?;
            if frame_len < MAX_PAYLOAD {
                return Ok(());
            }
        }
    }

    /// LOAD DATA LOCAL INFILE: relays the client's file packets up to and
    /// including the empty packet that ends the file.
    async fn relay_local_infile(&mut self) -> Result<(), SessionError> {
        loop {
            let frame_len = self.wait_client_header().await?;
            self.stream_client_frame(frame_len).await?;
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
    async fn stream_client_frame(&mut self, len: usize) -> Result<(), SessionError> {
        let timeout = std::time::Duration::from_millis(self.shared.config.net_read_timeout_ms);
        let mut left = 4 + len;
        loop {
            let take = left.min(self.client.rbuf.len());
            if take > 0 {
                if let Err(e) = self
                    .backend
                    .io
                    .stream
                    .write_all(&self.client.rbuf[..take])
                    .await
                {
                    return Err(self.backend_lost(false, PacketError::Io(e)).await);
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
    /// client yet, it gets a clear ERR; either way the session ends, because
    /// its server-side state (transaction, variables) is gone.
    async fn backend_lost(&mut self, nothing_sent: bool, e: PacketError) -> SessionError {
        let msg = format!(
            "Lost connection to backend '{}' ({}) during query: {e}",
            self.backend_name, self.backend_addr
        );
        if nothing_sent {
            let err = ServerError::new(CR_SERVER_LOST, "HY000", msg.clone());
            let _ = self.client.write_packet(1, &err.encode()).await;
        }
        self.shared
            .metrics
            .backend_connect_error(&self.backend_name)
            .increment(1);
        SessionError::BackendLost(self.backend_name.clone(), msg)
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
