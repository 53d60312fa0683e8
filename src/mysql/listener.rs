//! The MySQL listener: accepts clients, enforces connection limits, and keeps
//! the registry of live sessions (tandem connection id -> backend thread) that
//! `KILL` and `/status` use.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backend::{self, BackendTls};
use super::io::{PacketIo, Stream};
use super::pool::{OpenStmts, Pool, PoolStats};
use super::protocol::auth;
use super::protocol::err::ServerError;
use super::session::{self, rsa_keys::RsaKeys};
use super::users::{UserEntry, Users};
use crate::config::{AuthPlugin, MysqlConfig, PoolConfig};
use crate::metrics::{MysqlMetrics, RejectReason};
use crate::topology::Topology;
use crate::workers::Workers;

/// One live client session, as other sessions and the admin API see it.
pub struct SessionHandle {
    pub id: u32,
    /// The session's current user (COM_CHANGE_USER changes it), for
    /// `KILL`'s privilege check. Std mutex: tiny critical sections, never
    /// held across an await.
    pub user: Mutex<String>,
    pub client_addr: SocketAddr,
    /// Backend thread id of the session's current backend connection
    /// (0 = none). Atomic: written by the session, read by `KILL` elsewhere.
    pub backend_thread: AtomicU32,
    /// Name of that backend. Std mutex: tiny critical sections, never held
    /// across an await.
    pub backend_name: Mutex<String>,
    /// Cancelled by `KILL CONNECTION`: the session closes at its next await.
    pub kill: CancellationToken,
    /// `KILL QUERY` of a statement that holds no backend thread yet (it
    /// waits for a pooled connection): the statement fails with ER 1317
    /// instead of running. Cleared when the session reads its next command,
    /// as the server clears a KILL QUERY that found nothing running.
    pub kill_query: std::sync::atomic::AtomicBool,
    /// Wakes a statement waiting for a pooled connection on `kill_query`.
    pub query_killed: tokio::sync::Notify,
}

/// State shared by every session of one MySQL listener.
pub struct MysqlShared {
    pub config: Arc<MysqlConfig>,
    pub users: Users,
    pub topology: Arc<Topology>,
    pub metrics: MysqlMetrics,
    // DashMap: inserted/removed on every connect/disconnect from many tasks,
    // read by KILL; sharded locks keep connects from serialising.
    pub sessions: DashMap<u32, Arc<SessionHandle>>,
    next_id: AtomicU32,
    pub client_count: AtomicU32,
    // Std mutex: touched once per connect/disconnect, never across an await.
    user_counts: Mutex<HashMap<String, u32>>,
    pub tls: Option<TlsAcceptor>,
    pub backend_tls: Option<BackendTls>,
    pub rsa: RsaKeys,
    /// Version string announced to clients: the primary's, learned from its
    /// greeting. ArcSwap: read at every connect, replaced when it changes.
    pub server_version: ArcSwap<String>,
    /// Capabilities of the primary, to announce only what it supports.
    pub backend_caps: AtomicU32,
    /// The primary's MariaDB extended capabilities (0: a MySQL primary, or
    /// not known yet).
    pub backend_ext_caps: AtomicU32,
    pub shutdown: CancellationToken,
    pub total_sessions: AtomicU64,
    /// Backend connection pools, one per session worker (see `pool`).
    pub pools: Vec<Arc<Pool>>,
    /// Prepared statements clients hold, by text, over all workers.
    pub open_stmts: OpenStmts,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Rsa(String),
}

/// One pool per worker, splitting `max_backend_connections` among them
/// (each gets at least one).
fn pools(cfg: &PoolConfig, workers: usize) -> Vec<Arc<Pool>> {
    let n = workers.max(1);
    let max = cfg.max_backend_connections;
    (0..n)
        .map(|i| {
            let share = max / n + usize::from(i < max % n);
            Arc::new(Pool::new(cfg.clone(), share))
        })
        .collect()
}

