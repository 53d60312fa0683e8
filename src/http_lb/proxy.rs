//! One request through the balancer: pick a server, forward with the
//! forwarding headers set and hop-by-hop ones removed, retry on another
//! server only when safe, and stream the response back.
//!
//! Retry rule (HAProxy's `retry-on conn-failure` plus what is provably
//! unsent): a request goes to another server when the connection to the
//! server could not be made (nothing was sent), or when it is idempotent
//! and its body was never read. A request whose body a server started to
//! read, or that got no answer in time, is never replayed.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::header::{
    HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, HOST, REFERER, SET_COOKIE, USER_AGENT,
};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::FrontendConfig;

use super::access_log::{AccessLog, Entry};
use super::body::{BodySlot, ForwardBody, OnEnd, ResponseBody};
use super::headers::{self, ClientSide};
use super::server::{NoServer, Pool, Server};
use super::stats::{class_index, FrontendMetrics};
use super::upstream::{Lease, UpstreamError, Upstreams};

/// One frontend: its config, servers, upstream connection pool and metrics.
pub struct Frontend {
    pub cfg: FrontendConfig,
    pub pool: Arc<Pool>,
    /// Keep-alive connections to the servers, one pool per session worker
    /// (`crate::workers::current()`), so a request and its upstream
    /// connection stay on one thread, driven by the request's own task.
    pub(super) upstreams: Arc<Upstreams>,
    pub metrics: FrontendMetrics,
    pub(super) access_log: Option<AccessLog>,
    /// Client connections open now (for `max_connections` and `/status`).
    pub connections: AtomicUsize,
    pub(super) backend_timeout: Duration,
    /// The app's tracker: upgraded (WebSocket) tunnels run as tracked
    /// tasks that stop on shutdown.
    pub tunnels: TaskTracker,
    pub shutdown: CancellationToken,
}

/// What a request knows about its client connection.
#[derive(Clone)]
pub struct ConnCtx {
    pub peer: SocketAddr,
    pub tls: bool,
    pub activity: Arc<Activity>,
}

/// Requests in flight on one client connection and when the last ended,
/// for the idle timeout; atomics because requests of an HTTP/2
/// connection run on several tasks.
#[derive(Default)]
pub struct Activity {
    pub in_flight: AtomicUsize,
    pub last_done_ms: AtomicU64,
}

/// Counts a request as in flight on a server until dropped.
pub(super) struct Inflight(Arc<Server>);

/// Everything recorded when a response is done.
pub(super) struct Finish {
    fe: Arc<Frontend>,
    conn: Arc<Activity>,
    started: Instant,
    pub(super) status: u16,
    pub(super) server: Option<Inflight>,
    pub(super) attempts: u32,
    log: Option<Box<LogInfo>>,
}

/// Access log fields, captured only when the frontend logs.
pub(super) struct LogInfo {
    pub(super) client: IpAddr,
    pub(super) time: SystemTime,
    pub(super) request_line: String,
    pub(super) referer: Option<String>,
    pub(super) user_agent: Option<String>,
}

/// A request checked and rewritten, ready for one or more attempts.
struct Prepared {
    method: Method,
    headers: hyper::HeaderMap,
    path: hyper::http::uri::PathAndQuery,
    /// The client's body until an attempt starts reading it.
    slot: Option<BodySlot>,
    hint: hyper::body::SizeHint,
    /// Set by the body when `max_body_bytes` was crossed mid-stream.
    over_limit: Arc<AtomicBool>,
    idempotent: bool,
    /// The server the stickiness cookie names.
    sticky: Option<String>,
    /// The client's side of an upgrade (WebSocket), when it asked for one.
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
}

