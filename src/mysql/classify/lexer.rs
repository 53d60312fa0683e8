//! The hand-written statement lexer: bytes -> tokens, no allocation.
//!
//! It knows exactly as much MySQL/MariaDB lexical structure as classification needs
//! (MariaDB "Comment Syntax", "String Literals", "Identifier Names", "User-Defined
//! Variables"; MySQL 8.0 reference 9.1-9.7):
//!
//! - strings `'..'` and `".."` (the latter is an identifier under `ANSI_QUOTES`), with
//!   doubled quotes and, unless `NO_BACKSLASH_ESCAPES`, backslash escapes;
//! - identifiers `` `..` `` with doubled backticks;
//! - comments `#..`, `-- ..` (dash-dash must be followed by whitespace, a control
//!   character or the end) and `/* .. */`;
//! - executable comments `/*! .. */`, `/*!50100 .. */`, `/*M! .. */`, `/*M!100100 .. */`:
//!   their content is lexed as code, because MariaDB runs it (every 5-digit `/*!`
//!   version is below MariaDB's own, so MariaDB always runs `/*!` content);
//! - `@var`, `@'var'`, `@@var`, `@@scope.var`, and `:=`.
//!
//! Unknown bytes become one-byte operator tokens: the lexer never fails and never
//! panics, whatever the input. What it could not close (a string, a quoted
//! identifier, a comment) is recorded in [`Lexer::unterminated`].

use super::Options;

/// What a token is. Keywords are not distinguished from identifiers here: the
/// classifier compares [`TokenKind::Word`] text case-insensitively where it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An unquoted keyword or identifier (letters, digits, `_`, `$`, bytes >= 0x80).
    Word,
    /// `` `ident` ``, or `"ident"` under `ANSI_QUOTES`.
    QuotedIdent,
    /// `'text'`, or `"text"` without `ANSI_QUOTES`.
    Str,
    /// Anything starting with a digit (`1`, `1.5e3`, `0x1F`, also `1abc`).
    Number,
    /// `@name`, `@'name'`, `` @`name` ``, `@"name"`.
    UserVar,
    /// `@@name`, `@@global.name`, `@@session.name`, ...
    SysVar,
    LParen,
    RParen,
    Comma,
    Dot,
    Semicolon,
    /// `:=`
    Assign,
    /// `=` alone (not part of `<=`, `>=`, `!=`, `<=>`).
    Eq,
    /// Any other punctuation, one byte per token.
    Op,
}

/// One token: a kind and its byte range in the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

/// A comment found at some position, as [`comment_at`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comment {
    /// An ordinary comment: `body` is its text without delimiters, `end` is just past it.
    Plain {
        body_start: usize,
        body_end: usize,
        end: usize,
        terminated: bool,
    },
    /// `/*!` or `/*M!`: code starts at `code_start` (after the optional version).
    Executable { code_start: usize, versioned: bool },
}

/// The lexer: an iterator of tokens that is cheap to clone (peeking is a clone).
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    ansi_quotes: bool,
    backslash_escapes: bool,
    /// Inside `/*! .. */`: the next `*/` closes it instead of being two operators.
    in_executable: bool,
    /// Treat `/*!50100 .. */`-style comments (with a version) as plain comments:
    /// what a server older than the version sees.
    skip_versioned: bool,
    /// An executable comment with a version was seen: its content is code only for
    /// servers at least that recent.
    pub saw_versioned: bool,
    /// An executable comment was entered (reported as `Flags::EXECUTABLE_COMMENT`).
    pub saw_executable: bool,
    /// A string contained a backslash: its extent depends on `NO_BACKSLASH_ESCAPES`.
    pub saw_backslash: bool,
    /// A `"` token was lexed: its meaning depends on `ANSI_QUOTES`.
    pub saw_double_quote: bool,
    /// A string, quoted identifier or comment ran to the end of the input.
    pub unterminated: bool,
}

// === impl Token ===

impl Token {
    /// The token's bytes in `src`.
    pub fn text<'s>(&self, src: &'s [u8]) -> &'s [u8] {
        &src[self.start..self.end]
    }

    /// A [`TokenKind::Word`] equal to `kw` (given in lowercase), ignoring ASCII case.
    pub fn is_word(&self, src: &[u8], kw: &str) -> bool {
        self.kind == TokenKind::Word && self.text(src).eq_ignore_ascii_case(kw.as_bytes())
    }

    /// A name: a word or a quoted identifier.
    pub fn is_name(&self) -> bool {
        matches!(self.kind, TokenKind::Word | TokenKind::QuotedIdent)
    }
}

