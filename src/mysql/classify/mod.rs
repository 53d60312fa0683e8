//! Statement classification for read/write splitting: statement bytes (+ the
//! session's quoting modes) -> [`Classification`]. Pure: no I/O, no clock, and no
//! allocation on the common path (a `Hint::Backend` name and the sqlparser
//! fallback allocate).
//!
//! The rule it is built around: **anything not understood goes to the primary.**
//! A wrong "read" is a lost write or a wrong result; a wrong "write" only costs
//! performance. So unknown statements are [`Kind::Other`], unknown functions are
//! [`Flags::STORED_FUNCTION`], and a read is replica-safe only when
//! [`Classification::may_use_replica`] says so.
//!
//! # How
//! A hand-written lexer (`lexer.rs`) feeds the statement parsers (`statement.rs`,
//! `set.rs`, `ddl.rs`, `transaction.rs`), which read the first keyword(s), and a
//! flag scanner (`scan.rs`) that sees every other token (`FOR UPDATE`, `INTO`,
//! `:=`, `@var`, `@@var`, calls). sqlparser (`fallback.rs`) is used only when the
//! lexer cannot walk a `WITH` statement's shape ([`Decider::Parser`]), and for
//! [`tables`].
//!
//! # What a router must know
//! - **Multi-statements** ([`Flags::MULTI_STATEMENT`]): `kind` is the first
//!   statement's, `flags` the union over all statements. Any session state may
//!   have changed afterwards (pin to the primary).
//! - **Diagnostics** ([`Kind::Diagnostics`]: `SHOW WARNINGS|ERRORS|COUNT(*) ..`,
//!   `SHOW [SESSION] STATUS`, `SHOW PROFILE(S)`, `GET DIAGNOSTICS`) and
//!   [`Flags::DIAGNOSTICS_AREA`] (`@@warning_count`, `@@error_count`) describe
//!   the previous statement: run them on the backend that ran it. `FOUND_ROWS()`
//!   and `ROW_COUNT()` are of the same nature.
//! - **USE** ([`Kind::Use`]): [`use_database`] / [`Classification::name`] give the
//!   database; replay it on the session's other backends.
//! - **SET** ([`Kind::Set`]): [`Flags::USER_VAR_ASSIGN`], [`Flags::SESSION_VARIABLE`]
//!   (replay on other backends), [`Flags::GLOBAL_VARIABLE`] (changes only the
//!   server it runs on: run on the primary, never replay), [`Flags::AUTOCOMMIT`]
//!   with [`Classification::autocommit`] when the value is a literal, and
//!   [`Flags::TRANSACTION_SETTING`]. Value expressions are scanned like a read:
//!   `SET @a = f()` carries `STORED_FUNCTION`. `SET PASSWORD` and `SET DEFAULT
//!   ROLE` write the grant tables: they are [`Kind::Admin`], not `Set`. MariaDB
//!   `SET STATEMENT .. FOR stmt` is classified as `stmt` (the variables last for
//!   that statement only).
//! - **SET TRANSACTION** ([`Kind::SetTransaction`]): without
//!   `SESSION_VARIABLE`/`GLOBAL_VARIABLE` it applies to the next transaction only.
//! - **Temporary tables**: `CREATE`/`DROP TEMPORARY` are [`Kind::Ddl`] with
//!   [`Flags::TEMP_TABLE`] and without `IMPLICIT_COMMIT`; [`temporary_tables`]
//!   names them, and [`mentions`] tells (conservatively, by any identifier) whether
//!   a later statement refers to one. [`tables`] is the precise but fallible view.
//! - **`MASTER_GTID_WAIT` / `MASTER_POS_WAIT`** (and MySQL's `SOURCE_POS_WAIT`,
//!   `WAIT_FOR_EXECUTED_GTID_SET`, Galera's `WSREP_SYNC_WAIT_UPTO_GTID`):
//!   [`Flags::REPLICATION_WAIT`], which forbids a replica. No side effect, but the
//!   answer is about the one server that runs the wait: sent to an arbitrary
//!   replica it promises the application a caught-up replica that its next read
//!   may not land on. The primary is no good answer either (MariaDB KB
//!   "MASTER_GTID_WAIT": it waits on `gtid_slave_pos`, which the primary's own
//!   writes do not advance, so it runs into its timeout, or forever without one;
//!   `MASTER_POS_WAIT` returns NULL there). A router should run it on a replica and
//!   keep the session's following reads on that replica, or answer it from its own
//!   view of replica positions.
//! - **Server-specific values** ([`Flags::SERVER_STATE`]:
//!   `@@read_only`, `@@gtid_*`, `@@last_gtid`, `CONNECTION_ID()`,
//!   `LOAD_FILE()`, `SHOW PROCESSLIST`, `SHOW MASTER|SLAVE STATUS`, `SHOW GLOBAL
//!   ..`): the application expects the writable server's answer.
//! - **Hints** ([`Hint`]) are reported, not applied: `may_use_replica` ignores
//!   them. Honouring `Hint::Replica` for a statement that is not a read would run
//!   a write on a replica.
//! - **sql_mode**: pass the session's `ANSI_QUOTES` and `NO_BACKSLASH_ESCAPES`. If
//!   a replica-safe read would not be one under the other settings (a backslash
//!   in a string, a `"` token), it gets [`Flags::MODE_DEPENDENT`] and stays on the
//!   primary, in case the tracked mode is wrong.
//! - **Executable comments** (`/*! */`, `/*M! */`) are code
//!   ([`Flags::EXECUTABLE_COMMENT`]), as MariaDB runs them. A replica-safe read
//!   with a versioned one (`/*!50100 .. */`) must also be safe with it skipped (an
//!   older server), else it gets `MODE_DEPENDENT` too.
//! - **Known blind spot**: a function called through a view (`SELECT * FROM v`
//!   where `v` calls a writing stored function) cannot be seen in the text.