/// An answer tandem gives itself: its status and short text (the same on
/// the relay and on hyper's path).
pub(super) type Answer = (StatusCode, &'static str);

pub(super) const TOO_LARGE: Answer = (
    StatusCode::PAYLOAD_TOO_LARGE,
    "413 request body too large\n",
);
pub(super) const TIMED_OUT: Answer = (
    StatusCode::GATEWAY_TIMEOUT,
    "504 gateway timeout: the server did not answer in time\n",
);
pub(super) const SERVER_FAILED: Answer = (
    StatusCode::BAD_GATEWAY,
    "502 bad gateway: the server failed to answer\n",
);

/// The answer when no server can take a request.
pub(super) fn no_server(e: NoServer) -> Answer {
    match e {
        NoServer::NoneAvailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "503 service unavailable: no server is available\n",
        ),
        NoServer::AllTried => (
            StatusCode::BAD_GATEWAY,
            "502 bad gateway: every server tried failed\n",
        ),
    }
}

// === impl Frontend ===

impl Frontend {
    pub fn new(
        cfg: FrontendConfig,
        pool: Arc<Pool>,
        access_log: Option<AccessLog>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
        workers: usize,
    ) -> Self {
        let upstreams = Arc::new(Upstreams::new(
            &cfg,
            pool.servers.len(),
            workers,
            tracker.clone(),
            shutdown.clone(),
        ));
        Frontend {
            metrics: FrontendMetrics::new(&cfg.name),
            backend_timeout: Duration::from_millis(cfg.backend_timeout_ms),
            cfg,
            pool,
            upstreams,
            access_log,
            connections: AtomicUsize::new(0),
            tunnels: tracker,
            shutdown,
        }
    }

    /// Sends one attempt to `server` and waits for the response head; an
    /// upgrade gets a connection of its own.
    async fn send(
        &self,
        index: usize,
        server: &Server,
        forward: Request<ForwardBody>,
        upgrade: bool,
    ) -> Result<(Response<Incoming>, Option<Lease>), UpstreamError> {
        if upgrade {
            let response = self.upstreams.request_upgrade(server.addr, forward).await?;
            return Ok((response, None));
        }
        let (response, lease) = self.upstreams.request(index, server.addr, forward).await?;
        Ok((response, Some(lease)))
    }
}

// === impl Inflight ===

