//! Who may log in: the configured `[[mysql.users]]`, and with
//! `auth = "passthrough"` the primary's own accounts.
//!
//! Pass-through reads the accounts' `mysql_native_password` hashes
//! (`SHA1(SHA1(password))`, the `*HEX` of `mysql.user`) from the primary, as
//! MaxScale and ProxySQL do. With the hash tandem checks a client's scramble
//! answer itself, and the answer yields `SHA1(password)`, which is all it
//! needs to open more pooled connections as that user (`Secret::NativeStage1`).
//! Accounts are read at start and again when an unknown user, or a known one
//! whose answer does not match (a changed password), tries to log in: a user
//! created a moment ago logs in at once. Reloads are single-flight: logins
//! that miss together share one query.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::backend::query::{self, QueryResult};
use super::backend::{self, BackendTls, ConnectParams};
use super::protocol::auth::{self, Secret};
use super::protocol::DEFAULT_COLLATION;
use crate::config::{Credentials, MysqlConfig, UserConfig};
use crate::topology::Topology;

/// A user tandem can authenticate, with what it needs to check its logins.
#[derive(Debug)]
pub struct UserEntry {
    pub name: String,
    /// Clear text when configured: needed for caching_sha2 fast auth and for
    /// backends that want more than mysql_native_password.
    pub password: Option<String>,
    /// `SHA1(SHA1(pw))`.
    pub native_hash: [u8; 20],
    pub max_connections: Option<u32>,
    /// Overrides `[mysql.routing] consistency` for this user's sessions.
    pub consistency: Option<crate::config::Consistency>,
    /// Read from the primary (pass-through), not configured.
    pub from_backend: bool,
}

/// The users of one MySQL listener.
pub struct Users {
    configured: HashMap<String, Arc<UserEntry>>,
    /// The primary's accounts. ArcSwap: read at every login, replaced whole
    /// by a reload.
    loaded: ArcSwap<HashMap<String, Arc<UserEntry>>>,
    loader: Option<Loader>,
}

/// How the primary's accounts are read.
struct Loader {
    credentials: Credentials,
    timeout: Duration,
    /// Completed reloads; a login that waited for a reload in progress
    /// uses its result instead of starting another.
    generation: AtomicU64,
    // Tokio mutex: held across the reload's query, and the logins that miss
    // meanwhile wait on it (single flight).
    reloading: tokio::sync::Mutex<()>,
}

/// Why the accounts could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no primary is known")]
    NoPrimary,
    #[error("connect to {0}: {1}")]
    Connect(String, backend::BackendError),
    #[error(
        "reading mysql.user on {0}: {1} (the pass-through account needs SELECT on mysql.user)"
    )]
    Query(String, query::QueryError),
    #[error("reading mysql.user timed out")]
    Timeout,
}

// === impl UserEntry ===

impl UserEntry {
    fn configured(u: &UserConfig) -> UserEntry {
        let native_hash = match (&u.password, &u.password_hash) {
            (_, Some(h)) => *h,
            (Some(p), None) => auth::native_hash(p),
            (None, None) => auth::native_hash(""),
        };
        UserEntry {
            name: u.user.clone(),
            password: u.password.clone(),
            native_hash,
            max_connections: u.max_connections,
            consistency: u.consistency,
            from_backend: false,
        }
    }
}

// === impl Users ===

impl Users {
    pub fn new(config: &MysqlConfig) -> Users {
        let configured = config
            .users
            .iter()
            .map(|u| (u.user.clone(), Arc::new(UserEntry::configured(u))))
            .collect();
        let loader = config.passthrough.clone().map(|credentials| Loader {
            credentials,
            timeout: Duration::from_millis(config.backend_connect_timeout_ms.max(1000)) * 2,
            generation: AtomicU64::new(0),
            reloading: tokio::sync::Mutex::new(()),
        });
        Users {
            configured,
            loaded: ArcSwap::from_pointee(HashMap::new()),
            loader,
        }
    }

    /// The user called `name`: a configured one first, then one read from
    /// the primary.
    pub fn get(&self, name: &str) -> Option<Arc<UserEntry>> {
        self.configured
            .get(name)
            .cloned()
            .or_else(|| self.loaded.load().get(name).cloned())
    }

    /// True when the primary's accounts may be read (pass-through).
    pub fn passthrough(&self) -> bool {
        self.loader.is_some()
    }

    /// Reads the primary's accounts again, unless a reload that started
    /// after `seen` (a [`Users::generation`]) finished meanwhile.
    pub async fn reload(
        &self,
        seen: u64,
        topology: &Topology,
        tls: Option<&BackendTls>,
    ) -> Result<(), LoadError> {
        let Some(loader) = &self.loader else {
            return Ok(());
        };
        let _flight = loader.reloading.lock().await;
        if loader.generation.load(Ordering::Acquire) != seen {
            return Ok(());
        }
        let result = tokio::time::timeout(loader.timeout, read_accounts(loader, topology, tls))
            .await
            .unwrap_or(Err(LoadError::Timeout));
        loader.generation.fetch_add(1, Ordering::AcqRel);
        let accounts = result?;
        tracing::debug!(
            accounts = accounts.len(),
            "pass-through: accounts read from the primary"
        );
        self.loaded.store(Arc::new(accounts));
        Ok(())
    }

    /// Completed reloads so far (see [`Users::reload`]).
    pub fn generation(&self) -> u64 {
        self.loader
            .as_ref()
            .map_or(0, |l| l.generation.load(Ordering::Acquire))
    }

