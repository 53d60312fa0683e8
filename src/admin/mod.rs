//! The admin HTTP listener: `/metrics`, `/health`, `/status`, `/route`, and
//! `POST /mysql/backends/{name}/{action}` (see `routes.rs`).
//!
//! ```text
//!   accept loop ──spawn──> connection task (hyper http1) ──> routes::route
//!        │                      │
//!        └── shutdown token ────┴─> graceful_shutdown, bounded by DRAIN_TIMEOUT
//! ```
//!
//! HTTP/1.1 only, plain TCP: bind it to a private address. Who may use it
//! (token, Host, forged POSTs) is checked first (`access.rs`).

mod access;
mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use access::Access;
pub use routes::route;

/// `GET /route?sql=...` callback: the explanation, or `None` without MySQL.
pub type ExplainFn = dyn Fn(&str) -> Option<serde_json::Value> + Send + Sync;

/// An operator's request on one MySQL backend
/// (`POST /mysql/backends/{name}/{action}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendAction {
    /// No new routing decisions; statements in flight finish.
    Drain,
    /// Back to the monitor's judgement (same as `Ready`).
    Undrain,
    /// No new routing decisions, for work on the server.
    Maintenance,
    /// Back to the monitor's judgement.
    Ready,
}

/// Why a backend action was not done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// 404: no such backend (or no MySQL listener).
    NotFound(String),
    /// 409: refused in the current state (e.g. draining the primary).
    Conflict(String),
}

/// Callback of `POST /mysql/backends/{name}/{action}`: the backend as it is
/// now, or why not.
pub type BackendActionFn =
    dyn Fn(&str, BackendAction) -> Result<serde_json::Value, ActionError> + Send + Sync;

/// An operator's request on one HTTP server
/// (`POST /http/frontends/{frontend}/servers/{server}/{action}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpServerAction {
    /// No new requests (sticky sessions still arrive); in-flight ones finish.
    Drain,
    /// No requests at all; in-flight ones finish.
    Maintenance,
    /// Back to the health checks' judgement.
    Ready,
}

/// Callback of `POST /http/frontends/{frontend}/servers/{server}/{action}`.
pub type HttpServerActionFn =
    dyn Fn(&str, &str, HttpServerAction) -> Result<serde_json::Value, ActionError> + Send + Sync;

/// What the admin endpoints show; the app provides the callbacks, so this
/// module knows nothing about MySQL or topology.
#[derive(Clone)]
pub struct AdminContext {
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
    /// Body of `GET /status`. Called once per request, on the connection's
    /// task: keep it cheap (load a snapshot, do not query a backend).
    pub status: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
    /// Answer of `GET /health`. Same constraints as `status`.
    pub health: Arc<dyn Fn() -> Health + Send + Sync>,
    /// `GET /route?sql=...`: where a statement would go and why; `None`
    /// when this node runs no MySQL listener.
    pub explain: Arc<ExplainFn>,
    /// `POST /mysql/backends/{name}/{action}`: drain, undrain, maintenance, ready.
    pub backend_action: Arc<BackendActionFn>,
    /// `POST /http/frontends/{frontend}/servers/{server}/{action}`: drain, maintenance, ready.
    pub http_server_action: Arc<HttpServerActionFn>,
}

/// The node's health as the app sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// `true` -> 200 `{"status":"ok"}`, `false` -> 503 `{"status":"fail"}`.
    pub ok: bool,
    /// Extra fields of the answer; an object's keys are merged after `status`.
    pub detail: serde_json::Value,
}

/// After shutdown, how long requests in flight may take before their
/// connections are dropped. Admin answers are computed in memory, so a
/// request still running after this is a stuck client.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// A client must send its request headers within this, so idle or slow
/// sockets do not pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves admin HTTP on `listener` until `shutdown` is cancelled, then lets
/// requests in flight finish (at most [`DRAIN_TIMEOUT`]) and returns.
///
/// Accept errors are logged and retried, since they are usually transient
/// (file descriptor exhaustion); so this returns `Ok` after shutdown.
pub async fn serve(
    listener: TcpListener,
    ctx: AdminContext,
    access: Access,
    max_connections: usize,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = TaskTracker::new();
    let access = Arc::new(access);
    // Bounds the admin sockets: a flood of them must not take the process's
    // descriptors or time from the rest.
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin: listening");
    }
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::debug!(%peer, "admin: connection refused: [admin] max_connections reached");
                    continue;
                };
                let (ctx, access, shutdown) = (ctx.clone(), access.clone(), shutdown.clone());
                connections.spawn(async move {
                    connection(stream, peer, ctx, access, shutdown).await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!("admin: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    // Stop listening before draining, so new clients are refused, not parked.
    drop(listener);
    connections.close();
    connections.wait().await;
    tracing::debug!("admin: stopped");
    Ok(())
}

/// One client connection, possibly several keep-alive requests.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: AdminContext,
    access: Arc<Access>,
    shutdown: CancellationToken,
) {
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let (method, path) = (request.method(), request.uri().path());
        let response = match access.check(method, path, request.headers()) {
            Ok(()) => route(&ctx, method, path, request.uri().query()),
            Err(refused) => routes::refused(&refused),
        };
        async move { Ok::<_, Infallible>(response) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = shutdown.cancelled() => {
            // Finishes the request in flight, then closes; an idle
            // keep-alive connection closes at once.
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(DRAIN_TIMEOUT, conn.as_mut()).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!(%peer, "admin: connection dropped after drain timeout");
                    return;
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "admin: connection error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn context() -> AdminContext {
        AdminContext {
            prometheus: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            status: Arc::new(|| serde_json::json!({"ok": true})),
            health: Arc::new(|| Health {
                ok: true,
                detail: serde_json::json!({"primary": "db1"}),
            }),
            explain: Arc::new(|_| None),
            backend_action: Arc::new(|name, _| Err(ActionError::NotFound(name.to_string()))),
            http_server_action: Arc::new(|_, name, _| Err(ActionError::NotFound(name.to_string()))),
        }
    }

    async fn start() -> (
        SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            context(),
            Access::default(),
            8,
            shutdown.clone(),
        ));
        (addr, shutdown, server)
    }

    async fn stopped(server: tokio::task::JoinHandle<std::io::Result<()>>) {
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn raw_http_get_over_tcp() {
        let (addr, shutdown, server) = start().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("content-type: application/json\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with("\r\n\r\n{\"status\":\"ok\",\"primary\":\"db1\"}\n"),
            "{answer}"
        );
        shutdown.cancel();
        stopped(server).await;
    }

    #[tokio::test]
    async fn head_over_tcp_has_length_but_no_body() {
        let (addr, shutdown, server) = start().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"HEAD /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        let expected_length = "{\n  \"ok\": true\n}\n".len();
        assert!(
            answer.contains(&format!("content-length: {expected_length}\r\n")),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\n"), "{answer}");
        shutdown.cancel();
        stopped(server).await;
    }

    #[tokio::test]
    async fn shutdown_closes_idle_keep_alive_connections() {
        let (addr, shutdown, server) = start().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0; 4096];
        let n = client.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 404 Not Found\r\n"));
        // The connection is kept alive and idle; shutdown must not wait for it.
        shutdown.cancel();
        stopped(server).await;
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("server closes the connection")
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "listener is closed"
        );
    }
}
