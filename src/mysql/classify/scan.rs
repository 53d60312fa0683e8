//! The flag scanner: fed a statement's tokens one by one, it raises the flags that
//! tokens anywhere in the statement trigger: `FOR UPDATE`, `LOCK IN SHARE MODE`,
//! `INTO`, `:=`, `@var`, `@@var`, `SQL_CALC_FOUND_ROWS`, `NEXT VALUE FOR`, and
//! function calls (a name followed by `(`).
//!
//! It only looks back (three tokens), so statement parsers can feed it the tokens
//! they do not consume themselves and skip the ones they do (a `SET` target, a CTE
//! name and its column list).

use super::lexer::{Token, TokenKind};
use super::words::{callee, sysvar_flags, Callee};
use super::{Flags, Options};

/// Flag state for one statement (or several, for a multi-statement).
pub struct Scanner<'s, 'o> {
    src: &'s [u8],
    opts: &'s Options<'o>,
    pub flags: Flags,
    /// The last three tokens pushed, most recent first.
    prev: [Option<Token>; 3],
    /// The previous token was `@var`: `:=` next makes it an assignment, anything
    /// else a read.
    pending_var: bool,
    /// The previous token was `INTO`: the next one says what kind of target.
    after_into: bool,
    /// Inside `INTO @a, @b`: those variables are assigned, not read.
    into_list: bool,
}

// === impl Scanner ===

impl<'s, 'o> Scanner<'s, 'o> {
    pub fn new(src: &'s [u8], opts: &'s Options<'o>) -> Self {
        Scanner {
            src,
            opts,
            flags: Flags::NONE,
            prev: [None; 3],
            pending_var: false,
            after_into: false,
            into_list: false,
        }
    }

    /// Feeds the next token of the statement.
    pub fn push(&mut self, t: Token) {
        if self.pending_var {
            self.pending_var = false;
            self.flags |= if t.kind == TokenKind::Assign {
                Flags::USER_VAR_ASSIGN
            } else {
                Flags::USER_VAR_READ
            };
        }
        if self.into_list && !matches!(t.kind, TokenKind::UserVar | TokenKind::Comma) {
            self.into_list = false;
        }
        if self.after_into {
            self.after_into = false;
            self.target_of_into(t);
        } else if self.into_list {
            if t.kind == TokenKind::UserVar {
                self.flags |= Flags::USER_VAR_ASSIGN;
            }
        } else {
            match t.kind {
                TokenKind::UserVar => self.pending_var = true,
                TokenKind::SysVar => self.flags |= sysvar_flags(sysvar_name(t.text(self.src))),
                TokenKind::LParen => self.maybe_call(),
                TokenKind::Word => self.word(t),
                _ => {}
            }
        }
        self.prev = [Some(t), self.prev[0], self.prev[1]];
    }

    /// Forgets the token history, e.g. across a `SET` target the scanner did not see.
    pub fn break_sequence(&mut self) {
        self.finish_pending();
        self.prev = [None; 3];
        self.after_into = false;
        self.into_list = false;
    }

    /// Resolves what the last token left open and returns the flags.
    pub fn finish(&mut self) -> Flags {
        self.finish_pending();
        self.flags
    }

    fn finish_pending(&mut self) {
        if self.pending_var {
            self.pending_var = false;
            self.flags |= Flags::USER_VAR_READ;
        }
    }

    fn prev_is_word(&self, i: usize, kw: &str) -> bool {
        self.prev[i].is_some_and(|p| p.is_word(self.src, kw))
    }

    fn word(&mut self, t: Token) {
        let w = t.text(self.src);
        let is = |kw: &str| w.eq_ignore_ascii_case(kw.as_bytes());
        // By length first: most words are identifiers that match nothing.
        match w.len() {
            2 if is("in") && self.prev_is_word(0, "lock") => self.flags |= Flags::LOCKING_READ,
            3 if is("for")
                && self.prev_is_word(0, "value")
                && (self.prev_is_word(1, "next") || self.prev_is_word(1, "previous")) =>
            {
                // MariaDB sequences: NEXT VALUE FOR s, PREVIOUS VALUE FOR s.
                self.flags |= Flags::SIDE_EFFECT;
            }
            4 if is("into") => self.after_into = true,
            5 | 6 if (is("update") || is("share")) && self.prev_is_word(0, "for") => {
                self.flags |= Flags::LOCKING_READ;
            }
            7 if (is("nextval") || is("currval"))
                && self.prev[0].is_some_and(|p| p.kind == TokenKind::Dot) =>
            {
                // Oracle-mode `s.nextval` / `s.currval`.
                self.flags |= Flags::SIDE_EFFECT;
            }
            19 if is("sql_calc_found_rows") => self.flags |= Flags::CALC_FOUND_ROWS,
            _ => {}
        }
    }

    /// The token after `INTO`: `OUTFILE`/`DUMPFILE`, `@var`, or a local variable.
    fn target_of_into(&mut self, t: Token) {
        if t.is_word(self.src, "outfile") || t.is_word(self.src, "dumpfile") {
            self.flags |= Flags::INTO_OUTFILE;
        } else if t.kind == TokenKind::UserVar {
            self.flags |= Flags::INTO_VARIABLE | Flags::USER_VAR_ASSIGN;
            self.into_list = true;
        } else {
            self.flags |= Flags::INTO_VARIABLE;
        }
    }