    /// `name` again after a reload, for a login that found no such user (or
    /// whose answer did not match the hash tandem had).
    pub async fn refreshed(
        &self,
        name: &str,
        topology: &Topology,
        tls: Option<&BackendTls>,
    ) -> Option<Arc<UserEntry>> {
        if self.loader.is_none() || self.configured.contains_key(name) {
            return None;
        }
        let seen = self.generation();
        if let Err(e) = self.reload(seen, topology, tls).await {
            tracing::warn!(error = %e, "pass-through: cannot read the primary's accounts");
        }
        self.get(name)
    }
}

/// Logs into the primary as the pass-through account and reads `mysql.user`.
async fn read_accounts(
    loader: &Loader,
    topology: &Topology,
    tls: Option<&BackendTls>,
) -> Result<HashMap<String, Arc<UserEntry>>, LoadError> {
    let snap = topology.load();
    let primary = snap.primary().ok_or(LoadError::NoPrimary)?;
    let secret = Secret::Plain(loader.credentials.password.clone());
    let params = ConnectParams {
        backend_name: &primary.name,
        address: &primary.address,
        user: &loader.credentials.user,
        secret: &secret,
        database: None,
        capabilities: 0,
        ext_capabilities: 0,
        collation: DEFAULT_COLLATION,
        attributes: None,
        timeout: loader.timeout,
        tls,
        max_packet: 16 << 20,
    };
    let mut conn = backend::connect(&params)
        .await
        .map_err(|e| LoadError::Connect(primary.name.clone(), e))?;
    let rows = query::query(&mut conn, "SELECT * FROM mysql.user")
        .await
        .map_err(|e| LoadError::Query(primary.name.clone(), e))?;
    Ok(accounts_from(&rows))
}

/// The accounts of a `SELECT * FROM mysql.user` answer that tandem can
/// check: `mysql_native_password` (or the pre-plugin empty plugin) with a
/// `*HEX` hash or no password. Roles, anonymous users and accounts of other
/// plugins are left out. An account name with several hosts keeps the `%`
/// host's hash (else the first): tandem matches logins by name, and the
/// backend still checks the host tandem connects from.
pub fn accounts_from(rows: &QueryResult) -> HashMap<String, Arc<UserEntry>> {
    let mut out: HashMap<String, (bool, Arc<UserEntry>)> = HashMap::new();
    for i in 0..rows.rows.len() {
        let Some(name) = rows.get(i, "User").filter(|n| !n.is_empty()) else {
            continue;
        };
        if rows.get(i, "is_role") == Some("Y") {
            continue;
        }
        let plugin = rows.get(i, "plugin").unwrap_or("");
        if !matches!(plugin, "" | auth::NATIVE) {
            continue;
        }
        let hash = rows
            .get(i, "authentication_string")
            .filter(|h| !h.is_empty())
            .or_else(|| rows.get(i, "Password"))
            .unwrap_or("");
        let (password, native_hash) = if hash.is_empty() {
            (Some(String::new()), auth::native_hash(""))
        } else {
            match auth::parse_native_hash(hash) {
                Some(h) => (None, h),
                None => continue,
            }
        };
        let any_host = rows.get(i, "Host") == Some("%");
        if out
            .get(name)
            .is_some_and(|(had_any, _)| *had_any || !any_host)
        {
            continue;
        }
        let entry = UserEntry {
            name: name.to_string(),
            password,
            native_hash,
            max_connections: None,
            consistency: None,
            from_backend: true,
        };
        out.insert(name.to_string(), (any_host, Arc::new(entry)));
    }
    out.into_iter().map(|(k, (_, e))| (k, e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[(&str, &str, &str, &str)]) -> QueryResult {
        QueryResult {
            columns: ["Host", "User", "plugin", "authentication_string", "is_role"]
                .map(String::from)
                .to_vec(),
            rows: list
                .iter()
                .map(|(host, user, plugin, hash)| {
                    vec![
                        Some(host.to_string()),
                        Some(user.to_string()),
                        Some(plugin.to_string()),
                        Some(hash.to_string()),
                        Some(if *user == "r1" { "Y" } else { "N" }.to_string()),
                    ]
                })
                .collect(),
        }
    }

    fn hex(h: [u8; 20]) -> String {
        let s: String = h.iter().map(|b| format!("{b:02X}")).collect();
        format!("*{s}")
    }

    #[test]
    fn native_accounts_are_read_and_others_left_out() {
        let a = hex(auth::native_hash("apass"));
        let b_local = hex(auth::native_hash("local"));
        let b_any = hex(auth::native_hash("any"));
        let got = accounts_from(&rows(&[
            ("%", "a", "mysql_native_password", &a),
            ("localhost", "b", "mysql_native_password", &b_local),
            ("%", "b", "mysql_native_password", &b_any),
            ("localhost", "b", "mysql_native_password", &b_local),
            ("%", "nopw", "mysql_native_password", ""),
            ("%", "ed", "ed25519", "xyz"),
            ("localhost", "root", "unix_socket", ""),
            ("%", "r1", "", ""),
            ("%", "", "mysql_native_password", &a),
            ("%", "bad", "mysql_native_password", "*XYZ"),
        ]));
        let mut names: Vec<_> = got.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["a", "b", "nopw"]);
        assert_eq!(got["a"].native_hash, auth::native_hash("apass"));
        assert_eq!(got["b"].native_hash, auth::native_hash("any"), "% wins");
        assert_eq!(got["nopw"].password.as_deref(), Some(""));
        assert!(got["a"].from_backend);
    }
}
