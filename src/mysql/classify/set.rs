//! `SET`: user and system variables, `NAMES`, `CHARACTER SET`, `TRANSACTION`,
//! `ROLE`, `PASSWORD`, `DEFAULT ROLE`, and MariaDB's `SET STATEMENT .. FOR stmt`
//! (MariaDB "SET", "SET TRANSACTION", "SET STATEMENT"; MySQL 8.0 15.7.6).
//!
//! Scope rules (MySQL "SET Syntax for Variable Assignment"): a `GLOBAL`/`SESSION`
//! modifier applies to the assignments after it until the next modifier; `@@x`
//! without a scope is the session variable.

use super::lexer::{Token, TokenKind};
use super::scan::unquote;
use super::statement::Ctx;
use super::{Flags, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Session,
    Global,
}

/// How a value expression ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Comma,
    For,
    Statement,
}

// === impl Ctx ===

impl<'s> Ctx<'s, '_> {
    /// After the `SET` keyword.
    pub fn set(&mut self, depth: u8) -> Kind {
        let explicit = self.scope_modifier();
        if self.s.eat("transaction") {
            // Without a scope it applies to the next transaction only.
            self.extra |= Flags::TRANSACTION_SETTING
                | match explicit {
                    Some(Scope::Global) => Flags::GLOBAL_VARIABLE,
                    Some(Scope::Session) => Flags::SESSION_VARIABLE,
                    None => Flags::NONE,
                };
            return Kind::SetTransaction;
        }
        if explicit.is_none() {
            if self.s.eat("statement") {
                return self.set_statement(depth);
            }
            // Account changes: written to the grant tables, not session state.
            if self.s.eat("password") || (self.s.eat("default") && self.s.eat("role")) {
                self.extra |= Flags::IMPLICIT_COMMIT;
                return Kind::Admin;
            }
            if self.s.eat("role") || self.s.eat("resource") {
                self.extra |= Flags::SESSION_VARIABLE;
                return Kind::Set;
            }
        }
        self.expression = true;
        self.assignments(explicit.unwrap_or(Scope::Session))
    }

    fn scope_modifier(&mut self) -> Option<Scope> {
        if self.s.eat("global") || self.s.eat("persist") || self.s.eat("persist_only") {
            Some(Scope::Global)
        } else if self.s.eat("session") || self.s.eat("local") {
            Some(Scope::Session)
        } else {
            None
        }
    }

    /// `target = value [, target = value ..]`
    fn assignments(&mut self, mut scope: Scope) -> Kind {
        loop {
            if let Some(s) = self.scope_modifier() {
                scope = s;
            }
            let Some(t) = self.s.next() else {
                return self.unknown();
            };
            let src = self.src();
            let autocommit = match t.kind {
                TokenKind::UserVar => {
                    self.extra |= Flags::USER_VAR_ASSIGN;
                    false
                }
                TokenKind::SysVar => {
                    let (s, name) = sysvar_target(t.text(src));
                    self.system_variable(s.unwrap_or(Scope::Session), name)
                }
                _ if t.is_word(src, "names") || t.is_word(src, "charset") => {
                    self.extra |= Flags::SESSION_VARIABLE;
                    match self.value(false).0 {
                        End::Comma => continue,
                        _ => return Kind::Set,
                    }
                }
                _ if t.is_word(src, "character") && self.s.eat("set") => {
                    self.extra |= Flags::SESSION_VARIABLE;
                    match self.value(false).0 {
                        End::Comma => continue,
                        _ => return Kind::Set,
                    }
                }
                _ if t.is_name() => {
                    let name = self.dotted_name(t);
                    self.system_variable(scope, name)
                }
                _ => return self.unknown(),
            };
            if !self.s.eat_kind(TokenKind::Eq) && !self.s.eat_kind(TokenKind::Assign) {
                return self.unknown();
            }
            let (end, single) = self.value(false);
            if autocommit {
                self.autocommit = single.and_then(|v| switch_value(v.text(src)));
            }
            if end != End::Comma {
                return Kind::Set;
            }
        }
    }

    /// `a.b.c` -> the last part (component and key cache variables are dotted).
    fn dotted_name(&mut self, first: Token) -> &'s [u8] {
        let src = self.src();
        let mut last = first;
        while self.s.peek().is_some_and(|t| t.kind == TokenKind::Dot) {
            self.s.next();
            match self.s.next() {
                Some(t) if t.is_name() => last = t,
                _ => break,
            }
        }
        unquote(last.text(src))
    }

    /// Flags for assigning system variable `name`; true if it is the session's
    /// `autocommit` (a `SET GLOBAL autocommit` does not change this session, and
    /// neither sets `AUTOCOMMIT` nor `TRANSACTION_SETTING`).
    fn system_variable(&mut self, scope: Scope, name: &[u8]) -> bool {
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if scope == Scope::Global {
            self.extra |= Flags::GLOBAL_VARIABLE;
            return false;
        }
        self.extra |= Flags::SESSION_VARIABLE;
        if is("autocommit") {
            self.extra |= Flags::AUTOCOMMIT;
            return true;
        }
        let tx = [
            "transaction_isolation",
            "tx_isolation",
            "transaction_read_only",
            "tx_read_only",
        ];
        if tx.iter().any(|n| is(n)) {
            self.extra |= Flags::TRANSACTION_SETTING;
        }
        false
    }

    /// Consumes a value expression up to a `,` at depth 0 (or `FOR`, in `SET
    /// STATEMENT`), feeding it to the scanner. Also returns the value's token if it
    /// is a single one.
    fn value(&mut self, stop_at_for: bool) -> (End, Option<Token>) {
        self.sc.break_sequence();
        let (mut depth, mut count, mut single) = (0u32, 0u32, None);
        while let Some(t) = self.s.next() {
            match t.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => depth = depth.saturating_sub(1),
                TokenKind::Comma if depth == 0 => return (End::Comma, single),
                TokenKind::Word if depth == 0 && stop_at_for && t.is_word(self.src(), "for") => {
                    return (End::For, single);
                }
                _ => {}
            }
            count += 1;
            single = (count == 1).then_some(t);
            self.sc.push(t);
        }
        (End::Statement, single)
    }

    /// MariaDB `SET STATEMENT var = value [, ..] FOR statement`: the variables last
    /// for that one statement, which is classified as itself.
    fn set_statement(&mut self, depth: u8) -> Kind {
        loop {
            let Some(t) = self.s.next().filter(Token::is_name) else {
                return self.unknown();
            };
            let name = self.dotted_name(t);
            if name.eq_ignore_ascii_case(b"sql_mode") {
                self.mode_change = true;
            }
            if !self.s.eat_kind(TokenKind::Eq) {
                return self.unknown();
            }
            match self.value(true).0 {
                End::Comma => {}
                End::For => break,
                End::Statement => return self.unknown(),
            }
        }
        self.sc.break_sequence();
        self.body(depth + 1)
    }
}

/// `@@global.x` -> (Global, x); `@@session.x`/`@@local.x` -> Session; `@@x` -> no scope.
fn sysvar_target(text: &[u8]) -> (Option<Scope>, &[u8]) {
    let name = text.get(2..).unwrap_or_default();
    let mut parts = name.split(|&b| b == b'.');
    let first = parts.next().unwrap_or_default();
    let last = name.rsplit(|&b| b == b'.').next().unwrap_or(name);
    let is = |n: &str| first.eq_ignore_ascii_case(n.as_bytes());
    let scope = if first.len() == name.len() {
        None
    } else if is("global") || is("persist") || is("persist_only") {
        Some(Scope::Global)
    } else {
        Some(Scope::Session)
    };
    (scope, unquote(last))
}

/// `0`/`1`/`ON`/`OFF`/`TRUE`/`FALSE` (quoted or not) as a boolean.
fn switch_value(text: &[u8]) -> Option<bool> {
    let v = unquote(text);
    let is = |n: &str| v.eq_ignore_ascii_case(n.as_bytes());
    if is("1") || is("on") || is("true") {
        Some(true)
    } else if is("0") || is("off") || is("false") {
        Some(false)
    } else {
        None
    }
}
