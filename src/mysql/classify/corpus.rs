//! The classifier fixture format (`sql-fixtures/classify/*.sql`, described in the
//! README there), shared by the corpus unit test and `benches/classify.rs`.
//! Parsing only: callers read the files.
//!
//! ```text
//! -- optional commentary lines
//! -- expect: read flags=user_var_read hint=primary options=ansi_quotes
//! SELECT @a
//!   FROM t
//! (blank line)
//! ```

use super::{Classification, Decider, Flags, Hint, Kind, Options};

/// One fixture: a statement and what classifying it must give.
#[derive(Debug, Clone)]
pub struct Case {
    pub file: String,
    /// 1-based line of the `-- expect:` line.
    pub line: usize,
    pub sql: Vec<u8>,
    pub expect: Expect,
    pub ansi_quotes: bool,
    pub no_backslash_escapes: bool,
    pub read_only_functions: Vec<String>,
}

/// The expected classification; `None` fields are not checked.
#[derive(Debug, Clone)]
pub struct Expect {
    pub kind: Kind,
    /// Checked exactly: every flag the statement gets must be listed.
    pub flags: Flags,
    pub hint: Option<Hint>,
    pub decider: Option<Decider>,
    pub name: Option<String>,
    pub autocommit: Option<bool>,
}

/// Parses one fixture file; errors name `file:line`.
pub fn parse(file: &str, text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let mut current: Option<(Case, Vec<&str>, bool)> = None;
    for (i, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", i + 1);
        if line.trim().is_empty() {
            if let Some(done) = current.take() {
                cases.push(finish(done, &at)?);
            }
        } else if let Some((_, body, _)) = current.as_mut() {
            body.push(line);
        } else if let Some(spec) = line.strip_prefix("-- expect:") {
            let (case, escapes) = header(file, i + 1, spec).map_err(|e| format!("{at}: {e}"))?;
            current = Some((case, Vec::new(), escapes));
        } else if !line.starts_with("--") {
            return Err(format!("{at}: statement without a `-- expect:` line"));
        }
    }
    if let Some(done) = current.take() {
        cases.push(finish(done, &format!("{file}:end"))?);
    }
    Ok(cases)
}

fn finish((mut case, body, escapes): (Case, Vec<&str>, bool), at: &str) -> Result<Case, String> {
    if body.is_empty() {
        return Err(format!("{at}: `-- expect:` without a statement"));
    }
    let text = body.join("\n");
    case.sql = if escapes {
        unescape(&text).map_err(|e| format!("{at}: {e}"))?
    } else {
        text.into_bytes()
    };
    Ok(case)
}

/// `KIND [flags=..] [hint=..] [decider=..] [options=..] [name=..] [autocommit=..] [escapes]`
fn header(file: &str, line: usize, spec: &str) -> Result<(Case, bool), String> {
    let mut words = spec.split_whitespace();
    let kind_word = words.next().ok_or("missing kind")?;
    let kind = parse_kind(kind_word).ok_or_else(|| format!("unknown kind `{kind_word}`"))?;
    let mut case = Case {
        file: file.to_string(),
        line,
        sql: Vec::new(),
        expect: Expect {
            kind,
            flags: Flags::NONE,
            hint: None,
            decider: None,
            name: None,
            autocommit: None,
        },
        ansi_quotes: false,
        no_backslash_escapes: false,
        read_only_functions: Vec::new(),
    };
    let mut escapes = false;
    for w in words {
        if w == "escapes" {
            escapes = true;
            continue;
        }
        let (key, value) = w.split_once('=').ok_or_else(|| format!("bad item `{w}`"))?;
        let e = &mut case.expect;
        match key {
            "flags" => {
                for f in value.split(',') {
                    e.flags |= Flags::from_name(f).ok_or_else(|| format!("unknown flag `{f}`"))?;
                }
            }
            "hint" => e.hint = Some(parse_hint(value)?),
            "decider" => e.decider = Some(parse_decider(value)?),
            "name" => e.name = Some(value.to_string()),
            "autocommit" => e.autocommit = Some(value == "on"),
            "options" => options(&mut case, value)?,
            _ => return Err(format!("unknown key `{key}`")),
        }
    }
    Ok((case, escapes))
}