impl Inflight {
    pub(super) fn new(server: &Arc<Server>) -> Self {
        server.active.fetch_add(1, Ordering::Relaxed);
        server.requests.fetch_add(1, Ordering::Relaxed);
        Inflight(server.clone())
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

// === impl Finish ===

impl Finish {
    /// A request of connection `conn` starts (it counts as in flight until
    /// the returned value is finished).
    pub(super) fn start(
        fe: &Arc<Frontend>,
        conn: &Arc<Activity>,
        log: Option<Box<LogInfo>>,
    ) -> Box<Finish> {
        conn.in_flight.fetch_add(1, Ordering::Relaxed);
        Box::new(Finish {
            fe: fe.clone(),
            conn: conn.clone(),
            started: Instant::now(),
            status: 0,
            server: None,
            attempts: 0,
            log,
        })
    }
}

impl OnEnd for Finish {
    fn finish(self: Box<Self>, bytes_sent: u64) {
        let elapsed = self.started.elapsed();
        self.fe.metrics.duration.record(elapsed.as_secs_f64());
        let class = class_index(self.status);
        match &self.server {
            Some(s) => s.0.metrics.responses[class].increment(1),
            None => self.fe.metrics.local[class].increment(1),
        }
        if let (Some(log), Some(info)) = (&self.fe.access_log, self.log) {
            log.log(&Entry {
                client: info.client,
                time: info.time,
                request_line: info.request_line,
                status: self.status,
                bytes: bytes_sent,
                referer: info.referer,
                user_agent: info.user_agent,
                server: self.server.as_ref().map(|s| s.0.name.clone()),
                duration: elapsed,
                attempts: self.attempts,
            });
        }
        self.conn.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.conn
            .last_done_ms
            .store(self.fe.pool.now_ms(), Ordering::Relaxed);
    }
}

/// Handles one request; never fails (errors become 4xx/5xx answers).
pub async fn handle(
    fe: Arc<Frontend>,
    conn: ConnCtx,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let log = fe
        .access_log
        .is_some()
        .then(|| Box::new(log_info(&req, conn.peer.ip())));
    let mut finish = Finish::start(&fe, &conn.activity, log);
    let mut p = match prepare(&fe, &conn, req) {
        Ok(p) => p,
        Err((code, text)) => return local(finish, code, text),
    };
    let mut tried: Vec<usize> = Vec::new();
    let failure: Answer = loop {
        let index = match fe.pool.pick(conn.peer.ip(), p.sticky.as_deref(), &tried) {
            Ok(i) => i,
            Err(e) => break no_server(e),
        };
        if !tried.is_empty() {
            fe.metrics.retries.increment(1);
        }
        finish.attempts += 1;
        let server = fe.pool.servers[index].clone();
        let forward = p.forward(&fe, &server);
        let inflight = Inflight::new(&server);
        let upgrade = p.client_upgrade.is_some();
        let sent = tokio::time::timeout(
            fe.backend_timeout,
            fe.send(index, &server, forward, upgrade),
        )
        .await;
        let error = match sent {
            Ok(Ok((response, lease))) => {
                fe.pool.report(index, !response.status().is_server_error());
                finish.status = response.status().as_u16();
                finish.server = Some(inflight);
                return p.respond(&fe, &server, response, lease, finish);
            }
            Ok(Err(e)) => e,
            Err(_) => {
                fe.pool.report(index, false);
                tracing::debug!(server = %server.name, "http: no response within backend_timeout_ms");
                break TIMED_OUT;
            }
        };
        drop(inflight);
        if p.over_limit.load(Ordering::Relaxed) {
            break TOO_LARGE;
        }
        let connect_failed = matches!(
            error,
            UpstreamError::Connect(_) | UpstreamError::ConnectTimeout
        );
        fe.pool.report(index, !connect_failed);
        tracing::debug!(server = %server.name, error = ?error, connect_failed, "http: request to server failed");
        tried.push(index);
        let safe = p.body_untouched() && (connect_failed || p.idempotent);
        if !safe || tried.len() > fe.cfg.retries as usize {
            break SERVER_FAILED;
        }
    };
    let (code, text) = failure;
    local(finish, code, text)
}

/// Checks the request and rewrites its head for the servers; an error is
/// the answer to give instead.
fn prepare(fe: &Frontend, conn: &ConnCtx, mut req: Request<Incoming>) -> Result<Prepared, Answer> {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    if req.version() == Version::HTTP_11 && !req.headers().contains_key(HOST) {
        // RFC 9112 section 3.2: a server must answer 400 to an HTTP/1.1 request without Host.
        return Err((
            StatusCode::BAD_REQUEST,
            "400 bad request: missing Host header\n",
        ));
    }
    if let (Some(max), Some(len)) = (fe.cfg.max_body_bytes, req.body().size_hint().exact()) {
        if len > max {
            return Err(TOO_LARGE);
        }
    }
    let upgrade = req.version() == Version::HTTP_11 && headers::wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, upgrade);
    // The client's 100-continue was answered by this hop when the body
    // was first read; the server gets the body without waiting.
    parts.headers.remove(EXPECT);
    headers::set_forwarding(
        &mut parts.headers,
        ClientSide {
            ip: conn.peer.ip(),
            tls: conn.tls,
            host: host.as_deref(),
            forwarded: fe.cfg.forwarded_header,
        },
    );
    let sticky = fe
        .cfg
        .cookie
        .as_deref()
        .and_then(|c| headers::cookie(&parts.headers, c))
        .map(str::to_owned);
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    Ok(Prepared {
        hint: body.size_hint(),
        slot: (!body.is_end_stream()).then(|| Arc::new(Mutex::new(Some(body)))),
        method: parts.method,
        headers: parts.headers,
        path,
        over_limit: Arc::new(AtomicBool::new(false)),
        idempotent,
        sticky,
        client_upgrade,
    })
}

// === impl Prepared ===

impl Prepared {
    /// The request for one attempt on `server`, in origin form; `Host` is
    /// the server's authority when the client sent none (HTTP/1.0).
    fn forward(&self, fe: &Frontend, server: &Server) -> Request<ForwardBody> {
        let mut forward = Request::new(ForwardBody::new(
            self.slot.clone(),
            self.hint,
            fe.cfg.max_body_bytes,
            self.over_limit.clone(),
        ));
        *forward.method_mut() = self.method.clone();
        *forward.uri_mut() = self.path.clone().into();
        *forward.version_mut() = Version::HTTP_11;
        *forward.headers_mut() = self.headers.clone();
        if !self.headers.contains_key(HOST) {
            if let Ok(v) = HeaderValue::from_str(server.authority.as_str()) {
                forward.headers_mut().insert(HOST, v);
            }
        }
        forward
    }

