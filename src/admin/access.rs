//! Who may use the admin listener: pure rules, checked before a request is
//! routed.
//!
//! - **Host.** A browser tricked by DNS rebinding sends the attacker's name
//!   as `Host`; tandem answers only a `Host` that is an IP address,
//!   `localhost`, or a name in `[admin] allowed_hosts` (421 otherwise).
//! - **Token.** With `[admin] token` (or `token_file`) every request must carry
//!   `Authorization: Bearer TOKEN` (401 otherwise), but `GET /health`
//!   (liveness probes) and, with `metrics_public = true`, `GET /metrics`.
//! - **Forged POSTs.** A web page can send a "simple" cross-site POST (no
//!   content type, or a form's) without the browser asking first; it cannot
//!   add a JSON content type or an `Authorization` header. So a POST needs
//!   one of them (415 otherwise) even without a token.

use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, StatusCode};

/// `[admin]` access settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Required as `Authorization: Bearer TOKEN` when set.
    pub token: Option<String>,
    /// `GET /metrics` without the token.
    pub metrics_public: bool,
    /// Host names accepted besides IP addresses and `localhost`.
    pub allowed_hosts: Vec<String>,
}

/// A refused request: the status and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
}

// === impl Access ===

impl Access {
    /// Checks one request's method, path and headers.
    pub fn check(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        if let Some(host) = headers.get(HOST) {
            let host = host.to_str().unwrap_or("");
            if !self.host_allowed(host) {
                return Err(Refusal {
                    status: StatusCode::MISDIRECTED_REQUEST,
                    reason: "host not allowed: use an IP address, localhost, or a name in [admin] allowed_hosts\n",
                });
            }
        }
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(token) = &self.token {
            let public = matches!(*method, Method::GET | Method::HEAD)
                && (path == "/health" || (path == "/metrics" && self.metrics_public));
            let good = bearer.is_some_and(|b| same(b.as_bytes(), token.as_bytes()));
            if !public && !good {
                return Err(Refusal {
                    status: StatusCode::UNAUTHORIZED,
                    reason: "a valid Authorization: Bearer token is required ([admin] token)\n",
                });
            }
        }
        if *method == Method::POST && bearer.is_none() && !json(headers) {
            return Err(Refusal {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                reason: "a POST needs Content-Type: application/json (or the admin token)\n",
            });
        }
        Ok(())
    }

    /// An IP address (with or without a port), `localhost`, or an allowed
    /// name (ASCII case-insensitive).
    fn host_allowed(&self, host: &str) -> bool {
        let name = strip_port(host);
        name.parse::<std::net::IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name) || h.eq_ignore_ascii_case(host))
    }
}

/// `host[:port]` or `[v6]:port` -> the host part (brackets removed).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // One colon: a port; more: a bare IPv6 address.
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn code(r: Result<(), Refusal>) -> u16 {
        r.map_or_else(|e| e.status.as_u16(), |()| 200)
    }

    #[test]
    fn hosts_ip_localhost_or_allowed() {
        let a = Access {
            allowed_hosts: vec!["admin.example".into()],
            ..Default::default()
        };
        let get = |host: &str| code(a.check(&Method::GET, "/status", &headers(&[("host", host)])));
        for ok in [
            "127.0.0.1:9090",
            "10.0.0.5",
            "[::1]:9090",
            "::1",
            "localhost:9090",
            "LOCALHOST",
            "admin.example:9090",
        ] {
            assert_eq!(get(ok), 200, "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9090",
            "127.0.0.1.evil.example",
        ] {
            assert_eq!(get(bad), 421, "{bad}");
        }
        assert_eq!(
            code(a.check(&Method::GET, "/status", &HeaderMap::new())),
            200
        );
    }

    #[test]
    fn posts_need_json_or_the_token() {
        let open = Access::default();
        let post = |a: &Access, h: &[(&str, &str)]| {
            code(a.check(&Method::POST, "/mysql/backends/db2/drain", &headers(h)))
        };
        assert_eq!(
            post(&open, &[]),
            415,
            "a no-cors fetch sends no content type"
        );
        assert_eq!(post(&open, &[("content-type", "text/plain")]), 415);
        assert_eq!(
            post(
                &open,
                &[("content-type", "application/x-www-form-urlencoded")]
            ),
            415
        );
        assert_eq!(
            post(
                &open,
                &[("content-type", "application/json; charset=utf-8")]
            ),
            200
        );
        assert_eq!(post(&open, &[("authorization", "Bearer anything")]), 200);

        let locked = Access {
            token: Some("s3cret".into()),
            ..Default::default()
        };
        assert_eq!(post(&locked, &[("content-type", "application/json")]), 401);
        assert_eq!(post(&locked, &[("authorization", "Bearer wrong")]), 401);
        assert_eq!(post(&locked, &[("authorization", "Bearer s3cret")]), 200);
    }

    #[test]
    fn reads_with_a_token_but_health_and_public_metrics() {
        let locked = Access {
            token: Some("s3cret".into()),
            ..Default::default()
        };
        let get = |a: &Access, path: &str, auth: bool| {
            let h = if auth {
                headers(&[("authorization", "Bearer s3cret")])
            } else {
                HeaderMap::new()
            };
            code(a.check(&Method::GET, path, &h))
        };
        assert_eq!(get(&locked, "/status", false), 401);
        assert_eq!(get(&locked, "/status", true), 200);
        assert_eq!(get(&locked, "/metrics", false), 401);
        assert_eq!(get(&locked, "/health", false), 200);
        let public = Access {
            metrics_public: true,
            ..locked
        };
        assert_eq!(get(&public, "/metrics", false), 200);
        assert_eq!(get(&public, "/route", false), 401);
    }
}
