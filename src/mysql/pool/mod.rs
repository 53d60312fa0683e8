//! Backend connection pools: authenticated connections kept per backend and
//! per user, lent to sessions one statement (or one transaction) at a time.
//!
//! ```text
//!   session ──acquire(backend, key)──> idle conn of that key? ──yes──> lend it
//!                                          │ no
//!                                          ├─ below max_backend_connections? ──> open one
//!                                          ├─ an idle conn of another key? ──> close it, open one
//!                                          └─ wait (FIFO) until a conn or a free place is handed over
//!   session ──release(conn)──> a waiter of that key? ──> hand it over
//!                              a waiter of another key? ──> close it, hand over its place
//!                              otherwise ──> idle list (LIFO: the warmest conn is lent first)
//! ```
//!
//! There is one [`Pool`] per session worker thread (`workers.rs`): a socket
//! stays on the runtime that registered it, and the pool's lock is never
//! contended. `max_backend_connections` is divided among the workers, so the
//! backend never sees more than the configured number from this node.
//!
//! Every open connection holds a [`Lease`]: dropping a connection anywhere
//! (a session that ends abruptly, a broken socket, an eviction) gives its
//! place back and wakes a waiter, so the count cannot drift.
//!
//! What a connection carries between sessions (its state fingerprint, its
//! prepared statements) is described in `conn.rs`; the rules for when a
//! session must keep a connection are in `session/pooling.rs`.

mod conn;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use self::conn::{
    close_packet as conn_close_packet, CachedStmt, PoolKey, PooledConn, StmtCache, DIRTY, FRESH,
};
use crate::config::PoolConfig;
use crate::mysql::backend::{self, BackendConn, BackendError, ConnectParams};
use crate::mysql::protocol::command::COM_PING;
use crate::topology::{Backend, BackendState, Topology};

/// Why no connection could be lent.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("{0}")]
    Connect(#[from] BackendError),
    #[error("no connection to backend '{backend}' became free within {waited:?} ({max} per worker in use)")]
    Timeout {
        backend: String,
        waited: Duration,
        max: usize,
    },
}

/// The pools of one worker thread.
pub struct Pool {
    inner: Arc<Shared>,
}

/// Sizes of one backend's pool, for `/status` and metrics.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (lent + idle).
    pub open: usize,
    pub idle: usize,
    /// Sessions waiting for a connection.
    pub waiting: usize,
    /// The cap for this worker.
    pub max: usize,
}

struct Shared {
    cfg: PoolConfig,
    /// This worker's share of `max_backend_connections`.
    max: usize,
    // Std mutex: one worker thread uses it (so it is never contended), and it
    // is never held across an await.
    backends: Mutex<HashMap<Arc<str>, BackendPool>>,
}

/// SQL texts of the statements clients hold prepared (on every worker),
/// with how many hold each: a cached backend statement whose text nobody
/// holds may be closed when the server's `max_prepared_stmt_count` is
/// reached.
#[derive(Default)]
pub struct OpenStmts {
    // Std mutex: taken once per client PREPARE and CLOSE, never across an
    // await; shared by the workers, whose pools all cache statements.
    map: Mutex<HashMap<Arc<[u8]>, usize>>,
}

#[derive(Default)]
struct BackendPool {
    open: usize,
    idle: Vec<PooledConn>,
    waiters: VecDeque<Waiter>,
}

struct Waiter {
    key: Arc<PoolKey>,
    tx: oneshot::Sender<Grant>,
}

/// What a waiter is handed: a connection of its key, or a place to open one.
/// (Moved once per hand-over; boxing the connection would cost more.)
#[allow(clippy::large_enum_variant)]
enum Grant {
    Conn(PooledConn),
    Place(Lease),
}

/// One place in a backend's `open` count; given back on drop.
pub struct Lease {
    pool: Arc<Shared>,
    backend: Arc<str>,
    /// False once the place was accounted for elsewhere (see `disarm`).
    armed: bool,
}

/// Unique connection ids, so prepared statements and session state can
/// tell connections apart.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

// === impl Pool ===

