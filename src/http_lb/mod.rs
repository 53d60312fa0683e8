//! The HTTP load balancer: frontends that spread requests over pools of web
//! servers, with active and passive health checks, drain and maintenance,
//! safe retries, stickiness and TLS termination.
//!
//! ```text
//!   client ──> listener (TLS?) ──> relay (HTTP/1.x) ────────────┬──> Pool::pick (balance, health)
//!                                   └─> hyper (h2, upgrades...) ─┘       ▲ record_check / set_mode / report
//!                                       proxy::handle                    │ check tasks, admin API, proxies
//!                       upstream keep-alive pool (per worker) ──> server
//! ```
//!
//! Pure parts, tested without sockets: `balance` (algorithms), `health`
//! (rise/fall, ejection, slow start), `headers` and `relay::head`
//! (rewriting), `relay::chunked` (framing), `access_log` (line formats),
//! `check::judge_http`. Upstream connections (`upstream`) are driven by the
//! requests that use them, not by tasks of their own.

mod access_log;
pub mod balance;
mod body;
pub mod check;
pub mod headers;
pub mod health;
mod listener;
mod proxy;
mod relay;
mod server;
mod stats;
mod tls;
mod upstream;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{FrontendConfig, HttpConfig};
use crate::workers::Workers;

pub use health::AdminMode;
use proxy::Frontend;
use server::Pool;
pub use server::Server;

/// Why the balancer could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpLbError {
    #[error("frontend {frontend}: cannot listen on {addr}: {source}")]
    Bind {
        frontend: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("frontend {frontend}: server {server}: cannot resolve {address}")]
    Resolve {
        frontend: String,
        server: String,
        address: String,
    },
    #[error("frontend {frontend}: tls: {source}")]
    Tls {
        frontend: String,
        source: crate::tls::TlsError,
    },
    #[error("frontend {frontend}: access log: {source}")]
    AccessLog {
        frontend: String,
        source: std::io::Error,
    },
}

/// Why an admin action on a server was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerActionError {
    #[error("no http frontend named {0:?}")]
    UnknownFrontend(String),
    #[error("frontend {0:?} has no server named {1:?}")]
    UnknownServer(String, String),
}

/// The running balancer.
pub struct HttpLb {
    frontends: Vec<Arc<Frontend>>,
    /// The bound address of each frontend, in config order.
    pub addrs: Vec<SocketAddr>,
}

// === impl HttpLb ===

impl HttpLb {
    /// Binds every frontend and starts its listener and check tasks.
    /// Client connections run on `workers` when given (a connection stays
    /// on one worker thread), else on the caller's runtime.
    pub async fn start(
        cfg: &HttpConfig,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
        workers: Option<Arc<Workers>>,
    ) -> Result<HttpLb, HttpLbError> {
        let per_worker = workers.as_ref().map_or(1, |w| w.len().max(1));
        // Bind every frontend before starting any, so a bad one leaves
        // nothing running behind the error.
        let mut bound = Vec::with_capacity(cfg.frontends.len());
        for fc in &cfg.frontends {
            bound.push(prepare(fc, tracker, shutdown, per_worker).await?);
        }
        let mut frontends = Vec::with_capacity(bound.len());
        let mut addrs = Vec::with_capacity(bound.len());
        for (fe, listener, tls) in bound {
            let addr = listener.local_addr().unwrap_or(fe.cfg.listen);
            tracing::info!(frontend = %fe.cfg.name, %addr, "http frontend ready");
            if let Some(h) = &fe.cfg.health_check {
                let h = Arc::new(h.clone());
                for i in 0..fe.pool.servers.len() {
                    tracker.spawn(check::run(
                        fe.pool.clone(),
                        i,
                        h.clone(),
                        fe.cfg.name.clone(),
                        shutdown.clone(),
                    ));
                }
            }
            tracker.spawn(listener::serve(
                listener,
                fe.clone(),
                tls,
                shutdown.clone(),
                tracker.clone(),
                workers.clone(),
            ));
            addrs.push(addr);
            frontends.push(fe);
        }
        tracker.spawn(refresh_gauges(frontends.clone(), shutdown.clone()));
        Ok(HttpLb { frontends, addrs })
    }

