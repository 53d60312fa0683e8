//! A frontend's accept loop and client connections: plain or TLS, HTTP/1.1
//! (keep-alive, upgrades) and HTTP/2 (prior knowledge or ALPN) on one port,
//! with the header-read, idle and shutdown limits.
//!
//! ```text
//!   accept ──> [TLS handshake, bounded by client_header_timeout_ms]
//!          ──> hyper auto (h1 | h2) ──> proxy::handle per request
//!          └── select: connection | idle check | shutdown -> graceful_shutdown
//! ```

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::workers::{accept_loop, Workers};

use super::proxy::{self, Activity, ConnCtx, Frontend};
use super::relay;

/// After shutdown, how long requests in flight may take before their
/// connections are dropped (the app's grace period bounds it too).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `listener` until `shutdown`, then lets connections finish. With
/// `workers`, every worker accepts and runs its own connections
/// (`Workers::accept_on_each`); else they run on the caller's runtime.
pub async fn serve(
    listener: TcpListener,
    fe: Arc<Frontend>,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    workers: Option<Arc<Workers>>,
) {
    let builder = Arc::new(builder(&fe));
    let name = fe.cfg.name.clone();
    let on_accept = {
        let shutdown = shutdown.clone();
        move |stream: TcpStream, peer: SocketAddr| {
            let (fe, tls, builder, shutdown) =
                (fe.clone(), tls.clone(), builder.clone(), shutdown.clone());
            async move {
                if fe.connections.load(Ordering::Relaxed) >= fe.cfg.max_connections {
                    tracing::warn!(frontend = %fe.cfg.name, %peer, "http: max_connections reached, connection refused");
                    return;
                }
                fe.connections.fetch_add(1, Ordering::Relaxed);
                fe.metrics.connections.increment(1.0);
                fe.metrics.connections_total.increment(1);
                connection(stream, peer, fe, tls, builder, shutdown).await;
            }
        }
    };
    match workers {
        Some(w) => {
            w.accept_on_each(listener, tracker, shutdown, on_accept)
                .await
        }
        None => accept_loop(listener, tracker, shutdown, on_accept).await,
    }
    tracing::debug!(frontend = %name, "http: listener closed");
}

fn builder(fe: &Frontend) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(fe.cfg.client_header_timeout_ms))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    if fe.cfg.http2 {
        b
    } else {
        b.http1_only()
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    fe: Arc<Frontend>,
    tls: Option<TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let header_timeout = Duration::from_millis(fe.cfg.client_header_timeout_ms);
    match tls {
        None => relay_then_hyper(stream, peer, false, &fe, &builder, &shutdown).await,
        Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
        {
            Ok(Ok(s)) if s.get_ref().1.alpn_protocol() == Some(b"h2") => {
                serve_io(TokioIo::new(s), peer, true, &fe, &builder, &shutdown).await
            }
            Ok(Ok(s)) => relay_then_hyper(s, peer, true, &fe, &builder, &shutdown).await,
            Ok(Err(e)) => tracing::debug!(%peer, "http: TLS handshake failed: {e}"),
            Err(_) => tracing::debug!(%peer, "http: TLS handshake timed out"),
        },
    }
    fe.connections.fetch_sub(1, Ordering::Relaxed);
    fe.metrics.connections.decrement(1.0);
}

/// HTTP/1.x on the relay; what it leaves (HTTP/2, upgrades, the unusual)
/// goes on through hyper.
async fn relay_then_hyper<S>(
    io: S,
    peer: SocketAddr,
    tls: bool,
    fe: &Arc<Frontend>,
    builder: &auto::Builder<TokioExecutor>,
    shutdown: &CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Some(rest) = relay::serve(io, peer, tls, fe, shutdown).await {
        serve_io(TokioIo::new(rest), peer, tls, fe, builder, shutdown).await;
    }
}

async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    tls: bool,
    fe: &Arc<Frontend>,
    builder: &auto::Builder<TokioExecutor>,
    shutdown: &CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    activity
        .last_done_ms
        .store(fe.pool.now_ms(), Ordering::Relaxed);
    let ctx = ConnCtx {
        peer,
        tls,
        activity: activity.clone(),
    };
    let handler = fe.clone();
    let service = service_fn(move |req| {
        let fe = handler.clone();
        let ctx = ctx.clone();
        async move { Ok::<_, std::convert::Infallible>(proxy::handle(fe, ctx, req).await) }
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    let mut conn = std::pin::pin!(conn);
    let idle = Duration::from_millis(fe.cfg.client_idle_timeout_ms);
    let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = tick.tick() => {
                let quiet = activity.in_flight.load(Ordering::Relaxed) == 0;
                let since = fe.pool.now_ms().saturating_sub(activity.last_done_ms.load(Ordering::Relaxed));
                if quiet && since >= idle.as_millis() as u64 {
                    tracing::debug!(%peer, "http: idle connection closed");
                    conn.as_mut().graceful_shutdown();
                    break bounded(conn.as_mut()).await;
                }
            }
            _ = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                break bounded(conn.as_mut()).await;
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "http: client connection ended: {e}");
    }
}

async fn bounded<F, T>(f: F) -> Result<T, Box<dyn std::error::Error + Send + Sync>>
where
    F: std::future::Future<Output = Result<T, Box<dyn std::error::Error + Send + Sync>>>,
{
    match tokio::time::timeout(DRAIN_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err("drain timeout".into()),
    }
}
