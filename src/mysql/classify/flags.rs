//! [`Flags`]: what a statement does besides its [`super::Kind`], as a bit set.

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};

/// A set of classification flags. Hand-rolled (no `bitflags` dependency): a `u32`,
/// named constants, `|`, [`Flags::contains`] and [`Flags::intersects`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u32);

/// Flag names as the fixtures and metrics spell them, in bit order.
const NAMES: [(Flags, &str); 25] = [
    (Flags::LOCKING_READ, "locking_read"),
    (Flags::INTO_OUTFILE, "into_outfile"),
    (Flags::INTO_VARIABLE, "into_variable"),
    (Flags::USER_VAR_ASSIGN, "user_var_assign"),
    (Flags::USER_VAR_READ, "user_var_read"),
    (Flags::SIDE_EFFECT, "side_effect"),
    (Flags::LOCK_FUNCTION, "lock_function"),
    (Flags::LAST_INSERT_ID, "last_insert_id"),
    (Flags::FOUND_ROWS, "found_rows"),
    (Flags::CALC_FOUND_ROWS, "calc_found_rows"),
    (Flags::ROW_COUNT, "row_count"),
    (Flags::TEMP_TABLE, "temp_table"),
    (Flags::MULTI_STATEMENT, "multi_statement"),
    (Flags::IMPLICIT_COMMIT, "implicit_commit"),
    (Flags::STORED_FUNCTION, "stored_function"),
    (Flags::AUTOCOMMIT, "autocommit"),
    (Flags::SESSION_VARIABLE, "session_variable"),
    (Flags::GLOBAL_VARIABLE, "global_variable"),
    (Flags::TRANSACTION_SETTING, "transaction_setting"),
    (Flags::EXECUTABLE_COMMENT, "executable_comment"),
    (Flags::SERVER_STATE, "server_state"),
    (Flags::REPLICATION_WAIT, "replication_wait"),
    (Flags::DIAGNOSTICS_AREA, "diagnostics_area"),
    (Flags::MODE_DEPENDENT, "mode_dependent"),
    (Flags::UNTERMINATED, "unterminated"),
];

// === impl Flags ===