impl Pool {
    /// A pool for one worker; `max` is its share of the backend cap.
    pub fn new(cfg: PoolConfig, max: usize) -> Pool {
        Pool {
            inner: Arc::new(Shared {
                cfg,
                max: max.max(1),
                backends: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.cfg
    }

    /// Lends a connection to `backend` for `key`: an idle one that `accept`
    /// takes (preferring the one `prefer` picks), or a new one opened with
    /// `params`, waiting at most `acquire_timeout_ms` when the pool is full.
    pub async fn acquire(
        &self,
        backend: &Arc<str>,
        key: &Arc<PoolKey>,
        params: &ConnectParams<'_>,
        prefer: &(dyn Fn(&PooledConn) -> bool + Sync),
        accept: &(dyn Fn(&PooledConn) -> bool + Sync),
    ) -> Result<PooledConn, AcquireError> {
        let timeout = Duration::from_millis(self.inner.cfg.acquire_timeout_ms);
        let deadline = Instant::now() + timeout;
        loop {
            let (grant, evicted) = self.try_take(backend, key, prefer, accept);
            if let Some(c) = evicted {
                conn::quit_in_background(c);
            }
            let lease = match grant {
                Some(Grant::Conn(c)) => match self.check_idle(c).await {
                    Some(c) => return Ok(c),
                    None => continue,
                },
                Some(Grant::Place(lease)) => lease,
                None => match self.wait(backend, key, deadline).await? {
                    Grant::Conn(c) if accept(&c) => match self.check_idle(c).await {
                        Some(c) => return Ok(c),
                        None => continue,
                    },
                    // Not for this session (its database or state): close it
                    // and use its place.
                    Grant::Conn(c) => c.into_lease(),
                    Grant::Place(lease) => lease,
                },
            };
            return self.open(lease, key, params).await;
        }
    }

    /// A place for a connection the caller opens itself (a relayed login),
    /// waiting at most `acquire_timeout_ms` when the pool is full; an idle
    /// connection may be closed to make room.
    pub async fn reserve(
        &self,
        backend: &Arc<str>,
        key: &Arc<PoolKey>,
    ) -> Result<Lease, AcquireError> {
        let deadline = Instant::now() + Duration::from_millis(self.inner.cfg.acquire_timeout_ms);
        let none = |_: &PooledConn| false;
        let (grant, evicted) = self.try_take(backend, key, &none, &none);
        if let Some(c) = evicted {
            conn::quit_in_background(c);
        }
        let grant = match grant {
            Some(g) => g,
            None => self.wait(backend, key, deadline).await?,
        };
        Ok(match grant {
            Grant::Place(lease) => lease,
            Grant::Conn(c) => c.into_lease(),
        })
    }

    /// A connection the caller opened in a place from [`Pool::reserve`].
    pub fn adopt(&self, conn: BackendConn, key: &Arc<PoolKey>, lease: Lease) -> PooledConn {
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        PooledConn::new(conn, id, key.clone(), lease)
    }

    /// Takes an idle connection or a free place, without waiting. The second
    /// value is an idle connection of another key closed to make room: the
    /// caller drops it outside the lock.
    fn try_take(
        &self,
        backend: &Arc<str>,
        key: &Arc<PoolKey>,
        prefer: &(dyn Fn(&PooledConn) -> bool + Sync),
        accept: &(dyn Fn(&PooledConn) -> bool + Sync),
    ) -> (Option<Grant>, Option<BackendConn>) {
        let mut map = self.inner.lock();
        let bp = map.entry(backend.clone()).or_default();
        let mine = |c: &PooledConn| c.key == *key && accept(c);
        let pick = bp
            .idle
            .iter()
            .rposition(|c| mine(c) && prefer(c))
            .or_else(|| bp.idle.iter().rposition(mine));
        if let Some(i) = pick {
            return (Some(Grant::Conn(bp.idle.remove(i))), None);
        }
        if bp.open < self.inner.max {
            bp.open += 1;
            return (Some(Grant::Place(self.lease(backend))), None);
        }
        // Full: the oldest idle connection nobody here can use gives way.
        if let Some(i) = bp.idle.iter().position(|c| !mine(c)) {
            let (victim, lease) = bp.idle.remove(i).split();
            return (Some(Grant::Place(lease)), Some(victim));
        }
        (None, None)
    }

    /// Queues for a connection of `key` (or a free place), until `deadline`.
    async fn wait(
        &self,
        backend: &Arc<str>,
        key: &Arc<PoolKey>,
        deadline: Instant,
    ) -> Result<Grant, AcquireError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut map = self.inner.lock();
            map.entry(backend.clone())
                .or_default()
                .waiters
                .push_back(Waiter {
                    key: key.clone(),
                    tx,
                });
        }
        let started = Instant::now();
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(grant)) => Ok(grant),
            // Timed out (or the pool went away): our queue entry is dead; a
            // grant sent to it later comes back to the sender.
            _ => Err(AcquireError::Timeout {
                backend: backend.to_string(),
                waited: started.elapsed(),
                max: self.inner.max,
            }),
        }
    }

    /// Opens a connection in the place `lease` holds.
    async fn open(
        &self,
        lease: Lease,
        key: &Arc<PoolKey>,
        params: &ConnectParams<'_>,
    ) -> Result<PooledConn, AcquireError> {
        // On error the lease drops here and its place goes to a waiter.
        let conn = backend::connect(params).await?;
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        Ok(PooledConn::new(conn, id, key.clone(), lease))
    }

    /// A connection idle for a while is pinged before it is lent: a server
    /// that closed it (wait_timeout, restart) must not fail a statement that
    /// could have run on a fresh one.
    async fn check_idle(&self, mut c: PooledConn) -> Option<PooledConn> {
        let ping_after = Duration::from_millis(self.inner.cfg.ping_after_idle_ms);
        if c.idle_since.elapsed() < ping_after {
            return Some(c);
        }
        let ping = async {
            c.io.write_packet(0, &[COM_PING]).await.ok()?;
            let (_, resp) = c.io.read_packet_exact(1 << 16).await.ok()?;
            (resp.first() == Some(&0x00)).then_some(())
        };
        match tokio::time::timeout(Duration::from_secs(2), ping).await {
            Ok(Some(())) => Some(c),
            _ => None,
        }
    }

    /// Takes back a connection the session no longer needs. The caller
    /// vouches that it is healthy and holds no transaction, lock or cursor.
    pub fn release(&self, mut conn: PooledConn) {
        if conn.awaiting_response || !conn.io.rbuf.is_empty() {
            // Bytes of an earlier answer are still due (a client that left
            // mid-result): the next borrower would read them as its own.
            tracing::debug!(conn = ?conn, "connection closed: its last response was not read to the end");
            return conn.close();
        }
        if conn.created.elapsed() >= Duration::from_millis(self.inner.cfg.max_lifetime_ms) {
            return conn.close();
        }
        conn.idle_since = Instant::now();
        let backend = conn.backend().clone();
        let closing = {
            let mut map = self.inner.lock();
            hand_over(map.entry(backend).or_default(), conn)
        };
        if let Some(c) = closing {
            conn::quit_in_background(c);
        }
    }

    /// Takes out the idle connections to `backend` that cache statements
    /// whose text is not `in_use`, for the caller to close those statements
    /// and release the connections again.
    pub fn take_idle_with_unused_stmts(
        &self,
        backend: &str,
        in_use: &dyn Fn(&[u8]) -> bool,
    ) -> Vec<PooledConn> {
        let unused = |c: &PooledConn| c.stmts.any_unused(in_use);
        let mut map = self.inner.lock();
        let Some(bp) = map.get_mut(backend) else {
            return Vec::new();
        };
        let (take, keep) = bp.idle.drain(..).partition(|c| unused(c));
        bp.idle = keep;
        take
    }

    /// Closes idle connections past `idle_timeout_ms` or `max_lifetime_ms`,
    /// keeping `min_idle` per backend and key.
    pub fn sweep(&self) {
        let idle_timeout = Duration::from_millis(self.inner.cfg.idle_timeout_ms);
        let lifetime = Duration::from_millis(self.inner.cfg.max_lifetime_ms);
        let min_idle = self.inner.cfg.min_idle;
        let mut closing = Vec::new();
        {
            let mut map = self.inner.lock();
            for bp in map.values_mut() {
                let mut kept: HashMap<Arc<PoolKey>, usize> = HashMap::new();
                // Newest last: walk from the newest so the oldest go first.
                let mut keep = Vec::with_capacity(bp.idle.len());
                for c in bp.idle.drain(..).rev() {
                    let n = kept.entry(c.key.clone()).or_default();
                    let old = c.created.elapsed() >= lifetime;
                    let stale = c.idle_since.elapsed() >= idle_timeout && *n >= min_idle;
                    if old || stale {
                        closing.push(c);
                    } else {
                        *n += 1;
                        keep.push(c);
                    }
                }
                keep.reverse();
                bp.idle = keep;
            }
        }
        for c in closing {
            c.close();
        }
    }

    /// Closes every idle connection to `backend` (drained, down, removed).
    pub fn close_idle(&self, backend: &str) {
        let closing: Vec<PooledConn> = {
            let mut map = self.inner.lock();
            map.get_mut(backend)
                .map(|bp| bp.idle.drain(..).collect())
                .unwrap_or_default()
        };
        for c in closing {
            c.close();
        }
    }

    pub fn stats(&self) -> HashMap<String, PoolStats> {
        let map = self.inner.lock();
        map.iter()
            .map(|(name, bp)| {
                let s = PoolStats {
                    open: bp.open,
                    idle: bp.idle.len(),
                    waiting: bp.waiters.len(),
                    max: self.inner.max,
                };
                (name.to_string(), s)
            })
            .collect()
    }

    fn lease(&self, backend: &Arc<str>) -> Lease {
        Lease {
            pool: self.inner.clone(),
            backend: backend.clone(),
            armed: true,
        }
    }
}

