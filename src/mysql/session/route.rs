//! Read/write splitting for one session: classify a COM_QUERY, let the
//! router decide, bring the chosen backend connection to the session's state,
//! and, after the response, update what the session tracks (transaction,
//! pins, replayable state).

use std::time::{Duration, Instant};

use rand::Rng;

use super::backends::SlotError;
use super::{Session, SessionError};
use crate::mysql::classify::{self, Classification, Flags, Kind};
use crate::mysql::protocol::err::{
    ServerError, ER_CONNECT_TO_FOREIGN_DATA_SOURCE, ER_OPTION_PREVENTS_STATEMENT,
};
use crate::mysql::protocol::response::Outcome;
use crate::mysql::protocol::{StatusFlags, MAX_PAYLOAD};
use crate::mysql::router::{self, Intent, Reason, SessionView};

/// What to do once the statement's response has been relayed.
#[derive(Debug, Default)]
pub(super) struct After {
    /// A SET/USE to replay on the session's other backends (when it succeeds).
    record: Option<Vec<u8>>,
    /// `USE db`: the session's current database.
    database: Option<String>,
    /// `DROP DATABASE db`: unselects `db` if it is the current database.
    dropped_database: Option<String>,
    /// Pin the session to the primary, with this reason.
    pin: Option<&'static str>,
    /// UNLOCK TABLES releases a LOCK TABLES pin.
    unlock_tables: bool,
    /// This statement starts a read-only transaction on its (replica) slot.
    read_only_transaction: bool,
    /// SQL_CALC_FOUND_ROWS: keep the connection for the FOUND_ROWS() after it.
    pub hold: bool,
    /// It may change data: read-your-writes starts counting.
    pub writes: bool,
}

/// Pin reasons (shown in logs and /status).
const PIN_TEMP_TABLE: &str = "temporary table";
const PIN_LOCK: &str = "named lock (GET_LOCK)";
const PIN_LOCK_TABLES: &str = "LOCK TABLES";
const PIN_USER_VARS: &str = "user variable assigned by a query";
const PIN_MULTI: &str = "multi-statement query";
const PIN_STATEMENT_STATE: &str = "connection-bound statement state";
const PIN_STATE_FULL: &str = "too many session state changes to replay";
/// A pass-through login the primary checked (`relay_login.rs`): no other
/// connection can be opened as this user.
pub(super) const PIN_RELAYED_LOGIN: &str = "login relayed to the primary (no reusable credentials)";

// === impl Session ===

impl Session {
    /// Routes the buffered COM_QUERY (`len` = its packet length).
    pub(super) async fn route_query(&mut self, len: usize) -> Result<(usize, After), SessionError> {
        if len >= MAX_PAYLOAD {
            // A statement of 16 MiB or more is streamed, never inspected.
            return Ok((self.primary_slot().await?, After::default()));
        }
        let sql = &self.client.rbuf[5..4 + len];
        let c = classify::classify(sql, &self.classify_options());
        let after = after_for(&c, sql);
        let intent = router::decide(&c, &self.session_view(), &self.shared.config.routing);
        let (slot, reason) = self.resolve_consistent(intent, &c).await?;
        self.shared
            .metrics
            .routed(&self.slots[slot].backend.name, reason);
        Ok((slot, after))
    }

