//! GTID positions, as the servers print them, and the one question routing
//! asks of them: has this server applied that transaction?
//!
//! Two dialects:
//! - MariaDB (`gtid_current_pos`, `gtid_slave_pos`, `gtid_binlog_pos`,
//!   session tracker `last_gtid`): a comma-separated list of
//!   `domain-server-sequence`, at most one per domain. Sequence numbers grow
//!   monotonically inside a domain, so a server has applied `D-S-N` when its
//!   position has a sequence of at least `N` in domain `D`
//!   (<https://mariadb.com/kb/en/gtid/>, "The Domain ID").
//! - MySQL (`gtid_executed`, session tracker `OWN_GTID`): a set
//!   `uuid:1-5:7,uuid2:1-9`; applied means set inclusion.

use std::fmt;

/// A parsed GTID position or set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Gtid {
    /// The empty position (a fresh server, or an empty string).
    #[default]
    Empty,
    /// MariaDB: `(domain, server, sequence)`, sorted by domain, one per domain.
    Mariadb(Vec<(u32, u32, u64)>),
    /// MySQL: `(uuid, intervals)`, each interval inclusive, sorted.
    Mysql(Vec<(String, Vec<(u64, u64)>)>),
}

/// Why a GTID string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid GTID {text:?}: {reason}")]
pub struct GtidError {
    pub text: String,
    pub reason: &'static str,
}

// === impl Gtid ===

impl Gtid {
    /// Parses either dialect; whitespace and newlines (MySQL prints one uuid
    /// per line) are ignored.
    pub fn parse(text: &str) -> Result<Gtid, GtidError> {
        let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if t.is_empty() {
            return Ok(Gtid::Empty);
        }
        let err = |reason| GtidError {
            text: text.to_string(),
            reason,
        };
        if t.contains(':') {
            return parse_mysql(&t).ok_or_else(|| err("expected uuid:interval[:interval]"));
        }
        let mut out: Vec<(u32, u32, u64)> = Vec::new();
        for part in t.split(',') {
            let mut it = part.split('-');
            let (Some(d), Some(s), Some(n), None) = (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(err("expected domain-server-sequence"));
            };
            let (Ok(d), Ok(s), Ok(n)) = (d.parse(), s.parse(), n.parse()) else {
                return Err(err("domain, server and sequence must be numbers"));
            };
            match out.iter_mut().find(|(dd, _, _)| *dd == d) {
                Some(e) if e.2 < n => *e = (d, s, n),
                Some(_) => {}
                None => out.push((d, s, n)),
            }
        }
        out.sort_unstable_by_key(|e| e.0);
        Ok(Gtid::Mariadb(out))
    }

    /// True when a server at position `self` has applied everything in
    /// `other` (which is usually one session's last transaction).
    pub fn contains(&self, other: &Gtid) -> bool {
        match (self, other) {
            (_, Gtid::Empty) => true,
            (Gtid::Mariadb(mine), Gtid::Mariadb(theirs)) => theirs.iter().all(|(d, _, n)| {
                mine.iter()
                    .find(|(md, _, _)| md == d)
                    .is_some_and(|(_, _, mn)| mn >= n)
            }),
            (Gtid::Mysql(mine), Gtid::Mysql(theirs)) => theirs.iter().all(|(uuid, ivs)| {
                let Some((_, have)) = mine.iter().find(|(u, _)| u == uuid) else {
                    return false;
                };
                ivs.iter()
                    .all(|&(a, b)| have.iter().any(|&(ha, hb)| ha <= a && b <= hb))
            }),
            _ => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Gtid::Empty => true,
            Gtid::Mariadb(v) => v.is_empty(),
            Gtid::Mysql(v) => v.is_empty(),
        }
    }

