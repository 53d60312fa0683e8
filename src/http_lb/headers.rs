//! Pure header rewriting for a forwarded request and its response
//! (RFC 9110 section 7.6.1: hop-by-hop fields; RFC 7239: `Forwarded`).

use std::net::IpAddr;

use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, COOKIE, HOST, UPGRADE};

/// Fields that describe one connection, never forwarded (RFC 9110 7.6.1,
/// plus the pre-standard `Proxy-Connection` and `Keep-Alive`).
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// What the proxy knows about the client side of one request.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide<'a> {
    pub ip: IpAddr,
    /// The frontend terminates TLS.
    pub tls: bool,
    /// The host the client asked for (`Host`, or the HTTP/2 `:authority`).
    pub host: Option<&'a str>,
    /// Also write RFC 7239 `Forwarded`.
    pub forwarded: bool,
}

/// Removes hop-by-hop fields, and those named in `Connection`. For an
/// upgrade (`upgrade` true) keeps `Connection: upgrade` and `Upgrade`,
/// which the next hop needs to switch protocols.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && n == UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
    }
}

/// True when an HTTP/1.1 request asks to switch protocols (WebSocket).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Sets the fields a backend behind a proxy reads: `X-Forwarded-For`
/// (appended to), `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host`,
/// optionally `Forwarded`, and `Host` when the client sent only an
/// HTTP/2 `:authority`.
pub fn set_forwarding(headers: &mut HeaderMap, client: ClientSide<'_>) {
    let ip = client.ip.to_canonical();
    let ip_text = ip.to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {ip_text}"),
        _ => ip_text.clone(),
    };
    let proto = if client.tls { "https" } else { "http" };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ip_text) {
        headers.insert("x-real-ip", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(host) = client.host {
        if let Ok(v) = HeaderValue::from_str(host) {
            if !headers.contains_key(HOST) {
                headers.insert(HOST, v.clone());
            }
            headers.insert("x-forwarded-host", v);
        }
    }
    if client.forwarded {
        let node = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("\"[{v6}]\""),
        };
        let mut value = format!("for={node};proto={proto}");
        if let Some(host) = client.host {
            if host
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b';')
            {
                value.push_str(&format!(";host=\"{host}\""));
            }
        }
        let value = match headers.get("forwarded").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {value}"),
            None => value,
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert("forwarded", v);
        }
    }
}

/// The `Set-Cookie` value that makes a client stick to `server`.
pub fn sticky_cookie(name: &str, server: &str) -> String {
    format!("{name}={server}; Path=/; HttpOnly")
}

/// The value of cookie `name` in the request's `Cookie` fields.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_in(v, name))
}

/// The value of cookie `name` in one `Cookie` field value.
pub fn cookie_in<'v>(value: &'v str, name: &str) -> Option<&'v str> {
    value
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_named_fields_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic x"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn an_upgrade_keeps_connection_upgrade() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["sec-websocket-key"], "k");
        assert!(!wants_upgrade(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn forwarding_fields_are_set_and_appended() {
        let mut h = map(&[("x-forwarded-for", "10.0.0.1"), ("host", "shop.example")]);
        set_forwarding(
            &mut h,
            ClientSide {
                ip: "192.0.2.7".parse().unwrap(),
                tls: true,
                host: Some("shop.example"),
                forwarded: true,
            },
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-real-ip"], "192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(h["host"], "shop.example");
        assert_eq!(
            h["forwarded"],
            "for=192.0.2.7;proto=https;host=\"shop.example\""
        );
    }

    #[test]
    fn http2_authority_becomes_host_and_v6_is_quoted() {
        let mut h = HeaderMap::new();
        set_forwarding(
            &mut h,
            ClientSide {
                ip: "::ffff:127.0.0.1".parse().unwrap(),
                tls: false,
                host: Some("a.test:8080"),
                forwarded: false,
            },
        );
        assert_eq!(h["host"], "a.test:8080");
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
        assert!(!h.contains_key("forwarded"));
        let mut h = HeaderMap::new();
        set_forwarding(
            &mut h,
            ClientSide {
                ip: "2001:db8::1".parse().unwrap(),
                tls: false,
                host: None,
                forwarded: true,
            },
        );
        assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\";proto=http");
    }

    #[test]
    fn cookie_is_found_among_several() {
        let h = map(&[("cookie", "a=1; SERVERID=web2"), ("cookie", "PHPSESSID=x")]);
        assert_eq!(cookie(&h, "SERVERID"), Some("web2"));
        assert_eq!(cookie(&h, "PHPSESSID"), Some("x"));
        assert_eq!(cookie(&h, "none"), None);
    }
}
