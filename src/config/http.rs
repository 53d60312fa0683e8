//! `[http]`: the HTTP load balancer's frontends, their server pools, health
//! checks and timeouts. Raw serde structs (unknown keys rejected), the
//! validated structs, and the validation that turns one into the other.
//!
//! Defaults follow HAProxy where it has one (`inter 2000`, `rise 2`,
//! `fall 3`, `retries 3`, `timeout http-request 10s`), so a user moving a
//! `backend` section over gets the behaviour they know.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::raw::{opt_bool, opt_u32, opt_u64};
use super::validate::{at_least_one, check_host_port, check_name, invalid, Invalid};
use super::validate::{readable_file, socket_addr};

const CHECK_INTERVAL_MS: u64 = 2_000;
const CHECK_TIMEOUT_MS: u64 = 2_000;
const CHECK_RISE: u32 = 2;
const CHECK_FALL: u32 = 3;
const CONNECT_TIMEOUT_MS: u64 = 5_000;
const CLIENT_HEADER_TIMEOUT_MS: u64 = 10_000;
const CLIENT_IDLE_TIMEOUT_MS: u64 = 60_000;
const BACKEND_TIMEOUT_MS: u64 = 60_000;
const RETRIES: u32 = 3;
const EJECT_ERRORS: u32 = 5;
const EJECT_COOLDOWN_MS: u64 = 10_000;
const POOL_MAX_IDLE: u64 = 256;
const POOL_IDLE_TIMEOUT_MS: u64 = 30_000;
const MAX_CONNECTIONS: u64 = 10_000;

/// `[http]`: one or more frontends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// At least one; names unique.
    pub frontends: Vec<FrontendConfig>,
}

/// How a frontend picks a server for a new request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpBalance {
    /// Smooth weighted round-robin (nginx's algorithm); the default.
    Roundrobin,
    /// Fewest requests in flight relative to weight.
    Leastconn,
    /// Two servers drawn by weight, the one with fewer requests in flight.
    Random2,
    /// Client IP hash (weighted rendezvous): one client, one server while it is up.
    Source,
}

/// Which check the health checker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// `GET path`, judged by status (and optionally body).
    Http,
    /// A TCP connect.
    Tcp,
}

/// Access log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// NCSA common log format.
    Common,
    /// NCSA combined (common + referer + user agent), like Apache's and nginx's.
    Combined,
    /// Combined, then the server, the total time in ms and the attempts.
    Tandem,
}

/// `[[http.frontends]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendConfig {
    /// Letters, digits, `.`, `_`, `-`; used in logs, metric labels and admin paths.
    pub name: String,
    pub listen: SocketAddr,
    pub balance: HttpBalance,
    /// At least one server that is not a backup; names unique in the frontend.
    pub servers: Vec<HttpServerConfig>,
    /// `None`: no active checks; servers are judged by traffic only.
    pub health_check: Option<HealthCheckConfig>,
    /// Cookie name for stickiness (e.g. `"SERVERID"`); `None` = off.
    pub cookie: Option<String>,
    pub tls: Option<FrontendTls>,
    /// Serve HTTP/2 to clients (h2c prior knowledge, ALPN `h2`); default true.
    pub http2: bool,
    /// Default 5 000.
    pub connect_timeout_ms: u64,
    /// A client must send a whole request head within this (slowloris);
    /// default 10 000. On HTTP/1 the wait for the next request on a
    /// keep-alive connection counts too, as HAProxy's `timeout http-request`
    /// does when `timeout http-keep-alive` is not set.
    pub client_header_timeout_ms: u64,
    /// A connection without a request in flight is closed after this; default 60 000.
    pub client_idle_timeout_ms: u64,
    /// From the request sent to the response head received; default 60 000.
    pub backend_timeout_ms: u64,
    /// Request bodies larger get 413; `None` (default, or 0) = no limit.
    pub max_body_bytes: Option<u64>,
    /// Further attempts on another server when it is safe; default 3.
    pub retries: u32,
    /// Also set the RFC 7239 `Forwarded` header; default false.
    pub forwarded_header: bool,
    /// Consecutive connect errors or 5xx answers that take a server out of
    /// rotation for `eject_cooldown_ms`; 0 = never. Default 5.
    pub eject_consecutive_errors: u32,
    /// Default 10 000.
    pub eject_cooldown_ms: u64,
    /// After a server comes back up its weight grows from near 0 to full
    /// over this long; 0 (default) = at once.
    pub slow_start_ms: u64,
    /// Idle keep-alive connections kept per server; default 256.
    pub pool_max_idle_per_server: usize,
    /// An idle upstream connection is closed after this; default 30 000.
    pub pool_idle_timeout_ms: u64,
    /// Client connections open at once; beyond, new ones are refused. Default 10 000.
    pub max_connections: usize,
    pub access_log: Option<AccessLogConfig>,
}