/// Runs [`Pool::sweep`] every second until `stop`, and closes the idle
/// connections of backends that take no new work (down, draining, in
/// maintenance, or no longer in the topology).
pub async fn sweeper(pool: Arc<Pool>, topology: Arc<Topology>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                pool.sweep();
                let snap = topology.load();
                for name in pool.stats().into_keys() {
                    let keep = snap.by_name(&name).is_some_and(|b| accepts_work(b));
                    if !keep {
                        pool.close_idle(&name);
                    }
                }
            }
        }
    }
}

/// True when new statements may go to `b`.
pub fn accepts_work(b: &Backend) -> bool {
    !matches!(
        b.state,
        BackendState::Down | BackendState::Maintenance | BackendState::Draining
    )
}

// === impl OpenStmts ===

impl OpenStmts {
    /// A client prepared a statement with this text.
    pub fn opened(&self, sql: &Arc<[u8]>) {
        *self.lock().entry(sql.clone()).or_default() += 1;
    }

    /// A client closed (or lost, with its session) a statement with this text.
    pub fn closed(&self, sql: &[u8]) {
        let mut open = self.lock();
        if let Some(n) = open.get_mut(sql) {
            *n -= 1;
            if *n == 0 {
                open.remove(sql);
            }
        }
    }

    /// The texts clients hold now (a copy, to test many cached statements
    /// against without holding the lock).
    pub fn snapshot(&self) -> std::collections::HashSet<Arc<[u8]>> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<[u8]>, usize>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// === impl Shared ===

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, BackendPool>> {
        self.backends.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// === impl Lease ===

impl Lease {
    pub fn backend(&self) -> &Arc<str> {
        &self.backend
    }

    /// Drops without touching the pool: the caller already accounted for
    /// the place (it holds the lock, so a normal drop would deadlock).
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Lease {
    /// The place goes to the first live waiter (who opens a connection in
    /// it), or back to the pool.
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut map = self.pool.lock();
        if let Some(bp) = map.get_mut(&self.backend) {
            let lease = Lease {
                pool: self.pool.clone(),
                backend: self.backend.clone(),
                armed: true,
            };
            give_place(bp, lease);
        }
    }
}

/// Hands `conn` to a waiter of its key, or its place to a waiter of another
/// key (returning the connection to close), or keeps it idle.
fn hand_over(bp: &mut BackendPool, mut conn: PooledConn) -> Option<BackendConn> {
    while let Some(i) = bp.waiters.iter().position(|w| w.key == conn.key) {
        let w = bp.waiters.remove(i).expect("position is in range");
        match w.tx.send(Grant::Conn(conn)) {
            Ok(()) => return None,
            Err(Grant::Conn(c)) => conn = c,
            Err(Grant::Place(l)) => {
                // Not what was sent; account for it and stop.
                give_place(bp, l);
                return None;
            }
        }
    }
    if bp.waiters.is_empty() {
        bp.idle.push(conn);
        return None;
    }
    let (io, lease) = conn.split();
    give_place(bp, lease);
    Some(io)
}

/// Gives a place to the first live waiter, or frees it. Called with the
/// lock held, so the lease never runs its own drop here.
fn give_place(bp: &mut BackendPool, mut lease: Lease) {
    while let Some(w) = bp.waiters.pop_front() {
        match w.tx.send(Grant::Place(lease)) {
            Ok(()) => return,
            Err(Grant::Place(l)) => lease = l,
            Err(Grant::Conn(c)) => {
                // Not what was sent; keep the connection idle instead.
                bp.idle.push(c);
                return;
            }
        }
    }
    bp.open = bp.open.saturating_sub(1);
    lease.disarm();
}

#[cfg(test)]
mod tests;
