//! Read-your-writes: which reads may go to a replica after the session
//! wrote.
//!
//! | mode          | a read goes to a replica when ...                                   |
//! |---------------|----------------------------------------------------------------------|
//! | `eventual`    | always (the monitor keeps lagging replicas out)                       |
//! | `session`     | the replica has applied the session's last write (its GTID)           |
//! | `global`      | the replica has applied everything the primary had when the read came |
//! | `window:<ms>` | the session has not written for `<ms>`                                |
//!
//! The session's GTID comes from the primary right after the write commits
//! (`SELECT @@last_gtid` on MariaDB, `@@gtid_executed` on MySQL), on the
//! connection that ran it. A replica has applied it when the monitor's last
//! position says so, or when it has already been seen to (remembered per
//! backend for the session), or when `MASTER_GTID_WAIT` (MySQL:
//! `WAIT_FOR_EXECUTED_GTID_SET`) returns within `consistency_timeout_ms`.
//! On timeout the read goes to the primary, and that replica is skipped for
//! such reads for a second, so one stopped replica costs one wait, not one
//! per read.
//!
//! The mode comes from `[mysql.routing] consistency`, the user's
//! `consistency`, `SET tandem_consistency = ...` (answered by tandem), or a
//! `/* tandem:consistency=... */` hint on one statement.

use std::time::{Duration, Instant};

use super::{Session, SessionError};
use crate::config::Consistency;
use crate::mysql::backend::query;
use crate::mysql::protocol::err::ServerError;
use crate::mysql::protocol::ok::OkInfo;
use crate::mysql::protocol::StatusFlags;
use crate::mysql::router::{Intent, Reason};
use crate::topology::gtid::Gtid;

/// How long a replica that missed a wait is skipped for consistent reads.
const BEHIND_PAUSE: Duration = Duration::from_secs(1);

/// `ER_WRONG_VALUE_FOR_VAR`.
const ER_WRONG_VALUE_FOR_VAR: u16 = 1231;

/// What the session knows about its own writes.
#[derive(Debug, Default)]
pub(super) struct Writes {
    /// When the session last wrote on the primary.
    pub last: Option<Instant>,
    /// A write not yet covered by `gtid` (committed or still in a transaction).
    pub unsynced: bool,
    /// The position that covers every write the session committed.
    pub gtid: Option<Gtid>,
    /// Positions replicas were seen to reach, by backend name.
    pub reached: Vec<(String, Gtid)>,
}

// === impl Session ===

impl Session {
    /// `SET [SESSION|@@[session.]]tandem_consistency = 'mode'`: answered by
    /// tandem, never sent to a backend. Returns false for any other
    /// statement.
    pub(super) async fn try_set_consistency(&mut self, len: usize) -> Result<bool, SessionError> {
        let sql = &self.client.rbuf[5..4 + len];
        let Some(value) = parse_set(sql) else {
            return Ok(false);
        };
        self.discard_command(len).await?;
        match Consistency::parse(&value) {
            Some(mode) => {
                self.consistency = mode;
                let ok = OkInfo {
                    status: self.status,
                    ..Default::default()
                };
                self.client
                    .write_packet(1, &ok.encode())
                    .await
                    .map_err(SessionError::ClientIo)?;
            }
            None => {
                let e = ServerError::new(
                    ER_WRONG_VALUE_FOR_VAR,
                    "42000",
                    format!(
                        "Variable 'tandem_consistency' can't be set to the value of '{value}' \
                         (eventual, session, global or window:<ms>)"
                    ),
                );
                self.reply_error(1, &e).await?;
            }
        }
        Ok(true)
    }

    /// The mode for one statement: its hint, else the session's.
    pub(super) fn mode_for(&self, hint: Option<Consistency>) -> Consistency {
        hint.unwrap_or(self.consistency)
    }