/// Version announced until the primary has been reached once. The `5.5.5-`
/// prefix tells MariaDB-aware drivers the real version follows.
const FALLBACK_VERSION: &str = "5.5.5-10.11.0-MariaDB-tandem";

// === impl SessionHandle ===

impl SessionHandle {
    /// The session's current user.
    pub fn user_name(&self) -> String {
        self.user.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

// === impl MysqlShared ===

impl MysqlShared {
    /// `workers`: how many session worker threads share the backend cap.
    pub fn new(
        config: Arc<MysqlConfig>,
        topology: Arc<Topology>,
        shutdown: CancellationToken,
        workers: usize,
    ) -> Result<Arc<MysqlShared>, ListenerError> {
        let users = Users::new(&config);
        let tls = match &config.tls {
            Some(t) => Some(TlsAcceptor::from(crate::tls::server_config(
                &t.cert_file,
                &t.key_file,
            )?)),
            None => None,
        };
        let backend_tls = match &config.backend_tls {
            Some(b) => Some(BackendTls {
                config: crate::tls::client_config(b.ca_file.as_deref(), b.verify)?,
                required: b.required,
            }),
            None => None,
        };
        let rsa =
            RsaKeys::new(config.rsa_private_key_file.as_deref()).map_err(ListenerError::Rsa)?;
        let version = config
            .server_version
            .clone()
            .unwrap_or_else(|| FALLBACK_VERSION.to_string());
        Ok(Arc::new(MysqlShared {
            users,
            topology,
            metrics: MysqlMetrics::new(),
            sessions: DashMap::new(),
            next_id: AtomicU32::new(1),
            client_count: AtomicU32::new(0),
            user_counts: Mutex::new(HashMap::new()),
            tls,
            backend_tls,
            rsa,
            server_version: ArcSwap::from_pointee(version),
            backend_caps: AtomicU32::new(u32::MAX),
            backend_ext_caps: AtomicU32::new(0),
            shutdown,
            total_sessions: AtomicU64::new(0),
            pools: pools(&config.pool, workers),
            open_stmts: OpenStmts::default(),
            config,
        }))
    }

    /// The backend connection pool of the calling worker thread.
    pub fn pool(&self) -> &Arc<Pool> {
        let i = crate::workers::current().unwrap_or(0);
        &self.pools[i.min(self.pools.len() - 1)]
    }

    /// Pool sizes per backend, summed over the workers.
    pub fn pool_stats(&self) -> HashMap<String, PoolStats> {
        let mut out: HashMap<String, PoolStats> = HashMap::new();
        for p in &self.pools {
            for (name, s) in p.stats() {
                let e = out.entry(name).or_default();
                e.open += s.open;
                e.idle += s.idle;
                e.waiting += s.waiting;
                e.max += s.max;
            }
        }
        out
    }

    /// The topology's JSON with each backend's pool sizes filled in.
    fn topology_with_pools(&self) -> serde_json::Value {
        let mut topo = self.topology.to_json();
        let stats = self.pool_stats();
        if let Some(list) = topo.get_mut("backends").and_then(|b| b.as_array_mut()) {
            for b in list {
                let name = b.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                let pool = stats.get(name).cloned().unwrap_or_default();
                if let Some(o) = b.as_object_mut() {
                    o.insert(
                        "pool".into(),
                        serde_json::to_value(pool).unwrap_or_default(),
                    );
                }
            }
        }
        topo
    }

    /// Publishes the pool sizes as gauges.
    pub fn export_pool_gauges(&self) {
        for (backend, s) in self.pool_stats() {
            self.metrics.pool_gauge(&backend, "open").set(s.open as f64);
            self.metrics.pool_gauge(&backend, "idle").set(s.idle as f64);
            self.metrics
                .pool_gauge(&backend, "waiting")
                .set(s.waiting as f64);
        }
    }

    /// A fresh tandem connection id (never 0, skipping ids still in use).
    pub fn next_connection_id(&self) -> u32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    pub fn default_plugin(&self) -> &'static str {
        match self.config.default_auth_plugin {
            AuthPlugin::NativePassword => auth::NATIVE,
            AuthPlugin::CachingSha2Password => auth::CACHING_SHA2,
        }
    }

    /// Counts a login against the user's `max_connections`; false when full.
    pub fn acquire_user_slot(&self, user: &UserEntry) -> bool {
        let mut counts = self.user_counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(user.name.clone()).or_insert(0);
        if user.max_connections.is_some_and(|max| *n >= max) {
            return false;
        }
        *n += 1;
        true
    }

    pub fn release_user_slot(&self, user: &str) {
        let mut counts = self.user_counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(user) {
            *n = n.saturating_sub(1);
        }
    }

    /// Learns the primary's version string and capabilities from its greeting.
    pub async fn refresh_server_version(&self) {
        if self.config.server_version.is_some() {
            return;
        }
        let snap = self.topology.load();
        let Some(primary) = snap.primary() else {
            return;
        };
        let timeout = Duration::from_millis(self.config.backend_connect_timeout_ms);
        match backend::probe(&primary.address, timeout).await {
            Ok(g) => {
                self.note_backend_version(&g.version);
                self.backend_caps.store(g.capabilities, Ordering::Relaxed);
                self.backend_ext_caps
                    .store(g.ext_capabilities, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(backend = %primary.name, error = %e, "cannot read the primary's version yet");
            }
        }
    }

    /// Announces the primary's version string to the next clients.
    pub fn note_backend_version(&self, version: &str) {
        if self.config.server_version.is_none() && **self.server_version.load() != version {
            self.server_version.store(Arc::new(version.to_string()));
        }
    }

    /// Where `sql` would go from a fresh session (no transaction, no pin),
    /// and why: the answer of `GET /route?sql=...`.
    pub fn explain(&self, sql: &str) -> serde_json::Value {
        use crate::mysql::classify;
        use crate::mysql::router::{self, Intent, SessionView};
        let routing = &self.config.routing;
        let opts = classify::Options {
            ansi_quotes: false,
            no_backslash_escapes: false,
            read_only_functions: &routing.read_only_functions,
        };
        let c = classify::classify(sql.as_bytes(), &opts);
        let intent = router::decide(&c, &SessionView::default(), routing);
        let snap = self.topology.load();
        let primary = snap.primary().map(|b| b.name.clone());
        let (target, reason) = match &intent {
            Intent::Primary(r) => (primary.clone(), r.as_str()),
            Intent::Backend(name, r) => (Some(name.clone()), r.as_str()),
            Intent::Read(_) | Intent::ReadOnlyTransaction => {
                let reason = match &intent {
                    Intent::Read(r) => r.as_str(),
                    _ => "read_only_transaction",
                };
                match router::pick_read(
                    &snap,
                    routing,
                    std::time::Instant::now(),
                    rand::random(),
                    &[],
                ) {
                    Some((b, true)) => (Some(b.name.clone()), "no_replica_fallback"),
                    Some((b, false)) => (Some(b.name.clone()), reason),
                    None => (None, "no_backend"),
                }
            }
        };
        let usable: Vec<String> = snap
            .backends
            .iter()
            .filter(|b| b.takes_reads(std::time::Instant::now()) || b.takes_writes())
            .map(|b| b.name.clone())
            .collect();
        serde_json::json!({
            "sql": sql,
            "classification": {
                "kind": format!("{:?}", c.kind),
                "flags": format!("{:?}", c.flags),
                "hint": c.hint.as_ref().map(|h| format!("{h:?}")),
                "may_use_replica": c.may_use_replica(),
            },
            "intent": format!("{intent:?}"),
            "backend": target,
            "reason": reason,
            "usable_backends": usable,
            "note": "decided for a new session: inside a transaction, after a pin (temporary table, \
                     GET_LOCK, LOCK TABLES, user variables set by a query, multi-statements) or \
                     with a hint, a session sends statements to the primary",
        })
    }

    pub fn status_json(&self) -> serde_json::Value {
        serde_json::json!({
            "listen": self.config.listen.to_string(),
            "client_connections": self.client_count.load(Ordering::Relaxed),
            "client_connections_total": self.total_sessions.load(Ordering::Relaxed),
            "server_version": **self.server_version.load(),
            "backends": self.topology_with_pools(),
            "pool": {
                "multiplex": self.config.pool.multiplex,
                "max_backend_connections": self.config.pool.max_backend_connections,
            },
            "routing": {
                "read_write_split": self.config.routing.read_write_split,
                "balance": format!("{:?}", self.config.routing.balance),
                "primary_reads": format!("{:?}", self.config.routing.primary_reads),
            },
        })
    }
}

/// Binds the listener (port 0 allowed) so the caller knows the address before
/// the accept loop runs.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenerError> {
    let bind = || -> std::io::Result<TcpListener> {
        let sock = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        sock.set_reuseaddr(true)?;
        sock.bind(addr)?;
        // A PHP tier opens a connection per request: a burst of connects
        // must queue in the kernel, not be dropped (the kernel caps this at
        // net.core.somaxconn).
        sock.listen(LISTEN_BACKLOG)
    };
    bind().map_err(|source| ListenerError::Bind { addr, source })
}

/// Pending connections the kernel queues before tandem accepts them.
const LISTEN_BACKLOG: u32 = 4096;

/// Accepts clients until shutdown; each session runs on the session worker
/// that accepted it, for its whole life (`Workers::accept_on_each`).
pub async fn serve(
    listener: TcpListener,
    shared: Arc<MysqlShared>,
    tracker: TaskTracker,
    workers: Arc<Workers>,
) {
    shared.refresh_server_version().await;
    if shared.users.passthrough() {
        // The primary's accounts, read once at start (later on a miss).
        let shared = shared.clone();
        tracker.spawn(async move {
            let tls = shared.backend_tls.as_ref();
            if let Err(e) = shared.users.reload(0, &shared.topology, tls).await {
                tracing::warn!(error = %e, "pass-through: cannot read the primary's accounts yet");
            }
        });
    }
    let shutdown = shared.shutdown.clone();
    workers
        .accept_on_each(listener, tracker, shutdown, move |tcp, peer| {
            accept_one(tcp, peer, shared.clone())
        })
        .await;
    tracing::info!("mysql listener stopped accepting");
}

async fn accept_one(tcp: TcpStream, peer: SocketAddr, shared: Arc<MysqlShared>) {
    let _ = tcp.set_nodelay(true);
    let n = shared.client_count.fetch_add(1, Ordering::AcqRel) + 1;
    shared.metrics.client_connections.increment(1.0);
    // Counted out on every exit, a panic's unwinding included: a leaked
    // count would refuse clients with 1040 until a restart.
    let _counted = ClientCount(&shared);
    if n > shared.config.max_client_connections {
        shared
            .metrics
            .rejected(RejectReason::MaxConnections)
            .increment(1);
        let mut io = PacketIo::new(Stream::Plain(tcp));
        // Like mysqld, answer with ERR 1040 in place of the greeting.
        let _ = io
            .write_packet(0, &ServerError::too_many_connections().encode())
            .await;
    } else {
        shared.total_sessions.fetch_add(1, Ordering::Relaxed);
        shared.metrics.client_connections_total.increment(1);
        session::run(tcp, peer, &shared).await;
    }
}

/// One accepted client in `client_count`, until dropped.
struct ClientCount<'a>(&'a MysqlShared);

impl Drop for ClientCount<'_> {
    fn drop(&mut self) {
        self.0.client_count.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.client_connections.decrement(1.0);
    }
}