    /// The `"http"` entry of `/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let frontends: Vec<_> = self
            .frontends
            .iter()
            .zip(&self.addrs)
            .map(|(fe, addr)| {
                let now = fe.pool.now_ms();
                serde_json::json!({
                    "name": fe.cfg.name,
                    "listen": addr.to_string(),
                    "balance": format!("{:?}", fe.cfg.balance).to_lowercase(),
                    "tls": fe.cfg.tls.is_some(),
                    "client_connections": fe.connections.load(Ordering::Relaxed),
                    "servers": fe.pool.servers.iter().map(|s| s.status_json(now)).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({ "frontends": frontends })
    }

    /// `POST /http/frontends/{frontend}/servers/{server}/{drain|maintenance|ready}`:
    /// sets the mode and returns the server as `/status` shows it.
    /// A server by frontend and server name (for `watch_state`).
    pub fn server(&self, frontend: &str, server: &str) -> Option<Arc<Server>> {
        let fe = self.frontends.iter().find(|f| f.cfg.name == frontend)?;
        fe.pool.find(server).cloned()
    }

    pub fn server_action(
        &self,
        frontend: &str,
        server: &str,
        mode: AdminMode,
    ) -> Result<serde_json::Value, ServerActionError> {
        let fe = self
            .frontends
            .iter()
            .find(|f| f.cfg.name == frontend)
            .ok_or_else(|| ServerActionError::UnknownFrontend(frontend.to_owned()))?;
        let s = fe.pool.find(server).ok_or_else(|| {
            ServerActionError::UnknownServer(frontend.to_owned(), server.to_owned())
        })?;
        s.set_mode(mode);
        tracing::info!(frontend, server, ?mode, "http: server mode set by admin");
        Ok(s.status_json(fe.pool.now_ms()))
    }
}

/// One frontend resolved, loaded and bound, not yet serving.
async fn prepare(
    fc: &FrontendConfig,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    per_worker: usize,
) -> Result<(Arc<Frontend>, TcpListener, Option<TlsAcceptor>), HttpLbError> {
    let name = fc.name.clone();
    let mut servers = Vec::with_capacity(fc.servers.len());
    let checked = fc.health_check.as_ref().map(|h| (h.rise, h.fall));
    for s in &fc.servers {
        let addr = resolve(&s.address)
            .await
            .ok_or_else(|| HttpLbError::Resolve {
                frontend: name.clone(),
                server: s.name.clone(),
                address: s.address.clone(),
            })?;
        servers.push(Arc::new(Server::new(&name, s, addr, checked)));
    }
    let tls = match &fc.tls {
        Some(t) => Some(TlsAcceptor::from(tls::server_config(t, fc.http2).map_err(
            |source| HttpLbError::Tls {
                frontend: name.clone(),
                source,
            },
        )?)),
        None => None,
    };
    let listener = TcpListener::bind(fc.listen)
        .await
        .map_err(|source| HttpLbError::Bind {
            frontend: name.clone(),
            addr: fc.listen,
            source,
        })?;
    let log = match &fc.access_log {
        Some(a) => Some(
            access_log::AccessLog::start(a.path.clone(), a.format, shutdown.clone(), tracker)
                .map_err(|source| HttpLbError::AccessLog {
                    frontend: name.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let pool = Arc::new(Pool::new(fc, servers));
    let fe = Frontend::new(
        fc.clone(),
        pool,
        log,
        shutdown.clone(),
        tracker.clone(),
        per_worker,
    );
    Ok((Arc::new(fe), listener, tls))
}

/// `host:port` -> the first address; an IP literal needs no lookup.
async fn resolve(address: &str) -> Option<SocketAddr> {
    if let Ok(a) = address.parse() {
        return Some(a);
    }
    tokio::net::lookup_host(address).await.ok()?.next()
}

/// Copies requests in flight into their gauges every second.
async fn refresh_gauges(frontends: Vec<Arc<Frontend>>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for fe in &frontends {
            for s in &fe.pool.servers {
                s.metrics
                    .active
                    .set(s.active.load(Ordering::Relaxed) as f64);
            }
        }
    }
}