impl Flags {
    pub const NONE: Flags = Flags(0);
    /// `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE` (with `SKIP LOCKED`/`NOWAIT`/`WAIT n`).
    pub const LOCKING_READ: Flags = Flags(1 << 0);
    /// `INTO OUTFILE` / `INTO DUMPFILE`: writes a file on the server that runs it.
    pub const INTO_OUTFILE: Flags = Flags(1 << 1);
    /// `SELECT .. INTO @v` or `INTO local_var`.
    pub const INTO_VARIABLE: Flags = Flags(1 << 2);
    /// A user variable is assigned: `@a := ..`, `SET @a = ..`, `INTO @a`, `GET DIAGNOSTICS @a = ..`.
    pub const USER_VAR_ASSIGN: Flags = Flags(1 << 3);
    /// A user variable is read: a replica needs the session's value copied first.
    pub const USER_VAR_READ: Flags = Flags(1 << 4);
    /// A builtin with an effect or session-bound state: the lock family, `NEXTVAL`,
    /// `SETVAL`, `LASTVAL`, `NEXT VALUE FOR`, `PREVIOUS VALUE FOR`.
    pub const SIDE_EFFECT: Flags = Flags(1 << 5);
    /// `GET_LOCK`, `RELEASE_LOCK`, `RELEASE_ALL_LOCKS`, `IS_FREE_LOCK`, `IS_USED_LOCK`:
    /// named locks live in one server session, so the session must pin to the primary.
    pub const LOCK_FUNCTION: Flags = Flags(1 << 6);
    /// `LAST_INSERT_ID()`, `@@identity`, `@@last_insert_id`, `@@insert_id`.
    pub const LAST_INSERT_ID: Flags = Flags(1 << 7);
    /// `FOUND_ROWS()`.
    pub const FOUND_ROWS: Flags = Flags(1 << 8);
    /// `SQL_CALC_FOUND_ROWS`.
    pub const CALC_FOUND_ROWS: Flags = Flags(1 << 9);
    /// `ROW_COUNT()`.
    pub const ROW_COUNT: Flags = Flags(1 << 10);
    /// `CREATE`/`DROP TEMPORARY TABLE` (or `SEQUENCE`): see [`super::temporary_tables`].
    pub const TEMP_TABLE: Flags = Flags(1 << 11);
    /// More than one statement (a trailing `;` alone does not count).
    pub const MULTI_STATEMENT: Flags = Flags(1 << 12);
    /// The statement commits an open transaction first (MariaDB "SQL statements
    /// that cause an implicit commit").
    pub const IMPLICIT_COMMIT: Flags = Flags(1 << 13);
    /// A call of a function that is neither a known builtin nor declared read-only.
    pub const STORED_FUNCTION: Flags = Flags(1 << 14);
    /// A `SET` that assigns `autocommit` (see [`super::Classification::autocommit`]).
    pub const AUTOCOMMIT: Flags = Flags(1 << 15);
    /// A `SET` of a session system variable, `SET NAMES`, `SET CHARACTER SET`, `SET ROLE`.
    pub const SESSION_VARIABLE: Flags = Flags(1 << 16);
    /// `SET GLOBAL`, `SET PERSIST`, `SET @@global.x`: changes the server it runs on.
    pub const GLOBAL_VARIABLE: Flags = Flags(1 << 17);
    /// `SET TRANSACTION ..`, or a `SET` of `transaction_isolation`, `tx_isolation`,
    /// `transaction_read_only`, `tx_read_only`.
    pub const TRANSACTION_SETTING: Flags = Flags(1 << 18);
    /// `/*! .. */` or `/*M! .. */` content was treated as code.
    pub const EXECUTABLE_COMMENT: Flags = Flags(1 << 19);
    /// Reads a value that differs per server: `@@read_only`,
    /// `@@gtid_*`, `@@last_gtid`, `CONNECTION_ID()`, `LOAD_FILE()`,
    /// `SHOW PROCESSLIST`, `SHOW MASTER STATUS`, `SHOW GLOBAL STATUS` ...
    pub const SERVER_STATE: Flags = Flags(1 << 20);
    /// `MASTER_GTID_WAIT`, `MASTER_POS_WAIT` and kin: the answer is about one server.
    pub const REPLICATION_WAIT: Flags = Flags(1 << 21);
    /// Reads the previous statement's diagnostics: `@@warning_count`, `@@error_count`.
    pub const DIAGNOSTICS_AREA: Flags = Flags(1 << 22);
    /// Under another `ANSI_QUOTES`/`NO_BACKSLASH_ESCAPES` setting, or on a server
    /// that skips a versioned `/*!NNNNN .. */` comment, the statement would not be a
    /// replica-safe read: kept on the primary in case the tracked mode is wrong.
    pub const MODE_DEPENDENT: Flags = Flags(1 << 23);
    /// A string, quoted identifier or comment is not closed: the server will
    /// reject it; the statement is not understood.
    pub const UNTERMINATED: Flags = Flags(1 << 24);

    /// Flags that keep a [`super::Kind::Read`] off the replicas.
    pub const FORBID_REPLICA: Flags = Flags(
        Self::LOCKING_READ.0
            | Self::INTO_OUTFILE.0
            | Self::INTO_VARIABLE.0
            | Self::USER_VAR_ASSIGN.0
            | Self::SIDE_EFFECT.0
            | Self::LOCK_FUNCTION.0
            | Self::LAST_INSERT_ID.0
            | Self::FOUND_ROWS.0
            | Self::CALC_FOUND_ROWS.0
            | Self::ROW_COUNT.0
            | Self::MULTI_STATEMENT.0
            | Self::STORED_FUNCTION.0
            | Self::SERVER_STATE.0
            | Self::REPLICATION_WAIT.0
            | Self::DIAGNOSTICS_AREA.0
            | Self::MODE_DEPENDENT.0
            | Self::UNTERMINATED.0,
    );

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the flags set, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
    }

    /// The flag named `name` (as [`Flags::names`] spells it).
    pub fn from_name(name: &str) -> Option<Flags> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl Not for Flags {
    type Output = Flags;
    fn not(self) -> Flags {
        Flags(!self.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        for (i, n) in self.names().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            f.write_str(n)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_are_distinct() {
        let mut all = Flags::NONE;
        for (f, n) in NAMES {
            assert_eq!(f.0.count_ones(), 1, "{n}");
            assert!(!all.intersects(f), "{n} reuses a bit");
            all |= f;
            assert_eq!(Flags::from_name(n), Some(f));
        }
        let set = Flags::LOCKING_READ | Flags::ROW_COUNT;
        assert_eq!(
            set.names().collect::<Vec<_>>(),
            ["locking_read", "row_count"]
        );
        assert_eq!(format!("{set:?}"), "Flags(locking_read|row_count)");
        assert!(set.contains(Flags::ROW_COUNT) && !set.contains(Flags::FOUND_ROWS));
    }
}
