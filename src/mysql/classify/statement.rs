//! Statement classification: the first keyword(s) decide the [`Kind`], the
//! [`Scanner`] sees the rest. Statement families with more grammar live beside this
//! file (`ddl.rs`, `set.rs`, `transaction.rs`); reads, writes, `SHOW`, `EXPLAIN`
//! and the smaller statements are here.

use super::fallback;
use super::lexer::{Lexer, TokenKind};
use super::scan::Scanner;
use super::stream::Stream;
use super::words::lowercase;
use super::{Classification, Decider, Flags, Kind, Options};

/// `EXPLAIN EXPLAIN ..`, `SET STATEMENT .. FOR SET STATEMENT ..`: deeper is nonsense.
const MAX_DEPTH: u8 = 8;

/// Flags that only mean something in a statement that computes a result or a
/// value (a read, `SET`): in `INSERT INTO t (a)` the `t (` is no call and the
/// `INTO` no variable.
const EXPRESSION_FLAGS: Flags =
    Flags(Flags::STORED_FUNCTION.0 | Flags::INTO_VARIABLE.0 | Flags::INTO_OUTFILE.0);

/// One statement's classification in progress.
pub struct Ctx<'s, 'o> {
    pub s: Stream<'s>,
    pub sc: Scanner<'s, 'o>,
    pub opts: &'s Options<'o>,
    /// Flags the statement grammar implies (`IMPLICIT_COMMIT`, `TEMP_TABLE`, ...).
    pub extra: Flags,
    pub decider: Decider,
    /// Keep [`EXPRESSION_FLAGS`] from the scanner.
    pub expression: bool,
    /// Byte range of the name a statement names (`USE db`, `SAVEPOINT sp` ...).
    pub name: Option<(usize, usize)>,
    pub autocommit: Option<bool>,
    /// `SET STATEMENT sql_mode=.. FOR`: lexing the rest depends on a mode we do not know.
    pub mode_change: bool,
}

/// What [`statement`] found, plus the lexer positioned after it.
pub struct Outcome<'s> {
    pub class: Classification,
    pub lexer: Lexer<'s>,
    /// No token at all (`;;`, only comments).
    pub empty: bool,
    /// Ended at a `;`: another statement may follow.
    pub more: bool,
    pub mode_change: bool,
}

/// Classifies the statement that starts at `lex`'s position.
pub fn statement<'s>(lex: Lexer<'s>, opts: &'s Options<'_>) -> Outcome<'s> {
    let src = lex.src();
    let mut cx = Ctx {
        s: Stream::new(lex),
        sc: Scanner::new(src, opts),
        opts,
        extra: Flags::NONE,
        decider: Decider::Lexer,
        expression: false,
        name: None,
        autocommit: None,
        mode_change: false,
    };
    let mut kind = cx.body(0);
    cx.push_rest();
    let mut flags = cx.sc.finish();
    if kind == Kind::Read && flags.contains(Flags::INTO_OUTFILE) {
        kind = Kind::Write;
    } else if !cx.expression {
        flags = flags & !EXPRESSION_FLAGS;
    }
    if kind == Kind::Admin {
        // `'user'@'host'` lexes as a string and a variable; account statements
        // neither read nor assign user variables.
        flags = flags & !(Flags::USER_VAR_READ | Flags::USER_VAR_ASSIGN);
    }
    let empty = cx.s.first.is_none();
    let more = cx.s.semicolon;
    let class = Classification {
        kind,
        flags: flags | cx.extra,
        hint: None,
        decided_by: cx.decider,
        name: cx.name,
        autocommit: cx.autocommit,
    };
    Outcome {
        class,
        lexer: cx.s.into_lexer(),
        empty,
        more,
        mode_change: cx.mode_change,
    }
}

// === impl Ctx ===

