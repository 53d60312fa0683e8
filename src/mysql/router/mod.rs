//! Where a statement goes: pure decisions from the statement's
//! classification, the session's state and one topology snapshot. Opens no
//! socket and reads no clock (the caller passes `now` and a random number).
//!
//! Two steps: [`decide`] turns (classification, session) into an [`Intent`];
//! [`pick_read`] turns a read intent into a backend by the balance policy and
//! the backends' health.

use std::sync::Arc;
use std::time::Instant;

use crate::config::{Balance, PrimaryReads, ReadOnlyTransactions, Role, RoutingConfig};
use crate::mysql::classify::{Classification, Flags, Hint, Kind};
use crate::topology::{Backend, Snapshot};

/// Why a statement went where it went: the `reason` label of
/// `tandem_mysql_routed_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A plain read served by a read backend.
    Read,
    /// Changes data, or anything not known to be a read.
    Write,
    Ddl,
    /// Transaction control, or any statement inside a transaction.
    InTransaction,
    /// Inside `START TRANSACTION READ ONLY` running on a replica.
    ReadOnlyTransaction,
    LockingRead,
    SideEffect,
    /// LAST_INSERT_ID(), FOUND_ROWS(), SQL_CALC_FOUND_ROWS: tied to the primary's session.
    SessionFunction,
    TempTable,
    /// The session is pinned to the primary (temp table, lock, user variables...).
    SessionPinned,
    /// SET, USE and friends: run on the primary first, replayed elsewhere.
    SessionState,
    /// SHOW WARNINGS, ROW_COUNT()...: the backend that ran the previous statement.
    Diagnostics,
    Hint,
    /// A read went to the primary because no replica was usable.
    NoReplicaFallback,
    MultiStatement,
    StoredFunction,
    /// Reads a value that differs per server (`@@read_only`, `@@gtid_*`,
    /// `CONNECTION_ID()`, `MASTER_GTID_WAIT`...): the writable server's answer.
    ServerState,
    /// Not understood, or its meaning depends on an sql_mode tandem may not know.
    Unknown,
    /// `read_write_split = false`.
    SplitDisabled,
    /// Read-your-writes: no replica had the session's writes in time, or
    /// the session wrote within its `window:<ms>`.
    Consistency,
    /// Session state (SET, USE, the login's database) set on a replica
    /// because the primary cannot be reached: reads never depend on it.
    PrimaryDown,
}

/// The session state the router needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionView<'a> {
    /// The server reported IN_TRANS, or autocommit is off.
    pub in_transaction: bool,
    /// A read-only transaction runs on this backend.
    pub transaction_backend: Option<&'a str>,
    /// Pinned to the primary for the rest of the session.
    pub pinned: bool,
    /// The backend that ran the previous statement.
    pub last_backend: Option<&'a str>,
    /// In a transaction that has run nothing on the primary yet
    /// (`autocommit = 0`), and the primary cannot be reached.
    pub primary_unreachable: bool,
}

/// A decision before a backend is picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    Primary(Reason),
    /// Any backend that serves reads, by the balance policy.
    Read(Reason),
    /// This backend, by name.
    Backend(String, Reason),
    /// `START TRANSACTION READ ONLY` on a replica: pick one, and keep the
    /// transaction there.
    ReadOnlyTransaction,
}

// === impl Reason ===

impl Reason {
    pub const ALL: [Reason; 21] = [
        Reason::Read,
        Reason::Write,
        Reason::Ddl,
        Reason::InTransaction,
        Reason::ReadOnlyTransaction,
        Reason::LockingRead,
        Reason::SideEffect,
        Reason::SessionFunction,
        Reason::TempTable,
        Reason::SessionPinned,
        Reason::SessionState,
        Reason::Diagnostics,
        Reason::Hint,
        Reason::NoReplicaFallback,
        Reason::MultiStatement,
        Reason::StoredFunction,
        Reason::ServerState,
        Reason::Unknown,
        Reason::SplitDisabled,
        Reason::Consistency,
        Reason::PrimaryDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Read => "read",
            Reason::Write => "write",
            Reason::Ddl => "ddl",
            Reason::InTransaction => "in_transaction",
            Reason::ReadOnlyTransaction => "read_only_transaction",
            Reason::LockingRead => "locking_read",
            Reason::SideEffect => "side_effect",
            Reason::SessionFunction => "session_function",
            Reason::TempTable => "temp_table",
            Reason::SessionPinned => "session_pinned",
            Reason::SessionState => "session_state",
            Reason::Diagnostics => "diagnostics",
            Reason::Hint => "hint",
            Reason::NoReplicaFallback => "no_replica_fallback",
            Reason::MultiStatement => "multi_statement",
            Reason::StoredFunction => "stored_function",
            Reason::ServerState => "server_state",
            Reason::Unknown => "unknown",
            Reason::SplitDisabled => "split_disabled",
            Reason::Consistency => "consistency",
            Reason::PrimaryDown => "primary_down",
        }
    }
}