    /// How the classifier must read this session's statements (sql_mode
    /// flags as the server reported them in the last status).
    pub(super) fn classify_options(&self) -> classify::Options<'_> {
        classify::Options {
            ansi_quotes: self.status & StatusFlags::SERVER_STATUS_ANSI_QUOTES.bits() != 0,
            no_backslash_escapes: self.status
                & StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES.bits()
                != 0,
            read_only_functions: &self.shared.config.routing.read_only_functions,
        }
    }

    /// The session as the router sees it (borrowed: nothing is allocated
    /// per statement).
    pub(super) fn session_view(&self) -> SessionView<'_> {
        let in_transaction = self.in_transaction();
        SessionView {
            in_transaction,
            // Looked up only inside a transaction that holds no primary
            // connection: never on the plain read path.
            primary_unreachable: in_transaction
                && self.slots[0].conn.is_none()
                && !self.primary_reachable(),
            transaction_backend: self
                .ro_txn_slot
                .map(|i| self.slots[i].backend.name.as_str()),
            pinned: self.pinned.is_some(),
            last_backend: self.last_slot.map(|i| self.slots[i].backend.name.as_str()),
        }
    }

    /// The primary's slot (always 0), brought to the session's state.
    ///
    /// While no primary can be reached (it restarts, a VIP moves, a failover
    /// runs) the statement waits for one, up to `[mysql.failover]
    /// write_pause_ms`, then fails with ERR 1290. Its pool being exhausted,
    /// or its refusal of the session's own state (a replayed SET), fails the
    /// statement at once. Either way the session goes on.
    pub(super) async fn primary_slot(&mut self) -> Result<usize, SessionError> {
        let pause = Duration::from_millis(self.shared.config.failover.write_pause_ms);
        let deadline = Instant::now() + pause;
        let shared = self.shared.clone();
        loop {
            // Created before the check: a publish in between still wakes it.
            let changed = shared.topology.changed();
            if let Ok(slot) = self.try_primary_slot().await? {
                return Ok(slot);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SessionError::StatementFailed(self.no_primary(pause)));
            }
            // A new snapshot (the monitor saw a primary again), the end of
            // a connect backoff, or the deadline.
            let retry_at = shared
                .topology
                .load()
                .primary()
                .and_then(|p| p.health.usable_at(now))
                .map_or(deadline, |t| t.min(deadline));
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(retry_at.into()) => {}
            }
        }
    }

    /// The primary's slot if it can be reached now; `Ok(Err(why))` when it
    /// cannot (the monitor or a recent connect says so, or this connect
    /// failed). Other errors (the server's refusal, a full pool) fail the
    /// statement.
    async fn try_primary_slot(&mut self) -> Result<Result<usize, ServerError>, SessionError> {
        if self.slots[0].conn.is_none() && !self.primary_reachable() {
            // Down for the monitor (its reason says why) or after a failed
            // connect of a session.
            let snap = self.shared.topology.load();
            let p = snap.primary().unwrap_or(&self.slots[0].backend);
            let why = match &p.reason {
                Some(r) => format!("it is down: {r}"),
                None => "it is down (a connect failed moments ago)".to_string(),
            };
            let e = ServerError::backend_unreachable(&p.name, &p.address, &why);
            return Ok(Err(e));
        }
        match self.primary_slot_inner().await {
            Ok(i) => Ok(Ok(i)),
            Err(SlotError(e)) if e.code == ER_CONNECT_TO_FOREIGN_DATA_SOURCE => Ok(Err(e)),
            Err(SlotError(e)) => Err(SessionError::StatementFailed(e)),
        }
    }

    /// ERR 1290 for a statement that waited `pause` for a primary in vain.
    fn no_primary(&self, pause: Duration) -> ServerError {
        let snap = self.shared.topology.load();
        let which = match snap.primary() {
            Some(p) => format!("'{}' ({}) cannot be reached", p.name, p.address),
            None => "none is known".to_string(),
        };
        ServerError::new(
            ER_OPTION_PREVENTS_STATEMENT,
            "HY000",
            format!(
                "tandem: no primary for this write: {which} (waited {} ms, [mysql.failover] write_pause_ms)",
                pause.as_millis()
            ),
        )
    }

    /// The primary's slot (0). While the session holds no connection there,
    /// it follows the topology: after a failover or switchover the next
    /// statement goes to the new primary.
    pub(super) async fn primary_slot_inner(&mut self) -> Result<usize, SlotError> {
        if self.slots[0].conn.is_none() {
            let snap = self.shared.topology.load();
            if let Some(p) = snap.primary() {
                if p.name != self.slots[0].backend.name {
                    self.slots[0] = super::backends::Slot::new(p.clone());
                    self.stmts.connection_lost(0);
                }
            }
        }
        let primary = self.slots[0].backend.clone();
        self.slot_for(&primary).await
    }

    /// Where SET, USE and COM_INIT_DB run: the primary, or while the
    /// primary cannot be reached a replica (the state log replays them on
    /// the primary once it is back).
    pub(super) async fn state_slot(&mut self) -> Result<usize, SessionError> {
        self.resolve(Intent::Primary(Reason::SessionState), Vec::new())
            .await
            .map(|(i, _)| i)
    }

    /// The primary takes writes and its last connect did not fail (the
    /// monitor's and the data path's view).
    pub(super) fn primary_reachable(&self) -> bool {
        let snap = self.shared.topology.load();
        snap.primary()
            .is_some_and(|p| p.takes_writes() && p.health.is_usable(Instant::now()))
    }

    /// Slot 0 is always the primary's.
    pub(super) fn is_primary_slot(&self, i: usize) -> bool {
        i == 0
    }

    /// [`Session::resolve`] under the session's read-your-writes mode (or
    /// the statement's consistency hint).
    pub(super) async fn resolve_consistent(
        &mut self,
        intent: Intent,
        c: &Classification,
    ) -> Result<(usize, Reason), SessionError> {
        let hinted = match c.hint {
            Some(classify::Hint::Consistency(m)) => Some(m),
            _ => None,
        };
        let mode = self.mode_for(hinted);
        if mode == crate::config::Consistency::Eventual {
            return self.resolve(intent, Vec::new()).await;
        }
        let intent = self.consistent_intent(intent, mode);
        let avoid = self.behind_replicas(mode);
        let (slot, reason) = self.resolve(intent, avoid).await?;
        self.consistent_slot(slot, reason, mode).await
    }

    /// Turns an intent into a slot, trying other backends when one cannot be
    /// reached (nothing of the statement was sent yet, so that is safe).
    /// Reads leave out the replicas in `avoid`.
    pub(super) async fn resolve(
        &mut self,
        intent: Intent,
        avoid: Vec<String>,
    ) -> Result<(usize, Reason), SessionError> {
        let holds_primary = self.slots[0].conn.is_some();
        // Why the primary could not serve, if it was tried: the error a
        // client gets when no replica can either.
        let mut primary_error = None;
        let intent = match intent {
            // Session state needs no primary: without one, a replica takes
            // it at once (no write pause).
            Intent::Primary(Reason::SessionState) if !holds_primary => {
                match self.try_primary_slot().await? {
                    Ok(i) => return Ok((i, Reason::SessionState)),
                    Err(e) => {
                        primary_error = Some(e);
                        Intent::Read(Reason::PrimaryDown)
                    }
                }
            }
            other => other,
        };
        let (read_reason, ro_txn) = match intent {
            Intent::Primary(r) => return Ok((self.primary_slot().await?, r)),
            Intent::Backend(name, r) => {
                let snap = self.shared.topology.load();
                let backend = self
                    .slots
                    .iter()
                    .find(|s| s.backend.name == name)
                    .map(|s| s.backend.clone())
                    .or_else(|| snap.by_name(&name).cloned());
                // A hint names a replica: honoured while it takes reads.
                let now = Instant::now();
                if let Some(b) = backend.filter(|b| b.takes_reads(now) || r != Reason::Hint) {
                    if b.name != self.slots[0].backend.name {
                        if let Ok(i) = self.slot_for(&b).await {
                            return Ok((i, r));
                        }
                    }
                }
                return Ok((self.primary_slot().await?, r));
            }
            Intent::Read(r) => (r, false),
            Intent::ReadOnlyTransaction => (Reason::ReadOnlyTransaction, true),
        };
        let snap = self.shared.topology.load();
        let mut excluded = avoid;
        loop {
            let refs: Vec<&str> = excluded.iter().map(String::as_str).collect();
            let random = rand::thread_rng().gen::<u64>();
            let picked = router::pick_read(
                &snap,
                &self.shared.config.routing,
                Instant::now(),
                random,
                &refs,
            );
            let Some((backend, fallback)) = picked else {
                let e = primary_error
                    .unwrap_or_else(|| no_read_backend(&snap, &self.shared.config.routing));
                return Err(SessionError::StatementFailed(e));
            };
            let reason = if fallback {
                Reason::NoReplicaFallback
            } else {
                read_reason
            };
            if backend.name == self.slots[0].backend.name {
                let _ = ro_txn;
                // A read does not wait for a primary (no write pause).
                match self.try_primary_slot().await? {
                    Ok(i) => return Ok((i, reason)),
                    Err(e) => {
                        primary_error.get_or_insert(e);
                        excluded.push(backend.name.clone());
                        continue;
                    }
                }
            }
            match self.slot_for(&backend).await {
                Ok(i) => return Ok((i, reason)),
                Err(SlotError(_)) => excluded.push(backend.name.clone()),
            }
        }
    }

    /// True when the next statement belongs to an open transaction: the
    /// server said IN_TRANS, or autocommit is off (every statement then
    /// opens or continues one).
    pub(super) fn in_transaction(&self) -> bool {
        self.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0
            || self.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() == 0
    }

    /// Updates the session after a routed statement ran on `slot`.
    pub(super) fn after_statement(&mut self, slot: usize, outcome: &Outcome, after: After) {
        self.last_slot = Some(slot);
        let in_trans = outcome.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0;
        if after.read_only_transaction && slot != 0 && in_trans {
            self.ro_txn_slot = Some(slot);
        } else if self.ro_txn_slot == Some(slot) && !in_trans {
            self.ro_txn_slot = None;
        }
        if let Some(reason) = after.pin {
            self.pin(reason);
        }
        if outcome.diagnostics || after.hold {
            let hold =
                std::time::Duration::from_millis(self.shared.config.pool.hold_for_diagnostics_ms);
            self.hold = Some((slot, Instant::now() + hold));
        }
        if after.unlock_tables && self.pinned == Some(PIN_LOCK_TABLES) {
            self.pinned = None;
        }
        if outcome.error {
            return;
        }
        if let Some(db) = after.database {
            self.database = Some(db);
        }
        if after.dropped_database.is_some() && after.dropped_database == self.database {
            // MariaDB unselects a dropped current database; a connection
            // that still has it selected must not be taken for this one.
            self.database = None;
            self.state.forget_database();
            self.slots[slot].applied = self.state.version();
        }
        if let Some(sql) = after.record {
            if self.state.record(&sql) {
                // It ran here, so this connection already has it.
                self.slots[slot].applied = self.state.version();
            } else {
                self.pin(PIN_STATE_FULL);
            }
        }
    }

    fn pin(&mut self, reason: &'static str) {
        if self.pinned.is_none() {
            tracing::debug!(id = self.handle.id, reason, "session pinned to the primary");
            self.pinned = Some(reason);
        }
    }
}