pub mod corpus;
mod ddl;
mod fallback;
mod flags;
mod hint;
mod lexer;
mod names;
mod scan;
mod set;
mod statement;
mod stream;
mod transaction;
mod words;

pub use flags::Flags;
pub use names::{dropped_database, mentions, temporary_tables, use_database};

use lexer::Lexer;

/// The session context classification depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// sql_mode `ANSI_QUOTES`: `"x"` is an identifier, not a string.
    pub ansi_quotes: bool,
    /// sql_mode `NO_BACKSLASH_ESCAPES`: `\` is an ordinary character in strings.
    pub no_backslash_escapes: bool,
    /// Lowercase names of stored functions the user declared read-only (config),
    /// as `name` or `schema.name`; any OTHER call of a non-builtin function makes a
    /// statement [`Flags::STORED_FUNCTION`] (primary by default).
    pub read_only_functions: &'a [String],
}

/// What a statement is, for routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub kind: Kind,
    pub flags: Flags,
    /// From a leading `/* tandem:.. */` comment.
    pub hint: Option<Hint>,
    pub decided_by: Decider,
    /// Byte range of the name the statement names (`USE db`, `SAVEPOINT sp`,
    /// `PREPARE s`, `EXECUTE s`, `DEALLOCATE PREPARE s`, `ROLLBACK TO sp`).
    name: Option<(usize, usize)>,
    autocommit: Option<bool>,
}

/// Who decided the classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decider {
    /// The hand-written lexer (the hot path).
    Lexer,
    /// The sqlparser fallback was needed.
    Parser,
    /// Not understood (`Kind::Other`, or an unterminated string or comment).
    Unknown,
}

/// A routing hint from a leading comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// `/* tandem:primary */`
    Primary,
    /// `/* tandem:replica */`
    Replica,
    /// `/* tandem:backend=NAME */`
    Backend(String),
    /// `/* tandem:consistency=session */` (also `eventual`, `global`,
    /// `window:<ms>`): the read-your-writes mode for this statement; routing
    /// is decided as without a hint.
    Consistency(crate::config::Consistency),
}

