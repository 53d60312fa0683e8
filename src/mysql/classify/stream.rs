//! One statement's tokens: the lexer's tokens up to the `;` that ends the statement.
//!
//! A `;` inside a compound statement (`CREATE PROCEDURE .. BEGIN ..; ..; END`,
//! `BEGIN NOT ATOMIC .. END`) does not end it: once a statement parser calls
//! [`Stream::compound`], `BEGIN`/`CASE` .. `END` blocks are counted and only a `;`
//! outside them ends the statement. Reads never enable this: in `SELECT begin FROM
//! t; DELETE ..` the `;` must end the `SELECT`.

use super::lexer::{Lexer, Token, TokenKind};

pub struct Stream<'a> {
    lex: Lexer<'a>,
    /// A token read ahead by [`Stream::peek`] (`Some(None)`: the end was peeked).
    peeked: Option<Option<Token>>,
    compound: bool,
    /// Open `BEGIN`/`CASE` blocks.
    depth: u32,
    /// The previous token was `END` (so a `CASE` now closes, not opens).
    after_end: bool,
    done: bool,
    /// The statement ended at a `;` (more statements may follow).
    pub semicolon: bool,
    /// Byte range covered by the statement's tokens so far.
    pub first: Option<usize>,
    pub last_end: usize,
}

// === impl Stream ===

impl<'a> Stream<'a> {
    pub fn new(lex: Lexer<'a>) -> Self {
        Stream {
            lex,
            peeked: None,
            compound: false,
            depth: 0,
            after_end: false,
            done: false,
            semicolon: false,
            first: None,
            last_end: 0,
        }
    }

    pub fn src(&self) -> &'a [u8] {
        self.lex.src()
    }

    /// Gives the lexer back, positioned after this statement (and its `;`).
    pub fn into_lexer(mut self) -> Lexer<'a> {
        while self.next().is_some() {}
        self.lex
    }

    /// Count `BEGIN`/`CASE` .. `END` blocks from now on; `open` blocks are already
    /// open (the `BEGIN` of `BEGIN NOT ATOMIC` was consumed before it was known).
    pub fn compound(&mut self, open: u32) {
        self.compound = true;
        self.depth += open;
    }

    pub fn peek(&mut self) -> Option<Token> {
        if self.peeked.is_none() {
            self.peeked = Some(self.advance());
        }
        self.peeked.flatten()
    }

    /// The next token is the word `kw`: consume it and say so.
    pub fn eat(&mut self, kw: &str) -> bool {
        let src = self.src();
        let hit = self.peek().is_some_and(|t| t.is_word(src, kw));
        if hit {
            self.next();
        }
        hit
    }

    /// The next token is of `kind`: consume it and say so.
    pub fn eat_kind(&mut self, kind: TokenKind) -> bool {
        let hit = self.peek().is_some_and(|t| t.kind == kind);
        if hit {
            self.next();
        }
        hit
    }

    fn advance(&mut self) -> Option<Token> {
        if self.done {
            return None;
        }
        let Some(t) = self.lex.next() else {
            self.done = true;
            return None;
        };
        if t.kind == TokenKind::Semicolon && self.depth == 0 {
            self.done = true;
            self.semicolon = true;
            return None;
        }
        if self.compound {
            self.track_blocks(t);
        }
        self.first.get_or_insert(t.start);
        self.last_end = t.end;
        Some(t)
    }

    fn track_blocks(&mut self, t: Token) {
        let src = self.lex.src();
        let after_end = std::mem::replace(&mut self.after_end, false);
        if t.is_word(src, "begin") || (t.is_word(src, "case") && !after_end) {
            self.depth += 1;
        } else if t.is_word(src, "end") {
            // END IF / END LOOP / END WHILE / END REPEAT / END FOR close blocks
            // that were never counted; END, END CASE and `END label` close one.
            let next = self.lex.clone().next();
            let closes_uncounted = next.is_some_and(|n| {
                ["if", "loop", "while", "repeat", "for"]
                    .iter()
                    .any(|kw| n.is_word(src, kw))
            });
            if !closes_uncounted {
                self.depth = self.depth.saturating_sub(1);
                self.after_end = true;
            }
        }
    }
}

impl Iterator for Stream<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        match self.peeked.take() {
            Some(t) => t,
            None => self.advance(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Options;
    use super::*;

    fn statements(sql: &str, compound_after: Option<&str>) -> Vec<usize> {
        let opts = Options::default();
        let mut lex = Lexer::new(sql.as_bytes(), &opts);
        let mut counts = vec![];
        loop {
            let mut s = Stream::new(lex);
            let mut n = 0;
            while let Some(t) = s.next() {
                n += 1;
                if compound_after.is_some_and(|kw| t.is_word(sql.as_bytes(), kw)) {
                    s.compound(0);
                }
            }
            counts.push(n);
            let more = s.semicolon;
            lex = s.into_lexer();
            if !more {
                return counts;
            }
        }
    }

    #[test]
    fn semicolons_split_statements() {
        assert_eq!(statements("SELECT 1; SELECT 2;", None), [2, 2, 0]);
        assert_eq!(statements("SELECT ';'", None), [2]);
    }

    #[test]
    fn compound_bodies_keep_their_semicolons() {
        let sql = "CREATE PROCEDURE p() BEGIN IF a THEN SELECT 1; END IF; \
                   SELECT CASE WHEN 1 THEN 2 END; END; SELECT 3";
        assert_eq!(statements(sql, Some("procedure")), [24, 2]);
        // Without compound tracking, BEGIN in a read does not hide the `;`.
        assert_eq!(
            statements("SELECT begin FROM t; DELETE FROM t", None),
            [4, 3]
        );
    }
}