impl<'s> Ctx<'s, '_> {
    pub fn src(&self) -> &'s [u8] {
        self.s.src()
    }

    /// Feeds every token left in the statement to the scanner.
    pub fn push_rest(&mut self) {
        for t in self.s.by_ref() {
            self.sc.push(t);
        }
    }

    /// Not understood: primary, and the rest is still scanned for flags.
    pub fn unknown(&mut self) -> Kind {
        // What the grammar implied so far is as doubtful as the rest.
        self.extra = Flags::NONE;
        self.decider = Decider::Unknown;
        self.expression = true;
        Kind::Other
    }

    /// The next token is a name: consume it and remember it as the statement's name.
    pub fn take_name(&mut self) -> bool {
        match self.s.peek() {
            Some(t) if t.is_name() => {
                self.s.next();
                self.name = Some((t.start, t.end));
                true
            }
            _ => false,
        }
    }

    /// The statement body from its first token; `depth` counts nested bodies.
    pub fn body(&mut self, depth: u8) -> Kind {
        let Some(t) = self.s.next() else {
            return self.unknown();
        };
        if depth > MAX_DEPTH {
            self.sc.push(t);
            return self.unknown();
        }
        match t.kind {
            TokenKind::LParen => {
                self.sc.push(t);
                return self.parenthesized(depth);
            }
            TokenKind::Word => {}
            _ => {
                self.sc.push(t);
                return self.unknown();
            }
        }
        let mut buf = [0u8; 40];
        let lower = lowercase(t.text(self.src()), &mut buf).unwrap_or_default();
        match lower {
            b"select" | b"table" | b"values" => {
                self.sc.push(t);
                self.expression = true;
                Kind::Read
            }
            b"with" => self.with(),
            b"insert" | b"update" | b"delete" | b"replace" | b"call" | b"do" | b"handler" => {
                Kind::Write
            }
            b"load" => self.load(),
            b"show" => self.show(),
            b"describe" | b"desc" | b"explain" => self.explain(depth),
            b"analyze" => self.analyze(depth),
            b"help" => Kind::Read,
            b"create" | b"alter" | b"drop" | b"rename" | b"truncate" => self.ddl(lower),
            b"begin" | b"start" | b"commit" | b"rollback" | b"savepoint" | b"release" | b"xa"
            | b"lock" | b"unlock" => self.transaction(lower),
            b"set" => self.set(depth),
            b"use" => self.use_database(),
            b"prepare" | b"execute" | b"deallocate" => self.prepared(lower),
            b"get" => self.get_diagnostics(),
            b"flush" | b"kill" | b"reset" | b"purge" | b"change" | b"grant" | b"revoke"
            | b"install" | b"uninstall" | b"shutdown" | b"restart" | b"binlog" | b"cache"
            | b"optimize" | b"repair" | b"check" | b"checksum" | b"backup" | b"clone" | b"stop" => {
                self.admin(lower)
            }
            _ => {
                self.sc.push(t);
                self.unknown()
            }
        }
    }

    /// A statement that starts with `(`: only a parenthesized query can.
    fn parenthesized(&mut self, depth: u8) -> Kind {
        while let Some(t) = self.s.peek().filter(|t| t.kind == TokenKind::LParen) {
            self.s.next();
            self.sc.push(t);
        }
        if self.next_starts(&["select", "table", "values", "with"]) {
            self.body(depth + 1)
        } else {
            self.unknown()
        }
    }

    /// The next token is one of the words `kws`.
    fn next_starts(&mut self, kws: &[&str]) -> bool {
        let src = self.src();
        self.s
            .peek()
            .is_some_and(|t| kws.iter().any(|kw| t.is_word(src, kw)))
    }

    /// `WITH [RECURSIVE] cte [(cols)] AS (..) [, ..] main`: the main statement
    /// decides. The lexer walks the CTE list by paren depth; a shape it does not
    /// expect goes to sqlparser.
    fn with(&mut self) -> Kind {
        match self.walk_ctes() {
            Some(kind) => {
                self.expression = kind == Kind::Read;
                kind
            }
            None => {
                self.push_rest();
                self.rescan_statement();
                let text = self.statement_text();
                let kind = fallback::statement_kind(text, self.opts);
                self.decider = if kind.is_some() {
                    Decider::Parser
                } else {
                    Decider::Unknown
                };
                self.expression = kind != Some(Kind::Write);
                kind.unwrap_or(Kind::Other)
            }
        }
    }

    fn walk_ctes(&mut self) -> Option<Kind> {
        self.s.eat("recursive");
        loop {
            let name = self.s.next()?;
            if !name.is_name() {
                return None;
            }
            if self.s.eat_kind(TokenKind::LParen) {
                self.group(false)?;
            }
            if !self.s.eat("as") || !self.s.eat_kind(TokenKind::LParen) {
                return None;
            }
            self.sc.break_sequence();
            self.group(true)?;
            if !self.s.eat_kind(TokenKind::Comma) {
                break;
            }
        }
        let main = self.s.peek()?;
        let src = self.src();
        let is = |kws: &[&str]| kws.iter().any(|kw| main.is_word(src, kw));
        if main.kind == TokenKind::LParen || is(&["select", "table", "values"]) {
            Some(Kind::Read)
        } else if is(&["update", "delete", "insert", "replace"]) {
            Some(Kind::Write)
        } else {
            None
        }
    }

    /// Consumes up to the `)` matching an already consumed `(`; `push` feeds the
    /// inside to the scanner. `None` if the statement ends first.
    fn group(&mut self, push: bool) -> Option<()> {
        let mut depth = 1u32;
        for t in self.s.by_ref() {
            match t.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                _ => {}
            }
            if push {
                self.sc.push(t);
            }
        }
        None
    }

    /// The statement's text so far (all of it once the stream is exhausted).
    fn statement_text(&self) -> &'s [u8] {
        let start = self.s.first.unwrap_or(0);
        &self.src()[start..self.s.last_end.max(start)]
    }

    /// Feeds the whole statement to a fresh scanner (after a partial walk skipped
    /// tokens) and keeps the union of the flags.
    fn rescan_statement(&mut self) {
        let text_start = self.s.first.unwrap_or(0);
        let mut sc = Scanner::new(self.src(), self.opts);
        let lex = Lexer::at(self.src(), text_start, self.opts);
        for t in lex.take_while(|t| t.end <= self.s.last_end) {
            sc.push(t);
        }
        self.sc.flags |= sc.finish();
    }

    fn load(&mut self) -> Kind {
        if self.s.eat("index") {
            self.extra |= Flags::IMPLICIT_COMMIT;
            Kind::Admin
        } else {
            // LOAD DATA, LOAD XML
            Kind::Write
        }
    }

    fn show(&mut self) -> Kind {
        let Some(t) = self.s.next() else {
            return self.unknown();
        };
        let src = self.src();
        let is = |kws: &[&str]| kws.iter().any(|kw| t.is_word(src, kw));
        // SHOW COUNT(*) WARNINGS|ERRORS is the only SHOW COUNT; SHOW [SESSION] STATUS
        // and SHOW PROFILE(S) describe this connection's previous statements.
        if is(&[
            "warnings", "errors", "count", "status", "profile", "profiles",
        ]) {
            return Kind::Diagnostics;
        }
        if is(&["session", "local"]) && self.s.eat("status") {
            return Kind::Diagnostics;
        }
        let server = &[
            "global",
            "processlist",
            "master",
            "slave",
            "replica",
            "replicas",
            "binary",
            "binlog",
            "relaylog",
            "engine",
            "all",
            "explain",
            "analyze",
        ];
        if is(server) || (is(&["full"]) && self.s.eat("processlist")) {
            self.extra |= Flags::SERVER_STATE;
        }
        self.sc.push(t);
        self.expression = true;
        Kind::Read
    }

    /// `EXPLAIN`/`DESCRIBE`/`DESC`: of a table, of a statement, `FOR CONNECTION`.
    fn explain(&mut self, depth: u8) -> Kind {
        loop {
            if self.s.eat("extended") || self.s.eat("partitions") || self.s.eat("analyze") {
                continue;
            }
            if self.s.eat("format") {
                self.s.eat_kind(TokenKind::Eq);
                self.s.next();
                continue;
            }
            if self.s.eat("into") {
                // MySQL 8.0.32: EXPLAIN FORMAT=JSON INTO @v SELECT ..
                self.s.next();
                self.extra |= Flags::INTO_VARIABLE | Flags::USER_VAR_ASSIGN;
                continue;
            }
            break;
        }
        if self.next_is_explainable() {
            // Without ANALYZE nothing runs, but a write is still explained on the
            // primary (where it would run) and a read keeps its flags: MariaDB may
            // evaluate constant subqueries, stored functions included, to plan.
            return match self.body(depth + 1) {
                k @ (Kind::Read | Kind::Write) => k,
                _ => Kind::Other,
            };
        }
        if self.s.eat("for") {
            // EXPLAIN FOR CONNECTION n: another session of the server that runs it.
            self.extra |= Flags::SERVER_STATE;
            return Kind::Read;
        }
        match self.s.peek() {
            Some(t) if t.is_name() => Kind::Read,
            _ => self.unknown(),
        }
    }

    /// The next token starts a statement `EXPLAIN`/`ANALYZE` can take.
    fn next_is_explainable(&mut self) -> bool {
        const STARTS: [&str; 8] = [
            "select", "table", "values", "with", "insert", "update", "delete", "replace",
        ];
        self.s.peek().is_some_and(|t| t.kind == TokenKind::LParen) || self.next_starts(&STARTS)
    }

    /// `ANALYZE TABLE` is maintenance; MariaDB `ANALYZE stmt` runs `stmt`.
    fn analyze(&mut self, depth: u8) -> Kind {
        let _ = self.s.eat("no_write_to_binlog") || self.s.eat("local");
        if self.s.eat("table") || self.s.eat("tables") {
            self.extra |= Flags::IMPLICIT_COMMIT;
            return Kind::Admin;
        }
        if self.s.eat("format") {
            self.s.eat_kind(TokenKind::Eq);
            self.s.next();
        }
        if self.next_is_explainable() {
            return match self.body(depth + 1) {
                k @ (Kind::Read | Kind::Write) => k,
                _ => Kind::Other,
            };
        }
        self.unknown()
    }

    fn use_database(&mut self) -> Kind {
        if self.take_name() && self.s.peek().is_none() {
            Kind::Use
        } else {
            self.unknown()
        }
    }

    /// `PREPARE s FROM ..`, `EXECUTE s [USING ..]`, `EXECUTE IMMEDIATE ..`,
    /// `DEALLOCATE PREPARE s` (`DROP PREPARE` is in `ddl.rs`).
    fn prepared(&mut self, lower: &[u8]) -> Kind {
        match lower {
            b"prepare" if self.take_name() && self.s.eat("from") => Kind::SqlPrepare,
            // The text is an expression: what it runs is not known here.
            b"execute" if self.s.eat("immediate") => Kind::Write,
            b"execute" if self.take_name() => Kind::SqlExecute,
            b"deallocate" if self.s.eat("prepare") && self.take_name() => Kind::SqlDeallocate,
            _ => self.unknown(),
        }
    }

    /// `GET [CURRENT|STACKED] DIAGNOSTICS @a = NUMBER, ..`
    fn get_diagnostics(&mut self) -> Kind {
        let _ = self.s.eat("current") || self.s.eat("stacked");
        if !self.s.eat("diagnostics") {
            return self.unknown();
        }
        for t in self.s.by_ref() {
            if t.kind == TokenKind::UserVar {
                self.extra |= Flags::USER_VAR_ASSIGN;
            }
        }
        Kind::Diagnostics
    }

    fn admin(&mut self, lower: &[u8]) -> Kind {
        // MariaDB "SQL statements that cause an implicit commit".
        let commits = matches!(
            lower,
            b"flush"
                | b"reset"
                | b"change"
                | b"grant"
                | b"revoke"
                | b"install"
                | b"uninstall"
                | b"cache"
                | b"optimize"
                | b"repair"
                | b"check"
                | b"stop"
        );
        if commits {
            self.extra |= Flags::IMPLICIT_COMMIT;
        }
        Kind::Admin
    }
}