// === impl Lexer ===

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8], opts: &Options<'_>) -> Self {
        Self::at(src, 0, opts)
    }

    /// A lexer that starts at byte `pos` (at a token or whitespace boundary).
    pub fn at(src: &'a [u8], pos: usize, opts: &Options<'_>) -> Self {
        Lexer {
            src,
            pos: pos.min(src.len()),
            ansi_quotes: opts.ansi_quotes,
            backslash_escapes: !opts.no_backslash_escapes,
            in_executable: false,
            skip_versioned: false,
            saw_versioned: false,
            saw_executable: false,
            saw_backslash: false,
            saw_double_quote: false,
            unterminated: false,
        }
    }

    /// This lexer, reading versioned executable comments as plain comments.
    pub fn skipping_versioned(mut self) -> Self {
        self.skip_versioned = true;
        self
    }

    pub fn src(&self) -> &'a [u8] {
        self.src
    }

    /// Skips whitespace and comments (entering executable comments as code).
    fn skip_trivia(&mut self) {
        while self.pos < self.src.len() {
            let b = self.src[self.pos];
            if b <= b' ' {
                self.pos += 1;
            } else if !matches!(b, b'#' | b'-' | b'/' | b'*') {
                // The common case: a token starts here.
                return;
            } else if self.in_executable && self.src[self.pos..].starts_with(b"*/") {
                self.in_executable = false;
                self.pos += 2;
            } else if let Some(c) = comment_at(self.src, self.pos) {
                match c {
                    Comment::Plain {
                        end, terminated, ..
                    } => {
                        self.unterminated |= !terminated;
                        self.pos = end;
                    }
                    Comment::Executable {
                        code_start,
                        versioned,
                    } => {
                        self.saw_versioned |= versioned;
                        if versioned && self.skip_versioned {
                            let close = find(&self.src[code_start..], b"*/");
                            self.unterminated |= close.is_none();
                            self.pos = close.map_or(self.src.len(), |i| code_start + i + 2);
                            continue;
                        }
                        self.in_executable = true;
                        self.saw_executable = true;
                        self.pos = code_start;
                    }
                }
            } else {
                return;
            }
        }
    }

    /// Consumes a quoted run closed by `q`; `start` is at the opening quote.
    /// Doubled quotes stay inside; backslashes escape when `escapes` is set.
    fn quoted(&mut self, start: usize, q: u8, escapes: bool) -> usize {
        let mut i = start + 1;
        while i < self.src.len() {
            let b = self.src[i];
            if b == b'\\' && q != b'`' {
                self.saw_backslash = true;
                if escapes {
                    i += 2;
                    continue;
                }
            }
            if b == q {
                if self.src.get(i + 1) == Some(&q) {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            i += 1;
        }
        self.unterminated = true;
        self.src.len()
    }

    fn word_end(&self, mut i: usize) -> usize {
        while i < self.src.len() && is_ident_byte(self.src[i]) {
            i += 1;
        }
        i
    }

    /// `1`, `1.5`, `1e-3`, `0x1F`, `1abc`: digits and identifier bytes, a decimal
    /// point followed by a digit, and an exponent sign.
    fn number_end(&self, start: usize) -> usize {
        let mut i = start;
        while i < self.src.len() {
            let b = self.src[i];
            let next_digit = self.src.get(i + 1).is_some_and(u8::is_ascii_digit);
            let continues = is_ident_byte(b)
                || (b == b'.' && next_digit)
                || ((b == b'+' || b == b'-')
                    && next_digit
                    && matches!(self.src[i - 1], b'e' | b'E'));
            if !continues {
                break;
            }
            i += 1;
        }
        i
    }

    /// `@name`, `@'name'`, `@@scope.name`; `start` is at the first `@`.
    fn variable(&mut self, start: usize) -> Token {
        let sys = self.src.get(start + 1) == Some(&b'@');
        let mut i = start + if sys { 2 } else { 1 };
        loop {
            match self.src.get(i) {
                Some(&q @ (b'\'' | b'"' | b'`')) => {
                    self.saw_double_quote |= q == b'"';
                    i = self.quoted(i, q, self.backslash_escapes && q != b'`');
                }
                Some(_) => i = self.word_end(i),
                None => {}
            }
            // `@@global.name`: the scope and the name are one token.
            let dotted = sys && self.src.get(i) == Some(&b'.');
            if !dotted
                || !self
                    .src
                    .get(i + 1)
                    .is_some_and(|&b| is_ident_byte(b) || b == b'`')
            {
                break;
            }
            i += 1;
        }
        let kind = if sys {
            TokenKind::SysVar
        } else {
            TokenKind::UserVar
        };
        Token {
            kind,
            start,
            end: i,
        }
    }

    fn punct(&self, start: usize) -> Token {
        let b = self.src[start];
        let next = self.src.get(start + 1).copied();
        let prev = start.checked_sub(1).map(|p| self.src[p]);
        let (kind, len) = match b {
            b'(' => (TokenKind::LParen, 1),
            b')' => (TokenKind::RParen, 1),
            b',' => (TokenKind::Comma, 1),
            b'.' => (TokenKind::Dot, 1),
            b';' => (TokenKind::Semicolon, 1),
            b':' if next == Some(b'=') => (TokenKind::Assign, 2),
            b'=' if !matches!(prev, Some(b'<' | b'>' | b'!' | b':')) => (TokenKind::Eq, 1),
            _ => (TokenKind::Op, 1),
        };
        Token {
            kind,
            start,
            end: start + len,
        }
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        self.skip_trivia();
        let start = self.pos;
        let b = *self.src.get(start)?;
        let tok = match b {
            b'\'' => Token {
                kind: TokenKind::Str,
                start,
                end: self.quoted(start, b'\'', self.backslash_escapes),
            },
            b'"' => {
                self.saw_double_quote = true;
                let (kind, escapes) = if self.ansi_quotes {
                    (TokenKind::QuotedIdent, false)
                } else {
                    (TokenKind::Str, self.backslash_escapes)
                };
                let end = self.quoted(start, b'"', escapes);
                Token { kind, start, end }
            }
            b'`' => Token {
                kind: TokenKind::QuotedIdent,
                start,
                end: self.quoted(start, b'`', false),
            },
            b'@' => self.variable(start),
            b'0'..=b'9' => Token {
                kind: TokenKind::Number,
                start,
                end: self.number_end(start),
            },
            _ if is_ident_byte(b) => Token {
                kind: TokenKind::Word,
                start,
                end: self.word_end(start),
            },
            _ => self.punct(start),
        };
        self.pos = tok.end;
        Some(tok)
    }
}

/// If a comment starts at `pos`, what kind and where it ends.
pub fn comment_at(src: &[u8], pos: usize) -> Option<Comment> {
    let rest = &src[pos..];
    let to_eol = |body_start: usize| {
        let end = memchr_newline(src, body_start);
        Comment::Plain {
            body_start,
            body_end: end,
            end,
            terminated: true,
        }
    };
    match rest {
        [b'#', ..] => Some(to_eol(pos + 1)),
        [b'-', b'-'] => Some(to_eol(pos + 2)),
        [b'-', b'-', c, ..] if *c <= b' ' => Some(to_eol(pos + 2)),
        [b'/', b'*', b'!', ..] => Some(executable(src, pos + 3)),
        [b'/', b'*', b'M', b'!', ..] => Some(executable(src, pos + 4)),
        [b'/', b'*', ..] => {
            let body_start = pos + 2;
            let close = find(&src[body_start..], b"*/");
            Some(match close {
                Some(i) => Comment::Plain {
                    body_start,
                    body_end: body_start + i,
                    end: body_start + i + 2,
                    terminated: true,
                },
                None => Comment::Plain {
                    body_start,
                    body_end: src.len(),
                    end: src.len(),
                    terminated: false,
                },
            })
        }
        _ => None,
    }
}

/// The version after `/*!` (5 digits) or `/*M!` (5 or 6 digits) is not code.
fn executable(src: &[u8], start: usize) -> Comment {
    let mut i = start;
    while i < src.len() && i - start < 6 && src[i].is_ascii_digit() {
        i += 1;
    }
    Comment::Executable {
        code_start: i,
        versioned: i > start,
    }
}

fn memchr_newline(src: &[u8], from: usize) -> usize {
    src[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(src.len(), |i| from + i)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Bytes that may appear in an unquoted identifier (MariaDB "Identifier Names":
/// `[0-9a-zA-Z$_]` and any non-ASCII character).
pub fn is_ident_byte(b: u8) -> bool {
    IDENT[b as usize]
}

/// [`is_ident_byte`] as a table: the lexer's innermost loop.
const IDENT: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(ansi: bool, nobs: bool) -> Options<'static> {
        Options {
            ansi_quotes: ansi,
            no_backslash_escapes: nobs,
            read_only_functions: &[],
        }
    }

    fn lex(sql: &str, o: &Options<'_>) -> Vec<(TokenKind, String)> {
        Lexer::new(sql.as_bytes(), o)
            .map(|t| {
                let text = String::from_utf8_lossy(t.text(sql.as_bytes())).into_owned();
                (t.kind, text)
            })
            .collect()
    }

    fn kinds(sql: &str, o: &Options<'_>) -> Vec<TokenKind> {
        lex(sql, o).into_iter().map(|(k, _)| k).collect()
    }

    use TokenKind::*;

    #[test]
    fn words_numbers_and_punctuation() {
        let o = opts(false, false);
        let toks = lex("SELECT a.b, 1.5e-3, 0x1F FROM `t``x`;", &o);
        let expect = [
            (Word, "SELECT"),
            (Word, "a"),
            (Dot, "."),
            (Word, "b"),
            (Comma, ","),
            (Number, "1.5e-3"),
            (Comma, ","),
            (Number, "0x1F"),
            (Word, "FROM"),
            (QuotedIdent, "`t``x`"),
            (Semicolon, ";"),
        ];
        let got: Vec<_> = toks.iter().map(|(k, s)| (*k, s.as_str())).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn strings_follow_the_sql_mode() {
        let plain = opts(false, false);
        assert_eq!(kinds(r#"'a\'b' "c""d""#, &plain), [Str, Str]);
        // Without backslash escapes, 'a\' ends at the second quote.
        let nobs = opts(false, true);
        assert_eq!(kinds(r"'a\' b", &nobs), [Str, Word]);
        let ansi = opts(true, false);
        assert_eq!(kinds(r#""x" 'y'"#, &ansi), [QuotedIdent, Str]);
    }

    #[test]
    fn comments_are_skipped_and_executable_comments_are_code() {
        let o = opts(false, false);
        assert_eq!(
            kinds("-- x\n#y\n/* z */ SELECT --1", &o),
            [Word, Op, Op, Number]
        );
        let mut lx = Lexer::new(b"/*!40101 SET NAMES utf8 */ /*M!100100 X */ Y", &o);
        let words: Vec<_> = lx.by_ref().map(|t| t.kind).collect();
        assert_eq!(words, [Word, Word, Word, Word, Word]);
        assert!(lx.saw_executable && lx.saw_versioned);
        let skip = Lexer::new(b"SELECT /*!50000 a, */ /*! b */ c", &o).skipping_versioned();
        let words: Vec<_> = skip.map(|t| t.kind).collect();
        assert_eq!(words, [Word, Word, Word]);
    }

    #[test]
    fn variables_and_assignment() {
        let o = opts(false, false);
        let toks = lex("@a := @@global.read_only, @'q x', 'u'@'h' <= x = 1", &o);
        let got: Vec<_> = toks.iter().map(|(k, s)| (*k, s.as_str())).collect();
        let expect = [
            (UserVar, "@a"),
            (Assign, ":="),
            (SysVar, "@@global.read_only"),
            (Comma, ","),
            (UserVar, "@'q x'"),
            (Comma, ","),
            // `'user'@'host'` lexes as a string and a variable, as harmless as it is
            // simple: only account statements have it, and they go to the primary.
            (Str, "'u'"),
            (UserVar, "@'h'"),
            (Op, "<"),
            (Op, "="),
            (Word, "x"),
            (Eq, "="),
            (Number, "1"),
        ];
        assert_eq!(got, expect);
    }

    #[test]
    fn unterminated_input_is_recorded_not_fatal() {
        let o = opts(false, false);
        for sql in ["'abc", "\"abc", "`abc", "/* abc", "SELECT 'a\\"] {
            let mut lx = Lexer::new(sql.as_bytes(), &o);
            lx.by_ref().for_each(drop);
            assert!(lx.unterminated, "{sql}");
        }
    }
}
