//! `CREATE`, `ALTER`, `DROP`, `RENAME`, `TRUNCATE`: schema changes (implicit
//! commit), temporary tables (no commit, session-bound), accounts (admin),
//! stored programs (compound bodies) and `DROP PREPARE`.

use super::lexer::{Token, TokenKind};
use super::statement::Ctx;
use super::words::lowercase;
use super::{Flags, Kind};

// === impl Ctx ===

impl Ctx<'_, '_> {
    /// `lower` is the first word, lowercased.
    pub fn ddl(&mut self, lower: &[u8]) -> Kind {
        match lower {
            b"truncate" => self.schema_change(),
            b"rename" if self.s.eat("user") => self.account(),
            b"rename" => self.schema_change(),
            b"drop" => self.drop(),
            _ => self.create_or_alter(),
        }
    }

    fn schema_change(&mut self) -> Kind {
        self.extra |= Flags::IMPLICIT_COMMIT;
        Kind::Ddl
    }

    fn account(&mut self) -> Kind {
        self.extra |= Flags::IMPLICIT_COMMIT;
        Kind::Admin
    }

    /// `CREATE`/`DROP TEMPORARY TABLE` do not commit (MariaDB and MySQL both say so),
    /// but the table exists only in this server session.
    fn temporary(&mut self) -> Kind {
        self.extra |= Flags::TEMP_TABLE;
        Kind::Ddl
    }

    fn drop(&mut self) -> Kind {
        if self.s.eat("prepare") {
            return if self.take_name() {
                Kind::SqlDeallocate
            } else {
                self.unknown()
            };
        }
        if self.s.eat("temporary") {
            return self.temporary();
        }
        if self.s.eat("user") || self.s.eat("role") {
            return self.account();
        }
        self.schema_change()
    }

    fn create_or_alter(&mut self) -> Kind {
        let Some(object) = self.object_keyword() else {
            return self.unknown();
        };
        let mut buf = [0u8; 40];
        let lower = lowercase(object.text(self.src()), &mut buf).unwrap_or_default();
        match lower {
            b"temporary" => self.temporary(),
            b"user" | b"role" => self.account(),
            b"instance" => Kind::Admin,
            b"procedure" | b"function" | b"trigger" | b"event" | b"package" => {
                // Bodies are compound statements: their `;` do not end this one.
                self.s.compound(0);
                self.schema_change()
            }
            _ => self.schema_change(),
        }
    }

    /// Skips `OR REPLACE`, `DEFINER = ..`, `SQL SECURITY ..`, `ALGORITHM = ..` and
    /// other modifiers; returns the word that names the kind of object.
    fn object_keyword(&mut self) -> Option<Token> {
        loop {
            let t = self.s.next()?;
            if t.kind != TokenKind::Word {
                return Some(t);
            }
            let mut buf = [0u8; 40];
            match lowercase(t.text(self.src()), &mut buf).unwrap_or_default() {
                b"or" => {
                    self.s.eat("replace");
                }
                b"definer" => self.skip_definer(),
                b"sql" => {
                    self.s.eat("security");
                    self.s.next();
                }
                b"algorithm" => {
                    self.s.eat_kind(TokenKind::Eq);
                    self.s.next();
                }
                b"aggregate" | b"online" | b"offline" | b"ignore" | b"unique" | b"fulltext"
                | b"spatial" => {}
                _ => return Some(t),
            }
        }
    }

    /// `= 'u'@'h'`, `= u@h`, `= CURRENT_USER[()]`, `= role` (`@'h'` lexes as a variable).
    fn skip_definer(&mut self) {
        self.s.eat_kind(TokenKind::Eq);
        self.s.next();
        self.s.eat_kind(TokenKind::UserVar);
        if self.s.eat_kind(TokenKind::LParen) {
            self.s.eat_kind(TokenKind::RParen);
        }
    }
}