/// The statement kind (of the first statement, for a multi-statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SELECT`, `TABLE t`, `VALUES`, `(SELECT ..) UNION ..`, `WITH .. SELECT`,
    /// `SHOW` (most), `DESCRIBE`, `EXPLAIN` of a read, `HELP`: may run on a replica
    /// if no flag forbids it.
    Read,
    /// `INSERT`, `UPDATE`, `DELETE`, `REPLACE`, `WITH .. UPDATE|DELETE`, `LOAD
    /// DATA|XML`, `CALL`, `DO`, `HANDLER`, `EXECUTE IMMEDIATE`, `BEGIN NOT ATOMIC`,
    /// `SELECT .. INTO OUTFILE|DUMPFILE`, `EXPLAIN` of a write, `ANALYZE` of a
    /// write (MariaDB `ANALYZE` executes).
    Write,
    /// `CREATE`, `ALTER`, `DROP`, `RENAME`, `TRUNCATE` (implicit commit, except
    /// temporary tables: [`Flags::TEMP_TABLE`]).
    Ddl,
    /// `BEGIN [WORK]`, `START TRANSACTION [..]`.
    Begin {
        read_only: bool,
        consistent_snapshot: bool,
    },
    Commit {
        chain: bool,
        release: bool,
    },
    Rollback {
        chain: bool,
        release: bool,
    },
    RollbackToSavepoint,
    Savepoint,
    ReleaseSavepoint,
    /// `XA START|END|PREPARE|COMMIT|ROLLBACK|RECOVER`.
    Xa,
    /// `SET [GLOBAL|SESSION] TRANSACTION ..`.
    SetTransaction,
    /// `SET` of user or system variables, `SET NAMES`, `SET CHARACTER SET`, `SET ROLE`.
    Set,
    /// `USE db`.
    Use,
    LockTables,
    UnlockTables,
    /// Reads the previous statement's diagnostics: run it where that one ran.
    Diagnostics,
    /// Text-protocol `PREPARE s FROM ..`.
    SqlPrepare,
    /// Text-protocol `EXECUTE s [USING ..]`.
    SqlExecute,
    /// `DEALLOCATE PREPARE s`, `DROP PREPARE s`.
    SqlDeallocate,
    /// `FLUSH`, `KILL`, `RESET`, `PURGE`, `CHANGE MASTER`, `START|STOP SLAVE`,
    /// `GRANT`, `REVOKE`, account statements, `SET PASSWORD`, `INSTALL PLUGIN`,
    /// `SHUTDOWN`, `BINLOG`, `CACHE INDEX`, `LOAD INDEX`, `OPTIMIZE|REPAIR|CHECK|
    /// ANALYZE TABLE`, `CHECKSUM TABLE`, `BACKUP`, `LOCK INSTANCE` ...
    Admin,
    /// Not understood: primary.
    Other,
}

/// What a statement's lexing depended on besides the text: the quoting modes,
/// and whether the server runs versioned executable comments.
#[derive(Debug, Clone, Copy, Default)]
struct Sensitivity {
    backslash: bool,
    double_quote: bool,
    versioned: bool,
}

/// Classifies `sql` (one COM_QUERY payload, possibly several statements).
pub fn classify(sql: &[u8], opts: &Options<'_>) -> Classification {
    let (mut c, sens) = classify_text(sql, opts, false);
    c.hint = hint::leading(sql);
    if c.may_use_replica() {
        cross_check(&mut c, sql, opts, sens);
    }
    c
}

/// A replica-safe read must stay one under every reading of the text that the
/// tracked session state may have wrong: the other `NO_BACKSLASH_ESCAPES`, the
/// other `ANSI_QUOTES`, and versioned `/*!NNNNN .. */` comments skipped (a server
/// older than the version). Otherwise it gets `MODE_DEPENDENT` (and the flags of
/// the reading that was not safe).
fn cross_check(c: &mut Classification, sql: &[u8], opts: &Options<'_>, sens: Sensitivity) {
    for alt in 1u8..8 {
        let (bs, dq, ver) = (alt & 1 != 0, alt & 2 != 0, alt & 4 != 0);
        if (bs && !sens.backslash) || (dq && !sens.double_quote) || (ver && !sens.versioned) {
            continue;
        }
        let alt_opts = Options {
            no_backslash_escapes: opts.no_backslash_escapes ^ bs,
            ansi_quotes: opts.ansi_quotes ^ dq,
            ..*opts
        };
        let (a, _) = classify_text(sql, &alt_opts, ver);
        // A lone statement the server could not even lex under that mode is
        // rejected whole; after a `;` the earlier statements would still run.
        let rejected =
            a.flags.contains(Flags::UNTERMINATED) && !a.flags.contains(Flags::MULTI_STATEMENT);
        if !a.may_use_replica() && !rejected {
            c.flags |= a.flags | Flags::MODE_DEPENDENT;
            return;
        }
    }
}

/// [`classify`] without the hint and the cross-check; `skip_versioned` reads
/// versioned executable comments as plain comments.
fn classify_text(
    sql: &[u8],
    opts: &Options<'_>,
    skip_versioned: bool,
) -> (Classification, Sensitivity) {
    let mut lex = Lexer::new(sql, opts);
    if skip_versioned {
        lex = lex.skipping_versioned();
    }
    let mut first: Option<Classification> = None;
    let mut mode_change = false;
    loop {
        let o = statement::statement(lex, opts);
        lex = o.lexer;
        mode_change |= o.mode_change;
        match first.as_mut() {
            None => first = Some(o.class),
            Some(c) if !o.empty => {
                c.flags |= o.class.flags | Flags::MULTI_STATEMENT;
                c.decided_by = c.decided_by.max(o.class.decided_by);
            }
            Some(_) => {}
        }
        if !o.more {
            break;
        }
    }
    let mut c = first.unwrap_or_else(|| unreachable!("the loop runs at least once"));
    if lex.saw_executable {
        c.flags |= Flags::EXECUTABLE_COMMENT;
    }
    if lex.unterminated {
        c.flags |= Flags::UNTERMINATED;
        c.decided_by = Decider::Unknown;
    }
    // `SET STATEMENT sql_mode=.. FOR`: the inner statement's modes are unknown.
    let sens = Sensitivity {
        backslash: lex.saw_backslash || mode_change,
        double_quote: lex.saw_double_quote || mode_change,
        versioned: lex.saw_versioned,
    };
    (c, sens)
}