    /// Before routing: a session inside its write window reads from the primary.
    pub(super) fn consistent_intent(&self, intent: Intent, mode: Consistency) -> Intent {
        let Consistency::Window(ms) = mode else {
            return intent;
        };
        let recent = self
            .writes
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_millis(ms));
        match intent {
            Intent::Read(_) | Intent::ReadOnlyTransaction if recent => {
                Intent::Primary(Reason::Consistency)
            }
            other => other,
        }
    }

    /// Replicas to leave out of a consistent read's choice: those that just
    /// missed a wait.
    pub(super) fn behind_replicas(&self, mode: Consistency) -> Vec<String> {
        let needs = match mode {
            Consistency::Session => self.writes.gtid.is_some(),
            Consistency::Global => true,
            _ => false,
        };
        if !needs {
            return Vec::new();
        }
        let now = Instant::now();
        let snap = self.shared.topology.load();
        snap.backends
            .iter()
            .filter(|b| b.health.is_behind(now))
            .map(|b| b.name.clone())
            .collect()
    }

    /// After routing a read to replica slot `slot`: makes sure it has what
    /// `mode` requires, or moves the read to the primary.
    pub(super) async fn consistent_slot(
        &mut self,
        slot: usize,
        reason: Reason,
        mode: Consistency,
    ) -> Result<(usize, Reason), SessionError> {
        if self.is_primary_slot(slot) || self.ro_txn_slot == Some(slot) {
            return Ok((slot, reason));
        }
        let target = match mode {
            Consistency::Session => match &self.writes.gtid {
                Some(g) => g.clone(),
                None => return Ok((slot, reason)),
            },
            Consistency::Global => match self.primary_position().await {
                Some(g) => g,
                None => return self.read_on_primary().await,
            },
            _ => return Ok((slot, reason)),
        };
        let name = self.slots[slot].backend.name.clone();
        let snap = self.shared.topology.load();
        let monitored = snap
            .by_name(&name)
            .and_then(|b| b.gtid_current.clone())
            .is_some_and(|g| g.contains(&target));
        let seen = self
            .writes
            .reached
            .iter()
            .any(|(n, g)| *n == name && g.contains(&target));
        if monitored || seen {
            self.shared.metrics.consistency_read("replica").increment(1);
            return Ok((slot, reason));
        }
        if self.wait_for(slot, &target).await {
            self.shared
                .metrics
                .consistency_read("replica_waited")
                .increment(1);
            self.writes.reached.retain(|(n, _)| *n != name);
            self.writes.reached.push((name, target));
            return Ok((slot, reason));
        }
        self.slots[slot]
            .backend
            .health
            .mark_behind(Instant::now(), BEHIND_PAUSE);
        self.read_on_primary().await
    }

    /// No replica could serve the read consistently: the primary does.
    async fn read_on_primary(&mut self) -> Result<(usize, Reason), SessionError> {
        self.shared.metrics.consistency_read("primary").increment(1);
        Ok((self.primary_slot().await?, Reason::Consistency))
    }

    /// Waits (bounded) until replica slot `slot` has applied `target`.
    async fn wait_for(&mut self, slot: usize, target: &Gtid) -> bool {
        let timeout = self.shared.config.routing.consistency_timeout_ms;
        let secs = timeout as f64 / 1000.0;
        let sql = match target {
            Gtid::Mysql(_) => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{target}', {secs:.3})"),
            _ => format!("SELECT MASTER_GTID_WAIT('{target}', {secs:.3})"),
        };
        // Past the server's own timeout, the connection is in doubt.
        let bound = Duration::from_millis(timeout + 2_000);
        let conn = self.slots[slot].conn();
        match tokio::time::timeout(bound, query::query(conn, &sql)).await {
            Ok(Ok(r)) => {
                r.rows
                    .first()
                    .and_then(|row| row.first())
                    .cloned()
                    .flatten()
                    == Some("0".to_string())
            }
            _ => false,
        }
    }

    /// The primary's current position (`global` mode).
    async fn primary_position(&mut self) -> Option<Gtid> {
        let slot = self.primary_slot().await.ok()?;
        let conn = self.slots[slot].conn();
        let r = query::query(conn, "SELECT @@gtid_binlog_pos").await;
        let r = match r {
            Ok(r) => r,
            Err(query::QueryError::Server(_)) => {
                query::query(conn, "SELECT @@global.gtid_executed")
                    .await
                    .ok()?
            }
            Err(_) => return None,
        };
        let text = r.rows.first()?.first()?.clone()?;
        Gtid::parse(&text).ok()
    }

    /// After a statement on the primary: remembers when the session wrote,
    /// and once the write is committed, its GTID (`session` mode).
    pub(super) async fn note_write(&mut self, slot: usize, wrote: bool, error: bool) {
        if !self.is_primary_slot(slot) || self.slots[slot].conn.is_none() {
            return;
        }
        if wrote && !error {
            self.writes.last = Some(Instant::now());
            self.writes.unsynced = true;
        }
        let committed = self.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() == 0;
        if !self.writes.unsynced || !committed || self.consistency != Consistency::Session {
            return;
        }
        self.writes.unsynced = false;
        let conn = self.slots[slot].conn();
        let r = match query::query(conn, "SELECT @@last_gtid").await {
            Ok(r) => Ok(r),
            Err(query::QueryError::Server(_)) => {
                query::query(conn, "SELECT @@global.gtid_executed").await
            }
            Err(e) => Err(e),
        };
        let gtid = r
            .ok()
            .and_then(|r| r.rows.first()?.first()?.clone())
            .and_then(|t| Gtid::parse(&t).ok());
        match gtid {
            Some(g) if !g.is_empty() => {
                let merged = match &self.writes.gtid {
                    Some(old) => old.merge(&g),
                    None => g,
                };
                self.writes.gtid = Some(merged);
            }
            // The statement wrote nothing to the binary log (no row
            // changed): nothing new to wait for.
            Some(_) => {}
            // Unknown position: no replica can be shown to have it, so the
            // session's reads go to the primary until a later write tells.
            None => self.writes.gtid = Some(Gtid::Mariadb(vec![(u32::MAX, 0, u64::MAX)])),
        }
    }
}