    /// A `(` arrived: is the previous token a function name, and which?
    fn maybe_call(&mut self) {
        let Some(name) = self.prev[0].filter(Token::is_name) else {
            return;
        };
        let before = self.prev[1];
        let before_is = |kind: TokenKind| before.is_some_and(|b| b.kind == kind);
        // `AS d (a, b)`, `CAST(x AS DATETIME(6))`; `) OVER (`, `) AGAINST (`.
        if self.prev_is_word(1, "as") || before_is(TokenKind::RParen) {
            return;
        }
        if before_is(TokenKind::Dot) {
            // `db.f(..)`: a schema-qualified call is never a builtin.
            return self.stored(name, self.prev[2]);
        }
        if name.kind == TokenKind::QuotedIdent {
            return self.stored(name, None);
        }
        let w = name.text(self.src);
        let is = |kw: &str| w.eq_ignore_ascii_case(kw.as_bytes());
        let not_call =
            // JSON_TABLE(doc, '$' COLUMNS (..)), NESTED PATH '$.a' COLUMNS (..)
            (is("columns") && before_is(TokenKind::Str))
            || (is("of") && self.prev_is_word(1, "member"))
            // `= ANY (subquery)`, `<> SOME (..)`
            || ((is("any") || is("some")) && (before_is(TokenKind::Eq) || before_is(TokenKind::Op)));
        if not_call {
            return;
        }
        match callee(w) {
            Callee::Keyword => {}
            Callee::Builtin(flags) => self.flags |= flags,
            Callee::Other => self.stored(name, None),
        }
    }

    /// A call of a non-builtin function: fine if declared read-only, else flagged.
    fn stored(&mut self, name: Token, schema: Option<Token>) {
        let name = unquote(name.text(self.src));
        let schema = schema
            .filter(Token::is_name)
            .map(|s| unquote(s.text(self.src)));
        let declared = self.opts.read_only_functions.iter().any(|f| {
            let f = f.as_bytes();
            match (f.iter().position(|&b| b == b'.'), schema) {
                (Some(dot), Some(s)) => {
                    f[..dot].eq_ignore_ascii_case(s) && f[dot + 1..].eq_ignore_ascii_case(name)
                }
                (Some(_), None) => false,
                (None, _) => f.eq_ignore_ascii_case(name),
            }
        });
        if !declared {
            self.flags |= Flags::STORED_FUNCTION;
        }
    }
}

/// `@@global.read_only` -> `read_only`; `` @@`x` `` -> `x`.
fn sysvar_name(text: &[u8]) -> &[u8] {
    let name = text.get(2..).unwrap_or_default();
    let last = name.rsplit(|&b| b == b'.').next().unwrap_or(name);
    unquote(last)
}

/// The inside of a quoted name (`` `a` `` or `"a"`); other text as it is. Doubled
/// quotes are left doubled: names that contain quotes are not worth an allocation.
pub fn unquote(text: &[u8]) -> &[u8] {
    match text {
        [q @ (b'`' | b'"' | b'\''), inner @ .., last] if q == last => inner,
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::Lexer;
    use super::*;

    fn scan(sql: &str, ro: &[String]) -> Flags {
        let opts = Options {
            ansi_quotes: false,
            no_backslash_escapes: false,
            read_only_functions: ro,
        };
        let mut sc = Scanner::new(sql.as_bytes(), &opts);
        for t in Lexer::new(sql.as_bytes(), &opts) {
            sc.push(t);
        }
        sc.finish()
    }

    #[test]
    fn calls_keywords_and_stored_functions() {
        assert_eq!(
            scan("SELECT NOW(), COUNT(*) FROM t WHERE a IN (1)", &[]),
            Flags::NONE
        );
        assert_eq!(scan("SELECT f(1)", &[]), Flags::STORED_FUNCTION);
        assert_eq!(scan("SELECT f(1)", &["f".into()]), Flags::NONE);
        assert_eq!(
            scan("SELECT db.NOW()", &["f".into()]),
            Flags::STORED_FUNCTION
        );
        assert_eq!(scan("SELECT db.f()", &["db.f".into()]), Flags::NONE);
        assert_eq!(scan("SELECT `f`(1)", &["f".into()]), Flags::NONE);
        assert_eq!(scan("SELECT x FROM (SELECT 1) AS d (x)", &[]), Flags::NONE);
        assert_eq!(scan("SELECT a = ANY (SELECT 1)", &[]), Flags::NONE);
        assert_eq!(scan("SELECT any(1)", &[]), Flags::STORED_FUNCTION);
    }

    #[test]
    fn variables_and_into() {
        assert_eq!(scan("SELECT @a := 1", &[]), Flags::USER_VAR_ASSIGN);
        assert_eq!(scan("SELECT @a", &[]), Flags::USER_VAR_READ);
        assert_eq!(
            scan("SELECT 1, 2 INTO @a, @b FROM t", &[]),
            Flags::INTO_VARIABLE | Flags::USER_VAR_ASSIGN
        );
        assert_eq!(
            scan("SELECT 1 INTO OUTFILE '/tmp/x'", &[]),
            Flags::INTO_OUTFILE
        );
        assert_eq!(scan("SELECT @@global.read_only", &[]), Flags::SERVER_STATE);
        assert_eq!(scan("SELECT @@IDENTITY", &[]), Flags::LAST_INSERT_ID);
    }

    #[test]
    fn locking_and_sequences() {
        assert_eq!(scan("SELECT 1 FOR UPDATE", &[]), Flags::LOCKING_READ);
        assert_eq!(
            scan("SELECT 1 LOCK IN SHARE MODE", &[]),
            Flags::LOCKING_READ
        );
        assert_eq!(scan("SELECT NEXT VALUE FOR s", &[]), Flags::SIDE_EFFECT);
        assert_eq!(scan("SELECT next value FROM t", &[]), Flags::NONE);
        assert_eq!(scan("SELECT 'FOR UPDATE'", &[]), Flags::NONE);
    }
}
