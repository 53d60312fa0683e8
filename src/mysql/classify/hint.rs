//! Routing hints in a leading comment: `/* tandem:primary */`, `/* tandem:replica */`,
//! `/* tandem:backend=NAME */` (also as `-- ` or `#` comments).
//!
//! Only comments before the first token of the statement count (leading `(` are
//! allowed): a hint later in the text may come from a user-supplied value pasted
//! into a query, and the hint must be decidable without lexing the whole statement.
//! Case and whitespace do not matter; a malformed `tandem` comment is ignored.

use super::lexer::{comment_at, is_ident_byte, Comment};
use super::Hint;

/// The hint in the comments that open `sql`, if any (the first valid one wins).
pub fn leading(sql: &[u8]) -> Option<Hint> {
    let mut pos = 0;
    while pos < sql.len() {
        let b = sql[pos];
        if b <= b' ' || b == b'(' {
            pos += 1;
            continue;
        }
        match comment_at(sql, pos)? {
            Comment::Plain {
                body_start,
                body_end,
                end,
                ..
            } => {
                if let Some(h) = parse(&sql[body_start..body_end]) {
                    return Some(h);
                }
                pos = end;
            }
            Comment::Executable { .. } => return None,
        }
    }
    None
}

/// `tandem : primary`, `tandem:replica`, `tandem:backend = db2`, any case.
fn parse(body: &[u8]) -> Option<Hint> {
    let rest = word(body.trim_ascii(), b"tandem")?;
    let rest = rest.trim_ascii_start().strip_prefix(b":")?.trim_ascii();
    if rest.eq_ignore_ascii_case(b"primary") {
        return Some(Hint::Primary);
    }
    if rest.eq_ignore_ascii_case(b"replica") {
        return Some(Hint::Replica);
    }
    if let Some(mode) = word(rest, b"consistency") {
        let mode = mode.trim_ascii_start().strip_prefix(b"=")?;
        let mode = std::str::from_utf8(mode).ok()?;
        return crate::config::Consistency::parse(mode).map(Hint::Consistency);
    }
    let name = word(rest, b"backend")?
        .trim_ascii_start()
        .strip_prefix(b"=")?;
    let name = name.trim_ascii();
    let valid = |b: &u8| is_ident_byte(*b) || matches!(b, b'-' | b'.');
    if name.is_empty() || !name.iter().all(valid) {
        return None;
    }
    Some(Hint::Backend(String::from_utf8_lossy(name).into_owned()))
}

/// `text` starts with the word `w` (any case): the rest.
fn word<'t>(text: &'t [u8], w: &[u8]) -> Option<&'t [u8]> {
    let head = text.get(..w.len())?;
    head.eq_ignore_ascii_case(w).then(|| &text[w.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_in_leading_comments() {
        assert_eq!(
            leading(b"/* tandem:primary */ SELECT 1"),
            Some(Hint::Primary)
        );
        assert_eq!(
            leading(b"/*TANDEM : Replica*/SELECT 1"),
            Some(Hint::Replica)
        );
        assert_eq!(leading(b"-- tandem:replica\nSELECT 1"), Some(Hint::Replica));
        assert_eq!(leading(b"# tandem:primary\nSELECT 1"), Some(Hint::Primary));
        assert_eq!(
            leading(b" ( /* x */ /* tandem: backend = db-2 */ SELECT 1)"),
            Some(Hint::Backend("db-2".into()))
        );
    }

    #[test]
    fn consistency_hints() {
        use crate::config::Consistency;
        assert_eq!(
            leading(b"/* tandem:consistency=session */ SELECT 1"),
            Some(Hint::Consistency(Consistency::Session))
        );
        assert_eq!(
            leading(b"/* tandem: consistency = window:250 */ SELECT 1"),
            Some(Hint::Consistency(Consistency::Window(250)))
        );
        assert_eq!(leading(b"/* tandem:consistency=often */ SELECT 1"), None);
    }

    #[test]
    fn hints_elsewhere_or_malformed_do_not_count() {
        assert_eq!(leading(b"SELECT /* tandem:replica */ 1"), None);
        assert_eq!(leading(b"/*!50000 SELECT */ /* tandem:replica */ 1"), None);
        assert_eq!(leading(b"/* tandem:replicas */ SELECT 1"), None);
        assert_eq!(leading(b"/* tandem:backend=a b */ SELECT 1"), None);
        assert_eq!(leading(b"/* tandem:backend= */ SELECT 1"), None);
        assert_eq!(leading(b"/* tandem:primary"), Some(Hint::Primary));
        assert_eq!(leading(b""), None);
    }
}