/// Decides where a classified statement should run.
pub fn decide(c: &Classification, s: &SessionView<'_>, cfg: &RoutingConfig) -> Intent {
    if !cfg.read_write_split {
        return Intent::Primary(Reason::SplitDisabled);
    }
    match &c.hint {
        Some(Hint::Primary) => return Intent::Primary(Reason::Hint),
        Some(Hint::Replica) => return Intent::Read(Reason::Hint),
        Some(Hint::Backend(name)) => return Intent::Backend(name.clone(), Reason::Hint),
        Some(Hint::Consistency(_)) | None => {}
    }
    if let Some(b) = s.transaction_backend {
        return Intent::Backend(b.to_string(), Reason::ReadOnlyTransaction);
    }
    // Reads of the previous statement's outcome: where that statement ran.
    let diagnostics = matches!(c.kind, Kind::Diagnostics)
        || c.flags.contains(Flags::ROW_COUNT)
        || c.flags.contains(Flags::DIAGNOSTICS_AREA)
        || (c.flags.contains(Flags::FOUND_ROWS) && !c.flags.contains(Flags::CALC_FOUND_ROWS));
    if diagnostics {
        return match s.last_backend {
            Some(b) => Intent::Backend(b.to_string(), Reason::Diagnostics),
            None => Intent::Primary(Reason::Diagnostics),
        };
    }
    if s.in_transaction {
        // Autocommit off (PyMySQL's default) with nothing run on the dead
        // primary yet: a read still has a replica. Reads never depend on
        // the primary; a write fails there as it must.
        if s.primary_unreachable && c.may_use_replica() {
            return Intent::Read(Reason::PrimaryDown);
        }
        return Intent::Primary(Reason::InTransaction);
    }
    if s.pinned {
        return Intent::Primary(Reason::SessionPinned);
    }
    if let Kind::Begin {
        read_only: true, ..
    } = c.kind
    {
        if cfg.read_only_transactions == ReadOnlyTransactions::Replica {
            return Intent::ReadOnlyTransaction;
        }
    }
    if c.may_use_replica() {
        return Intent::Read(Reason::Read);
    }
    Intent::Primary(primary_reason(c))
}

/// The most telling reason a statement must run on the primary: the
/// classifier's own label (one source of truth), as a [`Reason`].
fn primary_reason(c: &Classification) -> Reason {
    if c.flags.contains(Flags::TEMP_TABLE) {
        return Reason::TempTable;
    }
    match c.reason() {
        "ddl" => Reason::Ddl,
        "transaction" => Reason::InTransaction,
        "session_state" => Reason::SessionState,
        "diagnostics" => Reason::Diagnostics,
        "multi_statement" => Reason::MultiStatement,
        "locking_read" => Reason::LockingRead,
        "side_effect" => Reason::SideEffect,
        "session_function" => Reason::SessionFunction,
        "stored_function" => Reason::StoredFunction,
        "server_state" | "replication_wait" => Reason::ServerState,
        "unknown" | "mode_dependent" => Reason::Unknown,
        _ => Reason::Write,
    }
}

/// Picks a backend for a read. `random` is any random number (the caller's
/// RNG); `exclude` names backends that just failed. Returns the backend and
/// whether it is the primary standing in for missing replicas. Allocates
/// nothing: it runs for every read.
pub fn pick_read(
    snap: &Snapshot,
    cfg: &RoutingConfig,
    now: Instant,
    random: u64,
    exclude: &[&str],
) -> Option<(Arc<Backend>, bool)> {
    // Serving (the monitor's judgement: not down, draining, in maintenance,
    // broken or too far behind) and not set aside by a failed connect.
    let usable = |b: &Arc<Backend>| b.takes_reads(now) && !exclude.contains(&b.name.as_str());
    let primary_too = cfg.primary_reads == PrimaryReads::Always;
    let candidate = |b: &&Arc<Backend>| (b.role == Role::Replica || primary_too) && usable(b);
    // `read_share` (permille) is 1000 unless lag weighting lowers it; in
    // 5 % steps, which keeps the totals small and the draws exact.
    let share = |b: &Arc<Backend>| u64::from(b.read_share.div_ceil(50).max(1));
    let chosen = match cfg.balance {
        Balance::Random => nth_where(snap, random, &candidate, share),
        Balance::Weighted => {
            nth_where(snap, random, &candidate, |b| u64::from(b.weight) * share(b))
        }
        Balance::LeastOutstanding => {
            let min = snap
                .backends
                .iter()
                .filter(candidate)
                .map(|b| b.health.outstanding())
                .min();
            min.and_then(|m| {
                nth_where(
                    snap,
                    random,
                    &|b: &&Arc<Backend>| candidate(b) && b.health.outstanding() == m,
                    |_| 1,
                )
            })
        }
        Balance::PreferLocal => {
            let local = |b: &&Arc<Backend>| candidate(b) && b.local && b.role == Role::Replica;
            let replica = |b: &&Arc<Backend>| candidate(b) && b.role == Role::Replica;
            nth_where(snap, random, &local, share)
                .or_else(|| nth_where(snap, random, &replica, share))
                .or_else(|| nth_where(snap, random, &candidate, share))
        }
    };
    if let Some(b) = chosen {
        return Some((b.clone(), false));
    }
    if cfg.primary_reads == PrimaryReads::Never {
        return None;
    }
    let primary = snap.primary().filter(|b| usable(b))?;
    Some((primary.clone(), true))
}

/// The backend at point `random % total weight` among those matching
/// `keep`, each counting `weight(b)`.
fn nth_where<'a>(
    snap: &'a Snapshot,
    random: u64,
    keep: &dyn Fn(&&Arc<Backend>) -> bool,
    weight: impl Fn(&Arc<Backend>) -> u64,
) -> Option<&'a Arc<Backend>> {
    let total: u64 = snap.backends.iter().filter(keep).map(&weight).sum();
    if total == 0 {
        return None;
    }
    let mut point = random % total;
    for b in snap.backends.iter().filter(keep) {
        let w = weight(b);
        if point < w {
            return Some(b);
        }
        point -= w;
    }
    None
}

#[cfg(test)]
mod tests;