/// Why no backend can take a read: every replica is out, and the primary
/// may not take reads (`primary_reads = "never"`) or is out too.
fn no_read_backend(
    snap: &crate::topology::Snapshot,
    cfg: &crate::config::RoutingConfig,
) -> ServerError {
    let message = match (snap.primary(), cfg.primary_reads) {
        (_, crate::config::PrimaryReads::Never) => {
            "tandem: no replica is available for this read (primary_reads = \"never\")".to_string()
        }
        (Some(p), _) => format!(
            "tandem: no backend is available for this read: no replica serves, and the primary '{}' ({}) cannot be reached",
            p.name, p.address
        ),
        (None, _) => "tandem: no backend is available for this read: no replica serves, and no primary is known".to_string(),
    };
    ServerError::new(ER_CONNECT_TO_FOREIGN_DATA_SOURCE, "HY000", message)
}

/// Post-response actions implied by a statement's classification.
fn after_for(c: &Classification, sql: &[u8]) -> After {
    let mut a = After::default();
    let f = c.flags;
    match c.kind {
        Kind::Use => {
            a.database = classify::use_database(sql);
            a.record = Some(sql.to_vec());
        }
        Kind::Set | Kind::SetTransaction => {
            let global = f.contains(Flags::GLOBAL_VARIABLE);
            // `SET TRANSACTION` without SESSION applies to the next
            // transaction only, which runs on the primary anyway.
            let next_transaction_only =
                matches!(c.kind, Kind::SetTransaction) && !f.contains(Flags::SESSION_VARIABLE);
            let computed = contains_word(sql, b"select")
                || f.contains(Flags::STORED_FUNCTION)
                || f.contains(Flags::SIDE_EFFECT);
            if computed {
                a.pin = Some(PIN_USER_VARS);
            } else if !global && !next_transaction_only {
                a.record = Some(sql.to_vec());
            }
        }
        Kind::Ddl => a.dropped_database = classify::dropped_database(sql),
        Kind::LockTables => a.pin = Some(PIN_LOCK_TABLES),
        Kind::UnlockTables => a.unlock_tables = true,
        Kind::SqlPrepare | Kind::SqlExecute => a.pin = Some(PIN_STATEMENT_STATE),
        Kind::Begin {
            read_only: true, ..
        } => a.read_only_transaction = true,
        _ => {}
    }
    a.hold = f.contains(Flags::CALC_FOUND_ROWS);
    a.writes = writes(c);
    if a.pin.is_none() {
        a.pin = if f.contains(Flags::MULTI_STATEMENT) {
            Some(PIN_MULTI)
        } else if f.contains(Flags::TEMP_TABLE) {
            Some(PIN_TEMP_TABLE)
        } else if f.contains(Flags::LOCK_FUNCTION) {
            Some(PIN_LOCK)
        } else if f.contains(Flags::USER_VAR_ASSIGN) && !matches!(c.kind, Kind::Set) {
            Some(PIN_USER_VARS)
        } else if matches!(c.kind, Kind::Other) && c.hint.is_none() {
            // Not understood: it ran on the primary and may have changed
            // session state tandem cannot replay.
            Some(PIN_STATEMENT_STATE)
        } else {
            None
        };
    }
    a
}

