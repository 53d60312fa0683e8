//! Names a router needs from a statement's text: the database of `USE` or
//! `DROP DATABASE`, the tables a `CREATE`/`DROP TEMPORARY` creates or drops, and whether a statement
//! mentions a name at all (the conservative temp-table check).

use super::lexer::{Lexer, Token, TokenKind};
use super::scan::unquote;
use super::Options;

/// The database `USE db` switches to (unquoted), or `None` if `sql` is no `USE`.
/// `"db"` counts as an identifier: `USE` takes no string.
pub fn use_database(sql: &[u8]) -> Option<String> {
    let opts = Options {
        ansi_quotes: true,
        ..Options::default()
    };
    let mut lex = Lexer::new(sql, &opts);
    let first = lex.next()?;
    let name = lex.next().filter(Token::is_name)?;
    let rest = lex.next();
    let ends = rest.is_none_or(|t| t.kind == TokenKind::Semicolon && lex.next().is_none());
    (first.is_word(sql, "use") && ends).then(|| name_string(name.text(sql)))
}

/// The database `DROP {DATABASE|SCHEMA} [IF EXISTS] db` drops (unquoted), or
/// `None` for any other statement. MariaDB unselects it in the session that
/// drops it, if it was that session's current database.
pub fn dropped_database(sql: &[u8]) -> Option<String> {
    let opts = Options::default();
    let mut lex = Lexer::new(sql, &opts);
    let word = |t: Option<Token>, kw: &str| t.is_some_and(|t| t.is_word(sql, kw));
    if !word(lex.next(), "drop") {
        return None;
    }
    let what = lex.next();
    if !word(what, "database") && !word(what, "schema") {
        return None;
    }
    let mut name = lex.next()?;
    if name.is_word(sql, "if") {
        lex.next(); // EXISTS
        name = lex.next()?;
    }
    let rest = lex.next();
    let ends = rest.is_none_or(|t| t.kind == TokenKind::Semicolon && lex.next().is_none());
    (name.is_name() && ends).then(|| name_string(name.text(sql)))
}

/// The tables `CREATE [OR REPLACE] TEMPORARY TABLE|SEQUENCE [IF NOT EXISTS] t` or
/// `DROP TEMPORARY TABLE|SEQUENCE [IF EXISTS] t1, t2` creates or drops: the table
/// part of each name (no schema), unquoted. Empty for any other statement.
pub fn temporary_tables(sql: &[u8], opts: &Options<'_>) -> Vec<String> {
    let mut toks = Lexer::new(sql, opts).peekable();
    let word = |t: Option<&Token>, kw: &str| t.is_some_and(|t| t.is_word(sql, kw));
    let create = word(toks.peek(), "create");
    if !create && !word(toks.peek(), "drop") {
        return Vec::new();
    }
    toks.next();
    if create && word(toks.peek(), "or") {
        toks.next();
        toks.next();
    }
    if !word(toks.next().as_ref(), "temporary") {
        return Vec::new();
    }
    toks.next(); // TABLE | SEQUENCE
    if word(toks.peek(), "if") {
        toks.next();
        if create {
            toks.next(); // NOT
        }
        toks.next(); // EXISTS
    }
    // `name [. name]` separated by `,` (DROP only); anything else ends the list.
    let mut out = Vec::new();
    let mut last: Option<Token> = None;
    let mut want_name = true;
    for t in toks {
        match t.kind {
            _ if want_name && t.is_name() => last = Some(t),
            TokenKind::Dot if !want_name => {}
            TokenKind::Comma if !want_name && !create => {
                out.extend(last.take().map(|t| name_string(t.text(sql))));
            }
            _ => break,
        }
        want_name = !want_name;
    }
    out.extend(last.map(|t| name_string(t.text(sql))));
    out
}

/// Whether any identifier in `sql` (unquoted, any case) equals one of `names`.
/// Over-approximates on purpose (a column of the same name counts): a read that
/// mentions a temporary table's name must not go to a replica, where that table
/// does not exist.
pub fn mentions(sql: &[u8], opts: &Options<'_>, names: &[impl AsRef<str>]) -> bool {
    Lexer::new(sql, opts).any(|t| {
        t.is_name() && {
            let text = unquote(t.text(sql));
            names
                .iter()
                .any(|n| text.eq_ignore_ascii_case(n.as_ref().as_bytes()))
        }
    })
}

/// A name token as a `String`: quotes removed, doubled quotes undoubled.
pub fn name_string(text: &[u8]) -> String {
    let inner = unquote(text);
    let s = String::from_utf8_lossy(inner);
    match text.first() {
        Some(&q @ (b'`' | b'"')) if inner.len() + 2 == text.len() => {
            let q = q as char;
            s.replace(&format!("{q}{q}"), &q.to_string())
        }
        _ => s.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_database_names() {
        assert_eq!(use_database(b"USE shop").as_deref(), Some("shop"));
        assert_eq!(use_database(b"use `my``db`;").as_deref(), Some("my`db"));
        assert_eq!(use_database(b"/* x */ USE \"d\"").as_deref(), Some("d"));
        assert_eq!(use_database(b"USE a b"), None);
        assert_eq!(use_database(b"SELECT 1"), None);
    }

    #[test]
    fn dropped_database_names() {
        assert_eq!(
            dropped_database(b"DROP DATABASE shop").as_deref(),
            Some("shop")
        );
        assert_eq!(
            dropped_database(b"drop schema if exists `my``db`;").as_deref(),
            Some("my`db")
        );
        assert_eq!(dropped_database(b"DROP TABLE shop"), None);
        assert_eq!(dropped_database(b"DROP DATABASE"), None);
        assert_eq!(dropped_database(b"DROP DATABASE a b"), None);
    }

    #[test]
    fn temporary_table_names() {
        let o = Options::default();
        let t = |sql: &str| temporary_tables(sql.as_bytes(), &o);
        assert_eq!(t("CREATE TEMPORARY TABLE tmp (a INT)"), ["tmp"]);
        assert_eq!(
            t("CREATE OR REPLACE TEMPORARY TABLE IF NOT EXISTS db.`t x` AS SELECT 1"),
            ["t x"]
        );
        assert_eq!(
            t("DROP TEMPORARY TABLE IF EXISTS a, db.b, `c`"),
            ["a", "b", "c"]
        );
        assert!(t("CREATE TABLE t (a INT)").is_empty());
        assert!(t("SELECT 1").is_empty());
    }

    #[test]
    fn mentions_is_conservative() {
        let o = Options::default();
        assert!(mentions(b"SELECT * FROM `Tmp` t", &o, &["tmp"]));
        assert!(mentions(b"SELECT tmp FROM x", &o, &["tmp"]));
        assert!(!mentions(b"SELECT 'tmp' FROM x", &o, &["tmp"]));
    }
}
