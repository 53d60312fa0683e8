//! Session state that must be the same on every backend a session uses:
//! the current database and every session-level SET that succeeded on the
//! primary, replayed on another backend before a statement runs there.
//!
//! Entries are keyed (`SET @a = 1` then `SET @a = 2` keeps one entry), each
//! change gets a new version, and every backend connection remembers the
//! highest version it has applied: syncing replays the newer entries in
//! version order. A SET tandem cannot key is kept verbatim under its own
//! text, so nothing is ever dropped; past `MAX_ENTRIES` the caller pins the
//! session to the primary instead of growing the log.
//!
//! Each entry is kept as the command that replays it: a COM_QUERY with the
//! statement for SETs and `USE`, a COM_INIT_DB for the database the client
//! chose at login or with COM_INIT_DB. The server checks a database name
//! in COM_INIT_DB against the client's character set, as it did for the
//! client, and against utf8mb3 inside SQL text.

use crate::mysql::protocol::command::{COM_INIT_DB, COM_QUERY};

/// Entries kept before the session is pinned to the primary instead.
pub const MAX_ENTRIES: usize = 256;

#[derive(Debug, Default)]
pub struct StateLog {
    entries: Vec<Entry>,
    version: u64,
    /// Fingerprint of `entries`, kept current by every change: pooled
    /// connections compare it on every borrow and return.
    fingerprint: u64,
}

#[derive(Debug)]
struct Entry {
    key: String,
    /// The command payload that replays it (command byte first).
    command: Vec<u8>,
    version: u64,
}

// === impl StateLog ===

impl StateLog {
    /// Records a statement that changed session state on the primary.
    /// Returns false when the log is full.
    pub fn record(&mut self, sql: &[u8]) -> bool {
        // Only an entry with exactly the same keys is superseded: `SET @a=3`
        // must not drop the `@b` of an earlier `SET @a=1, @b=2`; replaying
        // both in order gives the right final state.
        let key = keys(sql).join("\u{1}");
        let mut command = Vec::with_capacity(sql.len() + 1);
        command.push(COM_QUERY);
        command.extend_from_slice(sql);
        self.push(key, command)
    }

    /// The current database (login or COM_INIT_DB), replayed as COM_INIT_DB.
    pub fn record_database(&mut self, db: &str) {
        let mut command = Vec::with_capacity(db.len() + 1);
        command.push(COM_INIT_DB);
        command.extend_from_slice(db.as_bytes());
        self.push("use".to_string(), command);
    }

    /// Adds an entry, superseding the one with the same key. False when the
    /// log is full.
    fn push(&mut self, key: String, command: Vec<u8>) -> bool {
        self.entries.retain(|e| e.key != key);
        if self.entries.len() >= MAX_ENTRIES {
            self.refresh_fingerprint();
            return false;
        }
        self.version += 1;
        self.entries.push(Entry {
            key,
            command,
            version: self.version,
        });
        self.refresh_fingerprint();
        true
    }

    /// The current database was dropped by the session: the server unselected
    /// it, so a fresh connection must not select it either.
    pub fn forget_database(&mut self) {
        self.entries.retain(|e| e.key != "use");
        self.version += 1;
        self.refresh_fingerprint();
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// A hash of the effective state (the statements a fresh connection
    /// needs, in order): equal logs give equal fingerprints whatever their
    /// versions. An empty log is [`FRESH`](crate::mysql::pool::FRESH).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn refresh_fingerprint(&mut self) {
        use std::hash::{Hash, Hasher};
        self.fingerprint = if self.entries.is_empty() {
            crate::mysql::pool::FRESH
        } else {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for e in &self.entries {
                e.command.hash(&mut h);
            }
            // Keep clear of the two reserved values.
            h.finish().clamp(1, u64::MAX - 1)
        };
    }