fn options(case: &mut Case, value: &str) -> Result<(), String> {
    for o in value.split(',') {
        match o.split_once(':') {
            None if o == "ansi_quotes" => case.ansi_quotes = true,
            None if o == "no_backslash_escapes" => case.no_backslash_escapes = true,
            Some(("read_only_functions", fs)) => {
                case.read_only_functions = fs.split('|').map(str::to_string).collect();
            }
            _ => return Err(format!("unknown option `{o}`")),
        }
    }
    Ok(())
}

fn parse_hint(v: &str) -> Result<Hint, String> {
    match v.split_once(':') {
        _ if v == "primary" => Ok(Hint::Primary),
        _ if v == "replica" => Ok(Hint::Replica),
        Some(("backend", name)) => Ok(Hint::Backend(name.to_string())),
        _ => Err(format!("unknown hint `{v}`")),
    }
}

fn parse_decider(v: &str) -> Result<Decider, String> {
    match v {
        "lexer" => Ok(Decider::Lexer),
        "parser" => Ok(Decider::Parser),
        "unknown" => Ok(Decider::Unknown),
        _ => Err(format!("unknown decider `{v}`")),
    }
}

/// `begin:read_only+consistent_snapshot`, `commit:chain`, `read`, ...
pub fn parse_kind(word: &str) -> Option<Kind> {
    let (base, params) = word.split_once(':').unwrap_or((word, ""));
    let has = |p: &str| params.split('+').any(|x| x == p);
    let known = |allowed: &[&str]| {
        params
            .split('+')
            .all(|x| x.is_empty() || allowed.contains(&x))
    };
    let kind = match base {
        "begin" if known(&["read_only", "consistent_snapshot"]) => Kind::Begin {
            read_only: has("read_only"),
            consistent_snapshot: has("consistent_snapshot"),
        },
        "commit" if known(&["chain", "release"]) => Kind::Commit {
            chain: has("chain"),
            release: has("release"),
        },
        "rollback" if known(&["chain", "release"]) => Kind::Rollback {
            chain: has("chain"),
            release: has("release"),
        },
        _ if !params.is_empty() => return None,
        _ => return SIMPLE.iter().find(|(n, _)| *n == base).map(|(_, k)| *k),
    };
    Some(kind)
}

/// Kinds without parameters, by fixture name.
const SIMPLE: [(&str, Kind); 18] = [
    ("read", Kind::Read),
    ("write", Kind::Write),
    ("ddl", Kind::Ddl),
    ("rollback_to_savepoint", Kind::RollbackToSavepoint),
    ("savepoint", Kind::Savepoint),
    ("release_savepoint", Kind::ReleaseSavepoint),
    ("xa", Kind::Xa),
    ("set_transaction", Kind::SetTransaction),
    ("set", Kind::Set),
    ("use", Kind::Use),
    ("lock_tables", Kind::LockTables),
    ("unlock_tables", Kind::UnlockTables),
    ("diagnostics", Kind::Diagnostics),
    ("sql_prepare", Kind::SqlPrepare),
    ("sql_execute", Kind::SqlExecute),
    ("sql_deallocate", Kind::SqlDeallocate),
    ("admin", Kind::Admin),
    ("other", Kind::Other),
];

