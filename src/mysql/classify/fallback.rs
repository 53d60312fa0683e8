//! The sqlparser fallback (MySQL dialect; the generic one under `ANSI_QUOTES`, so
//! `"x"` is an identifier): the statement kind where the lexer could not walk the
//! shape, and the table names a statement touches.
//!
//! sqlparser is a recursive-descent parser: the recursion limit is kept low so a
//! hostile nesting fails fast instead of exhausting a small thread stack.

use std::ops::ControlFlow;

use sqlparser::ast::{visit_relations, ObjectNamePart, SetExpr, Statement};
use sqlparser::dialect::{Dialect, GenericDialect, MySqlDialect};
use sqlparser::parser::Parser;

use super::{Kind, Options};

/// Deep enough for real queries; shallow enough for 2 MiB stacks in debug builds.
const RECURSION_LIMIT: usize = 24;

fn parse(sql: &[u8], opts: &Options<'_>) -> Option<Vec<Statement>> {
    let text = String::from_utf8_lossy(sql);
    let dialect: &dyn Dialect = if opts.ansi_quotes {
        &GenericDialect {}
    } else {
        &MySqlDialect {}
    };
    Parser::new(dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(&text)
        .ok()?
        .parse_statements()
        .ok()
}

/// Read or write, if sqlparser understands the (single) statement `sql`.
pub fn statement_kind(sql: &[u8], opts: &Options<'_>) -> Option<Kind> {
    let statements = parse(sql, opts)?;
    let [statement] = statements.as_slice() else {
        return None;
    };
    match statement {
        Statement::Query(q) => Some(query_kind(&q.body)),
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => Some(Kind::Write),
        _ => None,
    }
}

/// `WITH .. UPDATE` parses as a query whose body is the update.
fn query_kind(body: &SetExpr) -> Kind {
    match body {
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => Kind::Read,
        SetExpr::Query(q) => query_kind(&q.body),
        SetExpr::SetOperation { left, right, .. } => match (query_kind(left), query_kind(right)) {
            (Kind::Read, Kind::Read) => Kind::Read,
            _ => Kind::Write,
        },
        _ => Kind::Write,
    }
}

/// The tables (and views, CTE references) `sql` names, unquoted, as `name` or
/// `schema.name`, first mention first; `None` if sqlparser cannot parse it.
pub fn tables(sql: &[u8], opts: &Options<'_>) -> Option<Vec<String>> {
    let statements = parse(sql, opts)?;
    let mut out: Vec<String> = Vec::new();
    let _ = visit_relations(&statements, |name| {
        let parts: Vec<&str> = name
            .0
            .iter()
            .filter_map(|p| match p {
                ObjectNamePart::Identifier(id) => Some(id.value.as_str()),
                _ => None,
            })
            .collect();
        let joined = parts.join(".");
        if !joined.is_empty() && !out.contains(&joined) {
            out.push(joined);
        }
        ControlFlow::<()>::Continue(())
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_statements_by_their_main_body() {
        let o = Options::default();
        let kind = |sql: &str| statement_kind(sql.as_bytes(), &o);
        assert_eq!(
            kind("WITH a AS (SELECT 1) SELECT * FROM a"),
            Some(Kind::Read)
        );
        assert_eq!(
            kind("WITH a AS (SELECT 1) UPDATE t SET x = 1"),
            Some(Kind::Write)
        );
        assert_eq!(
            kind("WITH a AS (SELECT 1) DELETE FROM t"),
            Some(Kind::Write)
        );
        assert_eq!(kind("WITH broken"), None);
    }

    #[test]
    fn table_names() {
        let o = Options::default();
        let sql = b"SELECT * FROM `db`.t1 JOIN t2 ON 1 WHERE x IN (SELECT y FROM t3)";
        assert_eq!(tables(sql, &o).unwrap(), ["db.t1", "t2", "t3"]);
        assert_eq!(
            tables(b"CREATE TEMPORARY TABLE tmp (a INT)", &o).unwrap(),
            ["tmp"]
        );
        assert_eq!(tables(b"SELEKT", &o), None);
    }

    #[test]
    fn deep_nesting_fails_instead_of_overflowing() {
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(tables(deep.as_bytes(), &Options::default()), None);
    }
}