/// `[[http.frontends.servers]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpServerConfig {
    pub name: String,
    /// `"host:port"`; a host name is resolved once at start.
    pub address: String,
    /// 1 ..= 256; default 1.
    pub weight: u32,
    /// Used only when no normal server is usable; default false.
    pub backup: bool,
}

/// `[http.frontends.health_check]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Default `http`.
    pub kind: CheckKind,
    /// Default `"/"`.
    pub path: String,
    /// `Host` header of the check; default the server's address.
    pub host: Option<String>,
    /// Default 2 000 (HAProxy's `inter`); at least 50.
    pub interval_ms: u64,
    /// Default 2 000, at most `interval_ms`.
    pub timeout_ms: u64,
    /// Consecutive good checks before a down server is up; default 2.
    pub rise: u32,
    /// Consecutive failed checks before an up server is down; default 3.
    pub fall: u32,
    /// `None`: any 2xx or 3xx passes (HAProxy's rule).
    pub expect_status: Option<u16>,
    /// The body must contain this text.
    pub expect_body: Option<String>,
    /// The body's MD5, 32 lowercase hex digits (keepalived's `genhash`).
    pub expect_md5: Option<String>,
    /// A 404 puts the server in drain at once (HAProxy's `disable-on-404`):
    /// sticky sessions still reach it, new ones do not. Default false: a 404
    /// is a failed check like any other.
    pub disable_on_404: bool,
}

/// `[http.frontends.tls]`: TLS termination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendTls {
    /// At least one; the one whose certificate names the SNI host name is
    /// used, else the first.
    pub certificates: Vec<CertKey>,
}

/// One certificate chain and its key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertKey {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// `[http.frontends.access_log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// A file (appended to), or `"-"` for standard output.
    pub path: PathBuf,
    /// Default `combined`.
    pub format: AccessLogFormat,
}