/// The fixture spelling of `kind` (inverse of [`parse_kind`]).
pub fn kind_name(kind: Kind) -> String {
    let params = |base: &str, a: (&str, bool), b: (&str, bool)| {
        let set: Vec<&str> = [a, b].iter().filter(|p| p.1).map(|p| p.0).collect();
        match set.is_empty() {
            true => base.to_string(),
            false => format!("{base}:{}", set.join("+")),
        }
    };
    match kind {
        Kind::Begin {
            read_only,
            consistent_snapshot,
        } => params(
            "begin",
            ("read_only", read_only),
            ("consistent_snapshot", consistent_snapshot),
        ),
        Kind::Commit { chain, release } => params("commit", ("chain", chain), ("release", release)),
        Kind::Rollback { chain, release } => {
            params("rollback", ("chain", chain), ("release", release))
        }
        other => SIMPLE
            .iter()
            .find(|(_, k)| *k == other)
            .map_or("?", |(n, _)| n)
            .to_string(),
    }
}

/// `\n`, `\r`, `\t`, `\0`, `\\`, `\xNN`.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match bytes.next() {
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'0') => 0,
            Some(b'\\') => b'\\',
            Some(b'x') => {
                let hex = [bytes.next().unwrap_or(b'?'), bytes.next().unwrap_or(b'?')];
                let hex = std::str::from_utf8(&hex).map_err(|e| e.to_string())?;
                u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape \\x{hex}"))?
            }
            other => return Err(format!("bad escape {:?}", other.map(char::from))),
        });
    }
    Ok(out)
}

// === impl Case ===

impl Case {
    pub fn options(&self) -> Options<'_> {
        Options {
            ansi_quotes: self.ansi_quotes,
            no_backslash_escapes: self.no_backslash_escapes,
            read_only_functions: &self.read_only_functions,
        }
    }

    /// Compares a classification with the expectation: `Err` says what differs.
    pub fn check(&self, got: &Classification) -> Result<(), String> {
        let e = &self.expect;
        let mut diffs = Vec::new();
        if got.kind != e.kind {
            diffs.push(format!(
                "kind {} (want {})",
                kind_name(got.kind),
                kind_name(e.kind)
            ));
        }
        if got.flags != e.flags {
            diffs.push(format!("flags {:?} (want {:?})", got.flags, e.flags));
        }
        if got.hint != e.hint {
            diffs.push(format!("hint {:?} (want {:?})", got.hint, e.hint));
        }
        if e.decider.is_some_and(|d| d != got.decided_by) {
            diffs.push(format!(
                "decider {:?} (want {:?})",
                got.decided_by, e.decider
            ));
        }
        if let Some(name) = &e.name {
            let n = got.name(&self.sql);
            if n.as_deref() != Some(name) {
                diffs.push(format!("name {n:?} (want {name:?})"));
            }
        }
        if e.autocommit.is_some() && got.autocommit() != e.autocommit {
            diffs.push(format!(
                "autocommit {:?} (want {:?})",
                got.autocommit(),
                e.autocommit
            ));
        }
        match diffs.is_empty() {
            true => Ok(()),
            false => Err(diffs.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blocks_options_and_escapes() {
        let text = "-- header\n\n-- note\n-- expect: begin:read_only flags=implicit_commit\n\
                    START TRANSACTION\n  READ ONLY\n\n\
                    -- expect: read options=ansi_quotes,read_only_functions:f|db.g escapes\n\
                    \\n SELECT 1\n";
        let cases = parse("t.sql", text).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].line, 4);
        assert_eq!(cases[0].sql, b"START TRANSACTION\n  READ ONLY");
        assert_eq!(kind_name(cases[0].expect.kind), "begin:read_only");
        assert!(cases[1].ansi_quotes);
        assert_eq!(cases[1].read_only_functions, ["f", "db.g"]);
        assert_eq!(cases[1].sql, b"\n SELECT 1");
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        assert!(parse("t", "-- expect: reed\nSELECT 1\n").is_err());
        assert!(parse("t", "-- expect: read flags=nope\nSELECT 1\n").is_err());
        assert!(parse("t", "SELECT 1\n").is_err());
        assert!(parse("t", "-- expect: read\n\n").is_err());
        assert!(parse_kind("commit:chain+release").is_some());
        assert!(parse_kind("read:x").is_none());
    }
}