/// Post-response actions for an executed prepared statement: as for its
/// text, except that a SET or USE with placeholders cannot be replayed as
/// text, so the connection that ran it is kept instead (a pin). A prepared
/// `CREATE TEMPORARY TABLE`, `GET_LOCK(?)` or `LOCK TABLES` pins as its text does.
pub(super) fn after_prepared(c: &Classification, sql: &[u8]) -> After {
    let mut a = after_for(c, sql);
    let replayable = a.record.take().is_some() | a.database.take().is_some();
    if replayable && a.pin.is_none() {
        a.pin = Some(PIN_STATEMENT_STATE);
    }
    a
}

/// True for statements that may change data (and so start a
/// read-your-writes wait): anything but reads and session/transaction control.
pub(super) fn writes(c: &Classification) -> bool {
    matches!(
        c.kind,
        Kind::Write | Kind::Ddl | Kind::Commit { .. } | Kind::Xa | Kind::Admin | Kind::Other
    )
}

/// Case-insensitive whole-word search (a cheap check on rare statements).
fn contains_word(sql: &[u8], word: &[u8]) -> bool {
    sql.windows(word.len()).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(word)
            && (i == 0 || !sql[i - 1].is_ascii_alphanumeric())
            && sql
                .get(i + word.len())
                .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_')
    })
}