// === raw ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default)]
    pub frontends: Vec<RawFrontend>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFrontend {
    pub name: String,
    pub listen: String,
    pub balance: Option<HttpBalance>,
    #[serde(default)]
    pub servers: Vec<RawServer>,
    pub health_check: Option<RawHealthCheck>,
    pub cookie: Option<String>,
    pub tls: Option<RawTls>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub http2: Option<bool>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub client_header_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub client_idle_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub backend_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_body_bytes: Option<u64>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub retries: Option<u32>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub forwarded_header: Option<bool>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub eject_consecutive_errors: Option<u32>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub eject_cooldown_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub slow_start_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub pool_max_idle_per_server: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub pool_idle_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_connections: Option<u64>,
    pub access_log: Option<RawAccessLog>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub name: String,
    pub address: String,
    #[serde(default, deserialize_with = "opt_u32")]
    pub weight: Option<u32>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub backup: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealthCheck {
    #[serde(rename = "type")]
    pub kind: Option<CheckKind>,
    pub path: Option<String>,
    pub host: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub interval_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub rise: Option<u32>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub fall: Option<u32>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub expect_status: Option<u32>,
    pub expect_body: Option<String>,
    pub expect_md5: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub disable_on_404: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    #[serde(default)]
    pub certificates: Vec<RawCertKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertKey {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccessLog {
    pub path: PathBuf,
    pub format: Option<AccessLogFormat>,
}

// === validation ===

/// Checks `[http]` and fills in defaults.
pub(super) fn validate(raw: RawHttp, base_dir: Option<&Path>) -> Result<HttpConfig, Invalid> {
    if raw.frontends.is_empty() {
        return Err(invalid(
            "http.frontends",
            "at least one [[http.frontends]] entry is required",
        ));
    }
    let mut names = HashSet::new();
    let mut listens = HashSet::new();
    let mut frontends = Vec::with_capacity(raw.frontends.len());
    for (i, f) in raw.frontends.into_iter().enumerate() {
        let at = format!("http.frontends[{i}]");
        check_name(&f.name).map_err(|r| invalid(format!("{at}.name"), r))?;
        if !names.insert(f.name.clone()) {
            return Err(invalid(
                format!("{at}.name"),
                format!("duplicate frontend name {:?}", f.name),
            ));
        }
        let fe = frontend(f, &at, base_dir)?;
        if fe.listen.port() != 0 && !listens.insert(fe.listen) {
            return Err(invalid(
                format!("{at}.listen"),
                format!("{} is already used by another frontend", fe.listen),
            ));
        }
        frontends.push(fe);
    }
    Ok(HttpConfig { frontends })
}

fn frontend(f: RawFrontend, at: &str, base_dir: Option<&Path>) -> Result<FrontendConfig, Invalid> {
    let field = |key: &str| format!("{at}.{key}");
    let ms =
        |key: &str, v: Option<u64>, default: u64| at_least_one(&field(key), v.unwrap_or(default));
    if let Some(c) = &f.cookie {
        let ok = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.');
        if c.is_empty() || !c.chars().all(ok) {
            return Err(invalid(
                field("cookie"),
                format!("expected a cookie name of letters, digits, '_', '-' or '.', found {c:?}"),
            ));
        }
    }
    let pool_max = f.pool_max_idle_per_server.unwrap_or(POOL_MAX_IDLE);
    Ok(FrontendConfig {
        listen: socket_addr(&field("listen"), &f.listen)?,
        balance: f.balance.unwrap_or(HttpBalance::Roundrobin),
        servers: servers(f.servers, at)?,
        health_check: f
            .health_check
            .map(|h| health_check(h, &field("health_check")))
            .transpose()?,
        cookie: f.cookie,
        tls: f.tls.map(|t| tls(t, &field("tls"), base_dir)).transpose()?,
        http2: f.http2.unwrap_or(true),
        connect_timeout_ms: ms(
            "connect_timeout_ms",
            f.connect_timeout_ms,
            CONNECT_TIMEOUT_MS,
        )?,
        client_header_timeout_ms: ms(
            "client_header_timeout_ms",
            f.client_header_timeout_ms,
            CLIENT_HEADER_TIMEOUT_MS,
        )?,
        client_idle_timeout_ms: ms(
            "client_idle_timeout_ms",
            f.client_idle_timeout_ms,
            CLIENT_IDLE_TIMEOUT_MS,
        )?,
        backend_timeout_ms: ms(
            "backend_timeout_ms",
            f.backend_timeout_ms,
            BACKEND_TIMEOUT_MS,
        )?,
        max_body_bytes: f.max_body_bytes.filter(|&n| n > 0),
        retries: f.retries.unwrap_or(RETRIES),
        forwarded_header: f.forwarded_header.unwrap_or(false),
        eject_consecutive_errors: f.eject_consecutive_errors.unwrap_or(EJECT_ERRORS),
        eject_cooldown_ms: ms("eject_cooldown_ms", f.eject_cooldown_ms, EJECT_COOLDOWN_MS)?,
        slow_start_ms: f.slow_start_ms.unwrap_or(0),
        pool_max_idle_per_server: pool_max as usize,
        pool_idle_timeout_ms: ms(
            "pool_idle_timeout_ms",
            f.pool_idle_timeout_ms,
            POOL_IDLE_TIMEOUT_MS,
        )?,
        max_connections: ms("max_connections", f.max_connections, MAX_CONNECTIONS)? as usize,
        access_log: f.access_log.map(|a| {
            let path = if a.path.as_os_str() == "-" || a.path.is_absolute() {
                a.path
            } else {
                base_dir.map_or(a.path.clone(), |d| d.join(&a.path))
            };
            AccessLogConfig {
                path,
                format: a.format.unwrap_or(AccessLogFormat::Combined),
            }
        }),
        name: f.name,
    })
}

fn servers(raw: Vec<RawServer>, at: &str) -> Result<Vec<HttpServerConfig>, Invalid> {
    if raw.is_empty() {
        return Err(invalid(
            format!("{at}.servers"),
            "at least one [[http.frontends.servers]] entry is required",
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let field = |key: &str| format!("{at}.servers[{i}].{key}");
        check_name(&s.name).map_err(|r| invalid(field("name"), r))?;
        if !seen.insert(s.name.clone()) {
            return Err(invalid(
                field("name"),
                format!("duplicate server name {:?}", s.name),
            ));
        }
        check_host_port(&s.address).map_err(|r| invalid(field("address"), r))?;
        let weight = s.weight.unwrap_or(1);
        if !(1..=256).contains(&weight) {
            return Err(invalid(
                field("weight"),
                format!("must be between 1 and 256, found {weight}"),
            ));
        }
        out.push(HttpServerConfig {
            name: s.name,
            address: s.address,
            weight,
            backup: s.backup.unwrap_or(false),
        });
    }
    if out.iter().all(|s| s.backup) {
        return Err(invalid(
            format!("{at}.servers"),
            "at least one server must not be a backup",
        ));
    }
    Ok(out)
}

fn health_check(h: RawHealthCheck, at: &str) -> Result<HealthCheckConfig, Invalid> {
    let field = |key: &str| format!("{at}.{key}");
    let interval_ms = h.interval_ms.unwrap_or(CHECK_INTERVAL_MS);
    if interval_ms < 50 {
        return Err(invalid(
            field("interval_ms"),
            format!("must be at least 50, found {interval_ms}"),
        ));
    }
    let timeout_ms = h.timeout_ms.unwrap_or(CHECK_TIMEOUT_MS.min(interval_ms));
    if timeout_ms == 0 || timeout_ms > interval_ms {
        return Err(invalid(
            field("timeout_ms"),
            format!("must be between 1 and interval_ms ({interval_ms}), found {timeout_ms}"),
        ));
    }
    let path = h.path.unwrap_or_else(|| "/".to_owned());
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(invalid(
            field("path"),
            format!("expected an absolute path like \"/servercheck.txt\", found {path:?}"),
        ));
    }
    let expect_status = match h.expect_status {
        Some(code @ 100..=599) => Some(code as u16),
        Some(code) => {
            return Err(invalid(
                field("expect_status"),
                format!("must be an HTTP status between 100 and 599, found {code}"),
            ))
        }
        None => None,
    };
    let expect_md5 = match h.expect_md5 {
        Some(hex) if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
            Some(hex.to_ascii_lowercase())
        }
        Some(hex) => {
            return Err(invalid(
                field("expect_md5"),
                format!("expected 32 hex digits (as genhash or md5sum print), found {hex:?}"),
            ))
        }
        None => None,
    };
    if let Some(host) = &h.host {
        if host.is_empty() || host.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(invalid(field("host"), "must be a host name without spaces"));
        }
    }
    Ok(HealthCheckConfig {
        kind: h.kind.unwrap_or(CheckKind::Http),
        path,
        host: h.host,
        interval_ms,
        timeout_ms,
        rise: at_least_one(&field("rise"), h.rise.unwrap_or(CHECK_RISE))?,
        fall: at_least_one(&field("fall"), h.fall.unwrap_or(CHECK_FALL))?,
        expect_status,
        expect_body: h.expect_body,
        expect_md5,
        disable_on_404: h.disable_on_404.unwrap_or(false),
    })
}

fn tls(t: RawTls, at: &str, base_dir: Option<&Path>) -> Result<FrontendTls, Invalid> {
    if t.certificates.is_empty() {
        return Err(invalid(
            format!("{at}.certificates"),
            "at least one { cert_file, key_file } entry is required",
        ));
    }
    let mut certificates = Vec::with_capacity(t.certificates.len());
    for (i, c) in t.certificates.into_iter().enumerate() {
        let field = |key: &str| format!("{at}.certificates[{i}].{key}");
        certificates.push(CertKey {
            cert_file: readable_file(&field("cert_file"), c.cert_file, base_dir)?,
            key_file: readable_file(&field("key_file"), c.key_file, base_dir)?,
        });
    }
    Ok(FrontendTls { certificates })
}

#[cfg(test)]
mod tests;