/// The tables `sql` names (sqlparser), as `name` or `schema.name`; `None` when
/// sqlparser cannot parse it. For the temp-table check prefer [`mentions`],
/// which cannot fail.
pub fn tables(sql: &[u8], opts: &Options<'_>) -> Option<Vec<String>> {
    fallback::tables(sql, opts)
}

// === impl Classification ===

impl Classification {
    /// A read with no flag that ties it to the primary.
    pub fn may_use_replica(&self) -> bool {
        self.kind == Kind::Read && !self.flags.intersects(Flags::FORBID_REPLICA)
    }

    /// Why the statement must run on the primary, as a metrics label; `"read"` when
    /// [`Classification::may_use_replica`].
    pub fn reason(&self) -> &'static str {
        let f = self.flags;
        if self.decided_by == Decider::Unknown {
            return "unknown";
        }
        if f.contains(Flags::MULTI_STATEMENT) {
            return "multi_statement";
        }
        match self.kind {
            Kind::Read => read_reason(f),
            Kind::Write => "write",
            Kind::Ddl => "ddl",
            Kind::Begin { .. }
            | Kind::Commit { .. }
            | Kind::Rollback { .. }
            | Kind::RollbackToSavepoint
            | Kind::Savepoint
            | Kind::ReleaseSavepoint
            | Kind::Xa
            | Kind::SetTransaction => "transaction",
            Kind::Set | Kind::Use => "session_state",
            Kind::LockTables | Kind::UnlockTables => "lock_tables",
            Kind::Diagnostics => "diagnostics",
            Kind::SqlPrepare | Kind::SqlExecute | Kind::SqlDeallocate => "prepared_statement",
            Kind::Admin => "admin",
            Kind::Other => "unknown",
        }
    }

    /// The name the statement names, unquoted: the database of `USE`, the
    /// savepoint of `SAVEPOINT`/`RELEASE SAVEPOINT`/`ROLLBACK TO`, the statement of
    /// `PREPARE`/`EXECUTE`/`DEALLOCATE`. `sql` is the classified text.
    pub fn name(&self, sql: &[u8]) -> Option<String> {
        let (start, end) = self.name?;
        sql.get(start..end).map(names::name_string)
    }

    /// The value a session-scope `SET autocommit = ..` assigns, when it is a literal
    /// (`0`/`1`/`ON`/`OFF`/`TRUE`/`FALSE`); `None` otherwise, even with
    /// [`Flags::AUTOCOMMIT`] (an expression: ask the server).
    pub fn autocommit(&self) -> Option<bool> {
        self.autocommit
    }
}

fn read_reason(f: Flags) -> &'static str {
    let reasons = [
        (Flags::UNTERMINATED, "unknown"),
        (Flags::LOCKING_READ, "locking_read"),
        (Flags::LOCK_FUNCTION, "side_effect"),
        (Flags::SIDE_EFFECT, "side_effect"),
        (Flags::LAST_INSERT_ID, "session_function"),
        (Flags::FOUND_ROWS, "session_function"),
        (Flags::CALC_FOUND_ROWS, "session_function"),
        (Flags::ROW_COUNT, "session_function"),
        (Flags::INTO_VARIABLE, "user_variable"),
        (Flags::USER_VAR_ASSIGN, "user_variable"),
        (Flags::DIAGNOSTICS_AREA, "diagnostics"),
        (Flags::SERVER_STATE, "server_state"),
        (Flags::REPLICATION_WAIT, "replication_wait"),
        (Flags::STORED_FUNCTION, "stored_function"),
        (Flags::MODE_DEPENDENT, "mode_dependent"),
    ];
    reasons
        .iter()
        .find(|(flag, _)| f.intersects(*flag))
        .map_or("read", |(_, r)| r)
}

#[cfg(test)]
mod tests;
