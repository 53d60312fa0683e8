//! Starts the parts a config names and stops them gracefully.
//!
//! Every listener is bound before `App::start` returns, so callers (tests on
//! port 0, the sandbox script) learn the real addresses. Every task is
//! tracked and takes the shutdown token; shutdown stops accepting, lets
//! in-flight statements finish within the grace period, then returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, ActionError, AdminContext, BackendAction, Health, HttpServerAction};
use crate::config::{Config, MysqlConfig};
use crate::http_lb::{HttpLb, HttpLbError};
use crate::mysql::backend::BackendTls;
use crate::mysql::listener::{self, ListenerError, MysqlShared};
use crate::topology::decide::AdminMode;
use crate::topology::monitor::{Monitor, MonitorError};
use crate::topology::Topology;
use crate::vrrp::Vrrp;
use crate::workers::Workers;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("nothing to run: the config has no [mysql], [http], [vrrp] or [admin] section")]
    NothingToRun,
    #[error("mysql listener: {0}")]
    Mysql(#[from] ListenerError),
    #[error("http load balancer: {0}")]
    Http(#[from] HttpLbError),
    #[error("admin listener on {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start session workers: {0}")]
    Workers(std::io::Error),
    #[error("{0}")]
    Vrrp(#[from] crate::vrrp::VrrpError),
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
}

/// A running tandem node.
pub struct App {
    pub mysql_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    pub mysql: Option<Arc<MysqlShared>>,
    /// The HTTP load balancer; its frontends' bound addresses are in `http.addrs`.
    pub http: Option<Arc<HttpLb>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    grace: Duration,
    workers: Option<Arc<Workers>>,
    pub vrrp: Option<Arc<Vrrp>>,
}

// === impl App ===

impl App {
    /// Binds every configured listener and spawns its tasks.
    pub async fn start(config: Config) -> Result<App, AppError> {
        if config.runs_nothing() {
            return Err(AppError::NothingToRun);
        }
        let prometheus = crate::metrics::install();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(crate::metrics::upkeep(prometheus.clone(), shutdown.clone()));

        let mut mysql_addr = None;
        let mut mysql = None;
        let mut monitor = None;
        let mut workers = None;
        if config.mysql.is_some() || config.http.is_some() {
            let n = config
                .runtime
                .worker_threads
                .unwrap_or_else(default_workers);
            workers = Some(Arc::new(Workers::start(n).map_err(AppError::Workers)?));
        }
        if let Some(m) = &config.mysql {
            let pool = workers.clone().expect("workers start with [mysql]");
            let topology = Arc::new(Topology::from_config(&m.backends));
            let mon = Monitor::new(topology.clone(), m, monitor_tls(m)?);
            mon.start(&tracker, &shutdown);
            // Route the first clients by checked states (bounded wait).
            mon.first_checks().await;
            monitor = Some(mon);
            let shared =
                MysqlShared::new(Arc::new(m.clone()), topology, shutdown.clone(), pool.len())?;
            for (handle, p) in pool.handles().iter().zip(&shared.pools) {
                let sweep = crate::mysql::pool::sweeper(
                    p.clone(),
                    shared.topology.clone(),
                    shutdown.clone(),
                );
                handle.spawn(tracker.track_future(sweep));
            }
            let sock = listener::bind(m.listen).await?;
            mysql_addr = sock.local_addr().ok();
            tracing::info!(addr = ?mysql_addr, "mysql listener ready");
            tracker.spawn(listener::serve(sock, shared.clone(), tracker.clone(), pool));
            tracker.spawn(export_pool_gauges(shared.clone(), shutdown.clone()));
            mysql = Some(shared);
        }

        let mut http = None;
        if let Some(h) = &config.http {
            http = Some(Arc::new(
                HttpLb::start(h, &tracker, &shutdown, workers.clone()).await?,
            ));
        }
        // After the MySQL listener, so a node that becomes master can serve at once.
        let vrrp = match config.vrrp.clone() {
            Some(v) => Some(Arc::new(Vrrp::start(v, &shutdown).await?)),
            None => None,
        };

        let mut admin_addr = None;
        if let Some(a) = &config.admin {
            let sock = tokio::net::TcpListener::bind(a.listen)
                .await
                .map_err(|source| AppError::Admin {
                    addr: a.listen,
                    source,
                })?;
            admin_addr = sock.local_addr().ok();
            tracing::info!(addr = ?admin_addr, "admin listener ready");
            let ctx = admin_context(
                prometheus,
                mysql.clone(),
                monitor.clone(),
                http.clone(),
                vrrp.clone(),
            );
            let token = shutdown.clone();
            let access = admin::Access {
                token: a.token.clone(),
                metrics_public: a.metrics_public,
                allowed_hosts: a.allowed_hosts.clone(),
            };
            let max = a.max_connections;
            tracker.spawn(async move {
                if let Err(e) = admin::serve(sock, ctx, access, max, token).await {
                    tracing::error!(error = %e, "admin listener failed");
                }
            });
        }
        Ok(App {
            mysql_addr,
            admin_addr,
            mysql,
            http,
            shutdown,
            tracker,
            grace: Duration::from_millis(config.runtime.shutdown_grace_ms),
            workers,
            vrrp,
        })
    }

    /// Stops accepting, waits for sessions to end (bounded by the grace
    /// period), then returns.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?self.grace, "grace period over, closing remaining sessions");
        }
        // The token already told VRRP to step down; wait until it has.
        if let Some(v) = self.vrrp.take() {
            v.stop().await;
        }
        if let Some(w) = self.workers.take() {
            // Joining blocks; the workers exit promptly once stopped.
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(mut w) = Arc::try_unwrap(w) {
                    w.stop();
                }
            })
            .await;
        }
    }
}