/// The value of `SET tandem_consistency = value` in its accepted spellings,
/// or None for any other statement.
fn parse_set(sql: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(sql)
        .ok()?
        .trim()
        .trim_end_matches(';')
        .trim();
    let lower = text.to_ascii_lowercase();
    let rest = lower.strip_prefix("set")?;
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix("session ")
        .or_else(|| rest.strip_prefix("@@session."))
        .or_else(|| rest.strip_prefix("@@"))
        .unwrap_or(rest)
        .trim_start();
    let rest = rest.strip_prefix("tandem_consistency")?.trim_start();
    let rest = rest.strip_prefix('=').or_else(|| rest.strip_prefix(":="))?;
    // Take the value from the original text, to keep its case for errors.
    let start = text.len() - rest.len();
    let value = text[start..].trim().trim_matches(|c| c == '\'' || c == '"');
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_forms() {
        let v = |s: &str| parse_set(s.as_bytes());
        assert_eq!(
            v("SET tandem_consistency = 'session'"),
            Some("session".into())
        );
        assert_eq!(
            v("set SESSION tandem_consistency=global;"),
            Some("global".into())
        );
        assert_eq!(
            v("SET @@tandem_consistency := \"window:200\""),
            Some("window:200".into())
        );
        assert_eq!(
            v("SET @@session.tandem_consistency = eventual"),
            Some("eventual".into())
        );
        assert_eq!(v("SET tandem_consistency = 'Bad'"), Some("Bad".into()));
        assert_eq!(v("SET autocommit = 1"), None);
        assert_eq!(v("SETtandem_consistency = 1"), None);
        assert_eq!(v("SET tandem_consistency"), None);
    }
}
