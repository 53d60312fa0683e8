//! One pooled connection and what it carries from one session to the next.
//!
//! - **Key** ([`PoolKey`]): the user it logged in as, and the client
//!   capabilities and collation it was opened with. Capabilities change the
//!   wire format (DEPRECATE_EOF, MULTI_STATEMENTS, FOUND_ROWS...), so a
//!   connection is only lent to sessions with the same key.
//! - **State**: which session-state log it has applied (`owner` + `applied`,
//!   so the same session resumes with an incremental replay), and a
//!   fingerprint of that state, so another session with exactly the same
//!   SET/USE history reuses it as is. [`FRESH`] means nothing was applied
//!   since login or the last COM_RESET_CONNECTION; [`DIRTY`] means unknown
//!   state (a statement tandem cannot replay ran on it): it is reset before
//!   another session uses it.
//! - **Prepared statements** ([`StmtCache`]): by SQL text, shared by every
//!   session that uses the connection (like ProxySQL's global statement
//!   cache), closed least-recently-used beyond a cap, dropped on reset.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Instant;

use super::Lease;
use crate::mysql::backend::BackendConn;
use crate::mysql::protocol::command::{COM_QUIT, COM_STMT_CLOSE};

/// Fingerprint of a connection with no session state applied.
pub const FRESH: u64 = 0;
/// Fingerprint of a connection whose session state is unknown.
pub const DIRTY: u64 = u64::MAX;

/// What a pooled connection can be lent for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub user: Arc<str>,
    /// The client's capabilities that reach the backend (`RELAYABLE`),
    /// without those that only matter at login.
    pub caps: u32,
    /// MariaDB extended capabilities (`RELAYABLE_EXT`).
    pub ext_caps: u32,
    pub collation: u8,
}

/// An authenticated backend connection lent by a [`super::Pool`].
pub struct PooledConn {
    conn: BackendConn,
    /// Unique for the process's life.
    pub id: u64,
    pub key: Arc<PoolKey>,
    lease: Lease,
    pub created: Instant,
    pub idle_since: Instant,
    /// The session-state owner (a token per session epoch) whose log
    /// `applied` refers to; 0 = none.
    pub owner: u64,
    pub applied: u64,
    /// Hash of the applied session state, or [`FRESH`] / [`DIRTY`].
    pub fingerprint: u64,
    /// The default database, as far as tandem knows (`None` = none selected).
    pub database: Option<Arc<str>>,
    pub stmts: StmtCache,
    /// Times lent to a session (0 = just opened).
    pub lent: u64,
}

/// Prepared statements of one connection, by SQL text.
#[derive(Default)]
pub struct StmtCache {
    map: HashMap<Arc<[u8]>, CachedStmt>,
    tick: u64,
}

pub struct CachedStmt {
    /// The backend's statement id.
    pub id: u32,
    /// The parameter types (2 bytes each) last sent for it, whoever sent
    /// them: the server keeps them for executes that send none.
    pub types: Option<Vec<u8>>,
    last_used: u64,
}

// === impl PooledConn ===

impl PooledConn {
    pub(super) fn new(conn: BackendConn, id: u64, key: Arc<PoolKey>, lease: Lease) -> PooledConn {
        let now = Instant::now();
        PooledConn {
            conn,
            id,
            key,
            lease,
            created: now,
            idle_since: now,
            owner: 0,
            applied: 0,
            fingerprint: FRESH,
            database: None,
            stmts: StmtCache::default(),
            lent: 0,
        }
    }

    pub fn backend(&self) -> &Arc<str> {
        self.lease.backend()
    }

    /// The socket and the place it held in the pool, apart.
    pub(super) fn split(self) -> (BackendConn, Lease) {
        (self.conn, self.lease)
    }

    /// Closes the socket, keeping the place (to open another in it).
    pub(super) fn into_lease(self) -> Lease {
        let (conn, lease) = self.split();
        quit_in_background(conn);
        lease
    }

    /// Closes the connection politely and frees its place.
    pub fn close(self) {
        let (conn, lease) = self.split();
        quit_in_background(conn);
        drop(lease);
    }
}

impl std::fmt::Debug for PooledConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConn")
            .field("id", &self.id)
            .field("backend", self.backend())
            .field("thread_id", &self.conn.thread_id)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl Deref for PooledConn {
    type Target = BackendConn;
    fn deref(&self) -> &BackendConn {
        &self.conn
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut BackendConn {
        &mut self.conn
    }
}

/// Sends COM_QUIT (so the server does not count an aborted connection) and
/// closes, without making the caller wait.
pub(super) fn quit_in_background(mut conn: BackendConn) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let quit = conn.io.write_packet(0, &[COM_QUIT]);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), quit).await;
        });
    }
}

// === impl StmtCache ===

impl StmtCache {
    /// The backend statement for `sql`, marked as just used.
    pub fn get(&mut self, sql: &[u8]) -> Option<&mut CachedStmt> {
        self.tick += 1;
        let tick = self.tick;
        let s = self.map.get_mut(sql)?;
        s.last_used = tick;
        Some(s)
    }

    /// Records a statement prepared as `id`. Returns the backend ids to
    /// close: a statement the same text had before, and the least recently
    /// used beyond `cap`.
    pub fn insert(&mut self, sql: Arc<[u8]>, id: u32, cap: usize) -> Vec<u32> {
        self.tick += 1;
        let mut close = Vec::new();
        let entry = CachedStmt {
            id,
            types: None,
            last_used: self.tick,
        };
        if let Some(old) = self.map.insert(sql, entry) {
            if old.id != id {
                close.push(old.id);
            }
        }
        while self.map.len() > cap.max(1) {
            let Some(victim) = self
                .map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(s) = self.map.remove(&victim) {
                close.push(s.id);
            }
        }
        close
    }

    /// Forgets a statement (its backend id is returned to be closed).
    pub fn remove(&mut self, sql: &[u8]) -> Option<u32> {
        self.map.remove(sql).map(|s| s.id)
    }

    /// True when a cached statement's text is not `in_use`.
    pub fn any_unused(&self, in_use: &dyn Fn(&[u8]) -> bool) -> bool {
        self.map.keys().any(|sql| !in_use(sql))
    }

    /// Forgets every statement whose text is not `in_use`; returns their
    /// backend ids, to be closed.
    pub fn evict_unused(&mut self, in_use: &dyn Fn(&[u8]) -> bool) -> Vec<u32> {
        let mut ids = Vec::new();
        self.map.retain(|sql, s| {
            let keep = in_use(sql);
            if !keep {
                ids.push(s.id);
            }
            keep
        });
        ids
    }

    /// The server dropped every statement (COM_RESET_CONNECTION).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A COM_STMT_CLOSE packet payload (the command has no response).
pub fn close_packet(id: u32) -> [u8; 5] {
    let b = id.to_le_bytes();
    [COM_STMT_CLOSE, b[0], b[1], b[2], b[3]]
}