    /// True while no attempt has started reading the client's body.
    fn body_untouched(&self) -> bool {
        self.slot
            .as_ref()
            .is_none_or(|s| s.lock().unwrap_or_else(|e| e.into_inner()).is_some())
    }

    /// The server's answer on its way to the client: hop-by-hop fields
    /// removed, the stickiness cookie set, an upgrade tunnelled.
    fn respond(
        &mut self,
        fe: &Arc<Frontend>,
        server: &Server,
        mut response: Response<Incoming>,
        lease: Option<Lease>,
        finish: Box<Finish>,
    ) -> Response<ResponseBody> {
        let backend_upgrade = (response.status() == StatusCode::SWITCHING_PROTOCOLS
            && self.client_upgrade.is_some())
        .then(|| hyper::upgrade::on(&mut response));
        let (mut rp, rbody) = response.into_parts();
        headers::strip_hop_by_hop(&mut rp.headers, backend_upgrade.is_some());
        if let Some(name) = &fe.cfg.cookie {
            if self.sticky.as_deref() != Some(server.name.as_str()) {
                let cookie = headers::sticky_cookie(name, &server.name);
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    rp.headers.append(SET_COOKIE, v);
                }
            }
        }
        if let (Some(client), Some(backend)) = (self.client_upgrade.take(), backend_upgrade) {
            spawn_tunnel(fe, client, backend);
        }
        Response::from_parts(rp, ResponseBody::upstream(rbody, lease, Some(finish)))
    }
}

/// An answer tandem makes itself: short, plain text, and the connection
/// kept unless the request body was left unread.
fn local(mut finish: Box<Finish>, code: StatusCode, text: &'static str) -> Response<ResponseBody> {
    finish.status = code.as_u16();
    let mut r = Response::new(ResponseBody::full(
        Bytes::from_static(text.as_bytes()),
        Some(finish),
    ));
    *r.status_mut() = code;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

fn log_info(req: &Request<Incoming>, client: IpAddr) -> LogInfo {
    let text = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    LogInfo {
        client,
        time: SystemTime::now(),
        request_line: format!("{} {} {:?}", req.method(), target, req.version()),
        referer: text(REFERER),
        user_agent: text(USER_AGENT),
    }
}

/// Relays bytes both ways between an upgraded client and server connection
/// (WebSocket) until either side closes or tandem shuts down.
fn spawn_tunnel(
    fe: &Arc<Frontend>,
    client: hyper::upgrade::OnUpgrade,
    backend: hyper::upgrade::OnUpgrade,
) {
    let shutdown = fe.shutdown.clone();
    fe.tunnels.spawn(async move {
        let (client, backend) = match tokio::join!(client, backend) {
            (Ok(c), Ok(b)) => (c, b),
            (c, b) => {
                tracing::debug!(client = ?c.err(), backend = ?b.err(), "http: upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut backend = TokioIo::new(backend);
        tokio::select! {
            r = tokio::io::copy_bidirectional(&mut client, &mut backend) => {
                if let Err(e) = r {
                    tracing::debug!("http: tunnel ended: {e}");
                }
            }
            _ = shutdown.cancelled() => {}
        }
    });
}
