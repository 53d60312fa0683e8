//! Classifier tests through the public API: the fixture corpus, the API helpers,
//! and robustness against arbitrary bytes.

use std::path::PathBuf;

use super::corpus::{self, Case};
use super::*;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sql-fixtures/classify")
}

/// Every case of every `sql-fixtures/classify/*.sql`, in file name order.
fn load_corpus() -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("sql-fixtures/classify")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("fixture file");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        cases.extend(corpus::parse(&format!("sql-fixtures/classify/{name}"), &text).unwrap());
    }
    cases
}

fn opts() -> Options<'static> {
    Options::default()
}

#[test]
fn corpus_classifies_as_expected() {
    let cases = load_corpus();
    let mut failures = Vec::new();
    let mut parser = 0;
    for case in &cases {
        let got = classify(&case.sql, &case.options());
        if got.decided_by == Decider::Parser {
            parser += 1;
        }
        if let Err(diff) = case.check(&got) {
            let sql = String::from_utf8_lossy(&case.sql);
            failures.push(format!("{}:{}: {diff}\n    {sql}", case.file, case.line));
        }
    }
    let share = parser as f64 * 100.0 / cases.len() as f64;
    println!(
        "corpus: {} statements, sqlparser fallback {parser} ({share:.1}%)",
        cases.len()
    );
    assert!(
        cases.len() >= 400,
        "the corpus has {} statements",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The fallback is for shapes the lexer cannot walk: it must stay rare.
    assert!(share < 5.0, "sqlparser decided {share:.1}% of the corpus");
}

#[test]
fn replica_eligibility_and_reasons() {
    let c = |sql: &str| classify(sql.as_bytes(), &opts());
    assert!(c("SELECT * FROM t").may_use_replica());
    assert_eq!(c("SELECT * FROM t").reason(), "read");
    assert_eq!(c("SELECT * FROM t FOR UPDATE").reason(), "locking_read");
    assert_eq!(c("SELECT GET_LOCK('a', 1)").reason(), "side_effect");
    assert_eq!(c("SELECT LAST_INSERT_ID()").reason(), "session_function");
    assert_eq!(c("SELECT f(1)").reason(), "stored_function");
    assert_eq!(c("SELECT 1; SELECT 2").reason(), "multi_statement");
    assert_eq!(c("UPDATE t SET a = 1").reason(), "write");
    assert_eq!(c("DROP TABLE t").reason(), "ddl");
    assert_eq!(c("COMMIT").reason(), "transaction");
    assert_eq!(c("FROBNICATE").reason(), "unknown");
    assert_eq!(c("SELECT 'abc").reason(), "unknown");
    assert!(!c("SELECT 'abc").may_use_replica());
}

#[test]
fn names_and_autocommit() {
    let sql = b"SAVEPOINT `sp 1`";
    assert_eq!(classify(sql, &opts()).name(sql).as_deref(), Some("sp 1"));
    let sql = b"USE shop";
    assert_eq!(classify(sql, &opts()).name(sql).as_deref(), Some("shop"));
    assert_eq!(use_database(sql).as_deref(), Some("shop"));
    assert_eq!(
        classify(b"SET autocommit = OFF", &opts()).autocommit(),
        Some(false)
    );
    assert_eq!(
        classify(b"SET @@session.autocommit=1", &opts()).autocommit(),
        Some(true)
    );
    assert_eq!(classify(b"SET autocommit = @x", &opts()).autocommit(), None);
    assert_eq!(
        classify(b"SET GLOBAL autocommit = 0", &opts()).autocommit(),
        None
    );
}

#[test]
fn wrong_sql_mode_cannot_make_a_write_look_like_a_read() {
    // Under NO_BACKSLASH_ESCAPES the DELETE is a second statement.
    let sql = br"SELECT 'a\'; DELETE FROM t; -- '";
    let c = classify(sql, &opts());
    assert_eq!(c.kind, Kind::Read);
    assert!(c
        .flags
        .contains(Flags::MODE_DEPENDENT | Flags::MULTI_STATEMENT));
    assert!(!c.may_use_replica());
    // Harmless strings keep their replica eligibility.
    assert!(classify(br#"SELECT "it\'s", 'a\\b'"#, &opts()).may_use_replica());
}

#[test]
fn skipped_versioned_comments_cannot_hide_a_write() {
    // A server older than 9.99.99 skips the comment and runs the DELETE.
    let sql = b"/*!99999 SELECT 1 FROM */ DELETE FROM t";
    let c = classify(sql, &opts());
    assert_eq!(c.kind, Kind::Read);
    assert!(!c.may_use_replica() && c.flags.contains(Flags::MODE_DEPENDENT));
    let c = classify(b"SELECT a /*!50000 , b */ FROM t", &opts());
    assert!(c.may_use_replica());
}

#[test]
fn temp_tables_are_exposed() {
    let sql = b"CREATE TEMPORARY TABLE tmp_x (id INT)";
    let c = classify(sql, &opts());
    assert_eq!((c.kind, c.flags), (Kind::Ddl, Flags::TEMP_TABLE));
    assert_eq!(temporary_tables(sql, &opts()), ["tmp_x"]);
    assert!(mentions(b"SELECT * FROM tmp_x", &opts(), &["tmp_x"]));
    assert_eq!(
        tables(b"SELECT * FROM a JOIN b", &opts()).unwrap(),
        ["a", "b"]
    );
}

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn all_modes() -> [Options<'static>; 4] {
    let o = |a, b| Options {
        ansi_quotes: a,
        no_backslash_escapes: b,
        read_only_functions: &[],
    };
    [
        o(false, false),
        o(true, false),
        o(false, true),
        o(true, true),
    ]
}

#[test]
fn never_panics_on_random_bytes() {
    let mut next = rng(0x5EED);
    // Bytes biased towards SQL punctuation and keywords, so the lexer's states get hit.
    let alphabet: &[&[u8]] = &[
        b"'",
        b"\"",
        b"`",
        b"\\",
        b"/*",
        b"*/",
        b"/*!",
        b"/*M!50100",
        b"-- ",
        b"#",
        b"\n",
        b";",
        b"(",
        b")",
        b"@",
        b"@@",
        b":=",
        b"=",
        b",",
        b".",
        b" ",
        b"SELECT",
        b"WITH",
        b"SET",
        b"FOR",
        b"UPDATE",
        b"BEGIN",
        b"END",
        b"CASE",
        b"INTO",
        b"x",
        b"1",
        b"\xff",
        b"\0",
    ];
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let mut sql = Vec::new();
        for _ in 0..len {
            if next() % 4 == 0 {
                sql.push(next() as u8);
            } else {
                sql.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
        }
        for o in &all_modes() {
            let c = classify(&sql, o);
            let _ = (c.reason(), c.name(&sql), temporary_tables(&sql, o));
        }
    }
}

#[test]
fn never_panics_on_truncated_corpus_statements() {
    for case in load_corpus() {
        let sql = &case.sql;
        for end in 0..=sql.len() {
            for o in &all_modes() {
                let c = classify(&sql[..end], o);
                let _ = (c.reason(), c.name(&sql[..end]));
                let _ = use_database(&sql[..end]);
            }
        }
    }
}

#[test]
fn deep_nesting_and_huge_input_are_fine() {
    let deep = format!(
        "WITH a AS ({}SELECT 1{}) x",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let c = classify(deep.as_bytes(), &opts());
    assert!(!c.may_use_replica());
    let nested = "SET STATEMENT a=1 FOR ".repeat(1000) + "SELECT 1";
    assert_eq!(classify(nested.as_bytes(), &opts()).kind, Kind::Other);
    let long = "SELECT ".to_string() + &"1 + ".repeat(100_000) + "1";
    assert!(classify(long.as_bytes(), &opts()).may_use_replica());
}