    /// The later of two MariaDB positions, domain by domain (a session that
    /// wrote twice needs both); for MySQL the union of the sets.
    pub fn merge(&self, other: &Gtid) -> Gtid {
        match (self, other) {
            (Gtid::Empty, x) | (x, Gtid::Empty) => x.clone(),
            (Gtid::Mariadb(a), Gtid::Mariadb(b)) => {
                let mut out = a.clone();
                for &(d, s, n) in b {
                    match out.iter_mut().find(|e| e.0 == d) {
                        Some(e) if e.2 < n => *e = (d, s, n),
                        Some(_) => {}
                        None => out.push((d, s, n)),
                    }
                }
                out.sort_unstable_by_key(|e| e.0);
                Gtid::Mariadb(out)
            }
            (Gtid::Mysql(a), Gtid::Mysql(b)) => {
                let mut out = a.clone();
                for (uuid, ivs) in b {
                    match out.iter_mut().find(|(u, _)| u == uuid) {
                        Some((_, have)) => {
                            have.extend_from_slice(ivs);
                            *have = normalize(std::mem::take(have));
                        }
                        None => out.push((uuid.clone(), ivs.clone())),
                    }
                }
                Gtid::Mysql(out)
            }
            // Mixed dialects cannot happen within one cluster; keep the newer.
            (_, b) => b.clone(),
        }
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::Empty => Ok(()),
            Gtid::Mariadb(v) => {
                for (i, (d, s, n)) in v.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep}{d}-{s}-{n}")?;
                }
                Ok(())
            }
            Gtid::Mysql(v) => {
                for (i, (uuid, ivs)) in v.iter().enumerate() {
                    f.write_str(if i == 0 { "" } else { "," })?;
                    f.write_str(uuid)?;
                    for &(a, b) in ivs {
                        if a == b {
                            write!(f, ":{a}")?;
                        } else {
                            write!(f, ":{a}-{b}")?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

fn parse_mysql(t: &str) -> Option<Gtid> {
    let mut out = Vec::new();
    for part in t.split(',') {
        let mut it = part.split(':');
        let uuid = it.next()?.to_ascii_lowercase();
        if uuid.len() != 36 {
            return None;
        }
        let mut ivs = Vec::new();
        for iv in it {
            let (a, b) = match iv.split_once('-') {
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                None => {
                    let n = iv.parse().ok()?;
                    (n, n)
                }
            };
            if a > b || a == 0 {
                return None;
            }
            ivs.push((a, b));
        }
        if ivs.is_empty() {
            return None;
        }
        out.push((uuid, normalize(ivs)));
    }
    Some(Gtid::Mysql(out))
}

/// Sorts intervals and joins overlapping or adjacent ones.
fn normalize(mut ivs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ivs.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
    for (a, b) in ivs {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Gtid {
        Gtid::parse(s).unwrap()
    }

    #[test]
    fn mariadb_positions() {
        let pos = g("0-1-100,1-2-7");
        assert!(pos.contains(&g("0-1-100")));
        assert!(pos.contains(&g("0-3-99")));
        assert!(!pos.contains(&g("0-1-101")));
        assert!(!pos.contains(&g("2-1-1")));
        assert!(pos.contains(&Gtid::Empty));
        assert!(!Gtid::Empty.contains(&g("0-1-1")));
        assert_eq!(pos.to_string(), "0-1-100,1-2-7");
        assert_eq!(g(" 1-2-7,\n0-1-100 ").to_string(), "0-1-100,1-2-7");
        assert_eq!(
            g("0-1-5").merge(&g("0-1-9,3-1-1")).to_string(),
            "0-1-9,3-1-1"
        );
        assert_eq!(g(""), Gtid::Empty);
    }

    #[test]
    fn mysql_sets() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let have = g(&format!("{u}:1-5:7-9"));
        assert!(have.contains(&g(&format!("{u}:3"))));
        assert!(have.contains(&g(&format!("{u}:7-9"))));
        assert!(!have.contains(&g(&format!("{u}:6"))));
        assert!(!have.contains(&g(&format!("{u}:1-7"))));
        assert_eq!(
            have.merge(&g(&format!("{u}:6"))).to_string(),
            format!("{u}:1-9")
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            "0-1",
            "a-b-c",
            "0-1-2-3",
            "uuid:1",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:",
        ] {
            assert!(Gtid::parse(bad).is_err(), "{bad}");
        }
    }
}