/// Half the CPUs, at least one. A tandem node shares its machine with
/// MariaDB and PHP, and the relay is bound by socket syscalls: on 2 cores one
/// worker gave more throughput and less CPU per query than two (measured
/// with benches/sysbench_vs_direct.py).
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl Drop for App {
    /// An `App` dropped without `shutdown` (a test that ends early) still
    /// stops its listeners and worker threads.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// TLS for the monitor's connections, as the sessions use towards backends.
fn monitor_tls(m: &MysqlConfig) -> Result<Option<Arc<BackendTls>>, AppError> {
    let Some(b) = &m.backend_tls else {
        return Ok(None);
    };
    let config = crate::tls::client_config(b.ca_file.as_deref(), b.verify)
        .map_err(|e| AppError::Mysql(ListenerError::Tls(e)))?;
    Ok(Some(Arc::new(BackendTls {
        config,
        required: b.required,
    })))
}

fn admin_context(
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    mysql: Option<Arc<MysqlShared>>,
    monitor: Option<Arc<Monitor>>,
    http: Option<Arc<HttpLb>>,
    vrrp: Option<Arc<Vrrp>>,
) -> AdminContext {
    let for_status = mysql.clone();
    let http_status = http.clone();
    let for_explain = mysql.clone();
    AdminContext {
        prometheus,
        status: Arc::new(move || {
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "mysql": for_status.as_ref().map(|m| m.status_json()),
                "http": http_status.as_ref().map(|h| h.status_json()),
                "vrrp": vrrp.as_ref().map(|v| v.status_json()),
            })
        }),
        explain: Arc::new(move |sql| for_explain.as_ref().map(|m| m.explain(sql))),
        backend_action: Arc::new(move |name, action| {
            let Some(monitor) = &monitor else {
                return Err(ActionError::NotFound(
                    "no [mysql] listener on this node".into(),
                ));
            };
            let mode = match action {
                BackendAction::Drain => AdminMode::Draining,
                BackendAction::Maintenance => AdminMode::Maintenance,
                BackendAction::Undrain | BackendAction::Ready => AdminMode::Ready,
            };
            monitor.set_mode(name, mode).map_err(|e| match e {
                MonitorError::UnknownBackend(_) => ActionError::NotFound(e.to_string()),
                MonitorError::Refused(_) => ActionError::Conflict(e.to_string()),
            })
        }),
        http_server_action: Arc::new(move |frontend, server, action| {
            let Some(http) = &http else {
                return Err(ActionError::NotFound(
                    "no [http] section on this node".into(),
                ));
            };
            let mode = match action {
                HttpServerAction::Drain => crate::http_lb::AdminMode::Drain,
                HttpServerAction::Maintenance => crate::http_lb::AdminMode::Maintenance,
                HttpServerAction::Ready => crate::http_lb::AdminMode::Ready,
            };
            http.server_action(frontend, server, mode)
                .map_err(|e| ActionError::NotFound(e.to_string()))
        }),
        health: Arc::new(move || Health {
            ok: true,
            detail: serde_json::json!({
                "mysql": mysql.as_ref().map(|m| serde_json::json!({
                    "listening": !m.shutdown.is_cancelled(),
                    "client_connections": m.client_count.load(std::sync::atomic::Ordering::Relaxed),
                })),
            }),
        }),
    }
}

/// Refreshes the pool gauges every second until shutdown.
async fn export_pool_gauges(shared: Arc<MysqlShared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => shared.export_pool_gauges(),
        }
    }
}

/// Runs a node until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> Result<(), AppError> {
    let app = App::start(config).await?;
    wait_for_signal().await?;
    tracing::info!("shutting down");
    app.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> Result<(), AppError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(AppError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AppError::Signal)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