    /// The commands (payloads, command byte first) that replay the changes
    /// newer than `applied`, in the order they happened.
    pub fn pending(&self, applied: u64) -> impl Iterator<Item = (&[u8], u64)> {
        self.entries
            .iter()
            .filter(move |e| e.version > applied)
            .map(|e| (e.command.as_slice(), e.version))
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.version += 1;
        self.refresh_fingerprint();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The state keys a SET/USE statement assigns: `use`, `names`,
/// `@user_var`, `sql_mode`... One statement may assign several
/// (`SET a = 1, @b = 2`). A statement tandem cannot split gets its whole
/// normalised text as its only key.
pub fn keys(sql: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(sql);
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let first = words
        .first()
        .map(|w| w.to_ascii_lowercase())
        .unwrap_or_default();
    if first == "use" {
        return vec!["use".into()];
    }
    if first != "set" {
        return vec![normalise(&text)];
    }
    let body = text.trim_start()[3..].trim();
    let lower = body.to_ascii_lowercase();
    if lower.starts_with("names")
        || lower.starts_with("character set")
        || lower.starts_with("charset")
    {
        return vec!["names".into()];
    }
    let mut out = Vec::new();
    for part in split_top_level(body) {
        match assigned_name(part) {
            Some(name) => out.push(name),
            None => return vec![normalise(&text)],
        }
    }
    if out.is_empty() {
        vec![normalise(&text)]
    } else {
        out
    }
}

fn normalise(text: &str) -> String {
    text.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// The variable an assignment `name = expr` / `name := expr` sets,
/// normalised: `@@session.x`, `session x`, `local x`, `@@x` -> `x`;
/// `@u` -> `@u` (lowercase: user variables are case-insensitive).
fn assigned_name(part: &str) -> Option<String> {
    let eq = part.find([':', '='])?;
    let mut name = part[..eq].trim().to_ascii_lowercase();
    for prefix in ["session ", "local "] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.trim().to_string();
        }
    }
    for prefix in ["@@session.", "@@local.", "@@"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.to_string();
        }
    }
    if name.starts_with("global ") || name.starts_with("@@global.") || name.is_empty() {
        return None;
    }
    let name = name.trim_matches('`').to_string();
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.' || c == '$')
        .then_some(name)
}

/// Splits at commas outside quotes and parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_common_sets() {
        assert_eq!(keys(b"SET NAMES utf8mb4"), vec!["names"]);
        assert_eq!(keys(b"set character set latin1"), vec!["names"]);
        assert_eq!(keys(b"SET @a = 1"), vec!["@a"]);
        assert_eq!(
            keys(b"SET @A := 'x,y', sql_mode = 'ANSI_QUOTES,STRICT'"),
            vec!["@a", "sql_mode"]
        );
        assert_eq!(keys(b"SET SESSION time_zone = '+00:00'"), vec!["time_zone"]);
        assert_eq!(keys(b"SET @@session.autocommit = 0"), vec!["autocommit"]);
        assert_eq!(keys(b"SET @@autocommit=1"), vec!["autocommit"]);
        assert_eq!(keys(b"USE appdb"), vec!["use"]);
        assert_eq!(keys(b"SET  ROLE   r1"), vec!["SET ROLE r1"]);
    }

    #[test]
    fn later_sets_replace_earlier_ones_and_pending_is_ordered() {
        let mut log = StateLog::default();
        log.record(b"SET @a = 1");
        log.record(b"SET NAMES latin1");
        let applied = log.version();
        log.record(b"SET @a = 2");
        assert_eq!(log.len(), 2);
        let pending: Vec<_> = log.pending(applied).map(|(s, _)| s.to_vec()).collect();
        assert_eq!(pending, vec![b"\x03SET @a = 2".to_vec()]);
        let all: Vec<_> = log.pending(0).map(|(s, _)| s.to_vec()).collect();
        assert_eq!(
            all,
            vec![b"\x03SET NAMES latin1".to_vec(), b"\x03SET @a = 2".to_vec()]
        );
        log.record_database("app`db");
        assert!(log.pending(0).any(|(s, _)| s == b"\x02app`db"));
        log.record(b"USE other");
        assert_eq!(
            log.pending(0)
                .filter(|(s, _)| s.starts_with(b"\x02"))
                .count(),
            0
        );
    }

    #[test]
    fn the_log_is_bounded() {
        let mut log = StateLog::default();
        for i in 0..MAX_ENTRIES {
            assert!(log.record(format!("SET @v{i} = 1").as_bytes()));
        }
        assert!(!log.record(b"SET @one_more = 1"));
        assert!(log.record(b"SET @v0 = 2"), "replacing an entry still fits");
    }
}
