//! Transaction control: `BEGIN`, `START TRANSACTION`, `COMMIT`, `ROLLBACK`,
//! savepoints, `XA`, `LOCK`/`UNLOCK TABLES` (MariaDB "START TRANSACTION",
//! "COMMIT", "ROLLBACK", "SAVEPOINT", "LOCK TABLES"). A tail the grammar does
//! not allow makes the statement [`Kind::Other`]: the server will reject it.

use super::statement::Ctx;
use super::{Flags, Kind};

// === impl Ctx ===

impl Ctx<'_, '_> {
    /// `lower` is the first word, lowercased.
    pub fn transaction(&mut self, lower: &[u8]) -> Kind {
        match lower {
            b"begin" => self.begin(),
            b"start" if self.s.eat("transaction") => self.start_transaction(),
            b"start" if self.replication_thread() => {
                self.extra |= Flags::IMPLICIT_COMMIT;
                Kind::Admin
            }
            b"commit" => self.end_transaction(true),
            b"rollback" => self.end_transaction(false),
            b"savepoint" => self.named(Kind::Savepoint),
            b"release" if self.s.eat("savepoint") => self.named(Kind::ReleaseSavepoint),
            b"xa" => Kind::Xa,
            b"lock" if self.s.eat("table") || self.s.eat("tables") => {
                self.extra |= Flags::IMPLICIT_COMMIT;
                Kind::LockTables
            }
            // UNLOCK TABLES commits only if LOCK TABLES was active: the router knows.
            b"unlock" if self.s.eat("table") || self.s.eat("tables") => Kind::UnlockTables,
            b"lock" | b"unlock" if self.s.eat("instance") => Kind::Admin,
            _ => self.unknown(),
        }
    }

    /// `START SLAVE`, `START REPLICA`, `START ALL SLAVES`, `START GROUP_REPLICATION`.
    fn replication_thread(&mut self) -> bool {
        self.s.eat("slave")
            || self.s.eat("replica")
            || self.s.eat("all")
            || self.s.eat("group_replication")
    }

    /// `BEGIN [WORK]`, or MariaDB's `BEGIN NOT ATOMIC ..` compound statement.
    fn begin(&mut self) -> Kind {
        if self.s.eat("not") {
            if !self.s.eat("atomic") {
                return self.unknown();
            }
            // A program: anything may happen inside; its `;` belong to it.
            self.s.compound(1);
            return Kind::Write;
        }
        self.s.eat("work");
        if self.s.peek().is_some() {
            return self.unknown();
        }
        self.extra |= Flags::IMPLICIT_COMMIT;
        Kind::Begin {
            read_only: false,
            consistent_snapshot: false,
        }
    }

    /// `START TRANSACTION [WITH CONSISTENT SNAPSHOT | READ ONLY | READ WRITE] [, ..]`
    fn start_transaction(&mut self) -> Kind {
        let (mut read_only, mut consistent_snapshot) = (false, false);
        while self.s.peek().is_some() {
            if self.s.eat("with") {
                if !(self.s.eat("consistent") && self.s.eat("snapshot")) {
                    return self.unknown();
                }
                consistent_snapshot = true;
            } else if self.s.eat("read") {
                if self.s.eat("only") {
                    read_only = true;
                } else if !self.s.eat("write") {
                    return self.unknown();
                }
            } else {
                return self.unknown();
            }
            if !self.s.eat_kind(super::lexer::TokenKind::Comma) && self.s.peek().is_some() {
                return self.unknown();
            }
        }
        self.extra |= Flags::IMPLICIT_COMMIT;
        Kind::Begin {
            read_only,
            consistent_snapshot,
        }
    }

    /// `COMMIT|ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE]`, and
    /// `ROLLBACK [WORK] TO [SAVEPOINT] sp`.
    fn end_transaction(&mut self, commit: bool) -> Kind {
        self.s.eat("work");
        if !commit && self.s.eat("to") {
            self.s.eat("savepoint");
            return self.named(Kind::RollbackToSavepoint);
        }
        let mut chain = false;
        if self.s.eat("and") {
            let no = self.s.eat("no");
            if !self.s.eat("chain") {
                return self.unknown();
            }
            chain = !no;
        }
        let no = self.s.eat("no");
        let release = self.s.eat("release");
        if (no && !release) || self.s.peek().is_some() {
            return self.unknown();
        }
        let release = release && !no;
        if commit {
            Kind::Commit { chain, release }
        } else {
            Kind::Rollback { chain, release }
        }
    }

    /// `kind` followed by exactly one name.
    fn named(&mut self, kind: Kind) -> Kind {
        if self.take_name() && self.s.peek().is_none() {
            kind
        } else {
            self.unknown()
        }
    }
}
