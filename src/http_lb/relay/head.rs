//! Pure HTTP/1.x head handling for the relay: a client's request head is
//! checked and rewritten for the servers (the same rules as
//! [`super::super::headers`] applies to hyper's header maps: hop-by-hop
//! fields removed, forwarding fields set), and a server's response head is
//! framed and rewritten for the client. Anything the relay does not handle
//! itself comes back as [`Request::Hyper`]: the connection is then served
//! by hyper, which answers it (upgrades, `Expect`, chunked request bodies,
//! absolute-form targets, malformed heads...).

use std::net::IpAddr;

use bytes::{BufMut, BytesMut};
use hyper::Method;

use crate::http_lb::headers;

/// Header fields parsed per head (hyper's default limit too).
pub const MAX_HEADERS: usize = 100;

/// Fields tandem sets itself (the prior values of the list-valued ones are
/// kept in front of its own).
const FORWARDING: [&str; 4] = [
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// Names listed in `Connection` kept per head; more sends the connection to hyper.
const MAX_CONNECTION_TOKENS: usize = 8;

/// What the frontend adds to every request.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    pub ip: IpAddr,
    pub tls: bool,
    /// Also write RFC 7239 `Forwarded`.
    pub forwarded: bool,
    /// The stickiness cookie's name.
    pub cookie: Option<&'a str>,
    /// Capture the access log fields.
    pub log: bool,
}

/// The outcome of looking at the bytes a client sent.
#[derive(Debug)]
pub enum Request {
    /// The head is not complete yet.
    Partial,
    /// Serve this connection with hyper from here on.
    Hyper,
    Ready(RequestHead),
}

/// A request head the relay forwards itself.
#[derive(Debug)]
pub struct RequestHead {
    /// Bytes of the head in the client's buffer.
    pub len: usize,
    pub method: Method,
    /// `HTTP/1.0` (0) or `HTTP/1.1` (1).
    pub minor: u8,
    /// `Content-Length` (0 without one).
    pub body: u64,
    /// The client wants the connection kept after this exchange.
    pub keep_alive: bool,
    /// The client sent a `Host` (else each attempt names the server).
    pub has_host: bool,
    /// The server the stickiness cookie names.
    pub sticky: Option<String>,
    /// Bytes of the head for the servers written to `out`, without its
    /// final empty line.
    pub forward_len: usize,
    pub log: Option<LogFields>,
}

/// Access log fields of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFields {
    pub request_line: String,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes (the client connection closes after it).
    UntilClose,
}

/// A server's response head.
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub len: usize,
    pub status: u16,
    pub framing: Framing,
    /// The server will not take another request on this connection.
    pub server_close: bool,
}

/// A server's response head that cannot be relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad response head from server: {0}")]
pub struct BadResponse(pub &'static str);

/// Looks at the start of `buf` for a request head; a head the relay
/// forwards is written, rewritten for the servers, to `out` (cleared).
pub fn parse_request(buf: &[u8], fw: Forwarding<'_>, out: &mut BytesMut) -> Request {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Request::Partial,
        Err(_) => return Request::Hyper,
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Request::Hyper;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Request::Hyper;
    };
    if method == Method::CONNECT || !target.starts_with('/') {
        return Request::Hyper;
    }
    let headers = &*req.headers;
    let Some(conn) = connection_tokens(headers) else {
        return Request::Hyper;
    };
    let Some((body, host)) = framing_and_host(headers, &conn) else {
        return Request::Hyper;
    };
    // RFC 9112 section 3.2: hyper's path answers 400 to HTTP/1.1 without Host.
    if minor == 1 && host.is_none() {
        return Request::Hyper;
    }
    let keep_alive = if minor == 1 {
        !conn.has(b"close")
    } else {
        conn.has(b"keep-alive")
    };
    out.clear();
    out.reserve(len + 160);
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    write_fields(out, headers, &conn, host, fw);
    let log = fw.log.then(|| LogFields {
        request_line: format!("{method} {target} HTTP/1.{minor}"),
        referer: text_of(headers, "referer"),
        user_agent: text_of(headers, "user-agent"),
    });
    Request::Ready(RequestHead {
        len,
        method,
        minor,
        body: body.unwrap_or(0),
        keep_alive,
        has_host: host.is_some(),
        sticky: fw.cookie.and_then(|name| cookie(headers, name)),
        forward_len: out.len(),
        log,
    })
}

/// The request's `Content-Length` and `Host`; `None` when the relay leaves
/// the request to hyper (chunked or conflicting lengths, several hosts,
/// `Expect`, an upgrade).
fn framing_and_host<'h>(
    headers: &[httparse::Header<'h>],
    conn: &Tokens<'_>,
) -> Option<(Option<u64>, Option<&'h [u8]>)> {
    let mut body = None;
    let mut host = None;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            match (parse_length(h.value), body) {
                (Some(n), None) => body = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return None,
            }
        } else if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return None;
            }
            host = Some(h.value);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || (name.eq_ignore_ascii_case("upgrade") && conn.has(b"upgrade"))
        {
            return None;
        }
    }
    Some((body, host))
}

/// The client's fields for the servers: hop-by-hop ones and those named in
/// `Connection` dropped, then the forwarding fields (the prior
/// `X-Forwarded-For` and `Forwarded` lists kept in front of tandem's entry).
fn write_fields(
    out: &mut BytesMut,
    headers: &[httparse::Header<'_>],
    conn: &Tokens<'_>,
    host: Option<&[u8]>,
    fw: Forwarding<'_>,
) {
    let mut xff = Vec::new();
    let mut forwarded = Vec::new();
    for h in headers {
        let name = h.name;
        if hop_by_hop(name) || conn.has(name.as_bytes()) || name.eq_ignore_ascii_case("expect") {
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            join(&mut xff, h.value);
        } else if fw.forwarded && name.eq_ignore_ascii_case("forwarded") {
            join(&mut forwarded, h.value);
        } else if !FORWARDING.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            field(out, name.as_bytes(), h.value);
        }
    }
    let ip = fw.ip.to_canonical();
    let ip_text = ip.to_string();
    join(&mut xff, ip_text.as_bytes());
    field(out, b"X-Forwarded-For", &xff);
    field(out, b"X-Real-IP", ip_text.as_bytes());
    let proto = if fw.tls { "https" } else { "http" };
    field(out, b"X-Forwarded-Proto", proto.as_bytes());
    if let Some(host) = host {
        field(out, b"X-Forwarded-Host", host);
    }
    if fw.forwarded {
        let mut value = match ip {
            IpAddr::V4(v4) => format!("for={v4};proto={proto}"),
            IpAddr::V6(v6) => format!("for=\"[{v6}]\";proto={proto}"),
        };
        if let Some(host) = host.filter(|h| {
            h.iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b';')
        }) {
            value.push_str(&format!(";host=\"{}\"", String::from_utf8_lossy(host)));
        }
        join(&mut forwarded, value.as_bytes());
        field(out, b"Forwarded", &forwarded);
    }
}

/// The first field `name` as text.
fn text_of(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::to_owned)
}

/// Parses a server's response head at the start of `buf` into `out`
/// (rewritten for the client: hop-by-hop fields removed, `set_cookie`
/// added, `Transfer-Encoding` kept for a chunked body to an HTTP/1.1
/// client), without the `Connection` field and final empty line, which
/// the caller adds once it knows whether the connection stays open.
/// `Ok(None)`: not complete yet. An informational (1xx) head is returned
/// with nothing written, for the caller to skip.
pub fn parse_response(
    buf: &[u8],
    head_request: bool,
    client_minor: u8,
    set_cookie: Option<&str>,
    out: &mut BytesMut,
) -> Result<Option<ResponseHead>, BadResponse> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(BadResponse("unparsable head")),
    };
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Err(BadResponse("no status"));
    };
    if (100..200).contains(&status) {
        if status == 101 {
            return Err(BadResponse("101 to a request without upgrade"));
        }
        return Ok(Some(ResponseHead {
            len,
            status,
            framing: Framing::Empty,
            server_close: false,
        }));
    }
    let headers = &*resp.headers;
    let conn = connection_tokens(headers).ok_or(BadResponse("Connection lists too many fields"))?;
    let (framing, coding) = response_framing(headers, status, head_request)?;
    let server_close = if minor == 1 {
        conn.has(b"close")
    } else {
        !conn.has(b"keep-alive")
    };

    out.put_slice(b"HTTP/1.1 ");
    // httparse checked: three digits.
    out.put_slice(&[
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]);
    out.put_u8(b' ');
    out.put_slice(resp.reason.unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
    for h in headers {
        let name = h.name;
        if hop_by_hop(name) || conn.has(name.as_bytes()) {
            continue;
        }
        // A length beside a transfer coding is ignored (RFC 9112 6.3).
        if coding.is_some() && name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        field(out, name.as_bytes(), h.value);
    }
    if framing == Framing::Chunked && client_minor == 1 {
        if let Some(c) = coding {
            field(out, b"Transfer-Encoding", c);
        }
    }
    if let Some(cookie) = set_cookie {
        field(out, b"Set-Cookie", cookie.as_bytes());
    }
    Ok(Some(ResponseHead {
        len,
        status,
        framing,
        server_close,
    }))
}

/// How the body of a response is delimited (RFC 9112 section 6.3), and
/// its `Transfer-Encoding` if any.
fn response_framing<'h>(
    headers: &[httparse::Header<'h>],
    status: u16,
    head_request: bool,
) -> Result<(Framing, Option<&'h [u8]>), BadResponse> {
    let mut length = None;
    let mut coding = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            match (parse_length(h.value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err(BadResponse("bad Content-Length")),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            coding = Some(h.value);
        }
    }
    let chunked = coding.is_some_and(|c: &[u8]| {
        c.rsplit(|&b| b == b',')
            .next()
            .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"))
    });
    let framing = if head_request || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if coding.is_some() {
        Framing::UntilClose
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    Ok((framing, coding))
}

/// A whole answer tandem makes itself (plain text, never cached).
pub fn local_response(out: &mut BytesMut, status: hyper::StatusCode, text: &str, close: bool) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\ncontent-type: text/plain; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: ");
    out.put_slice(text.len().to_string().as_bytes());
    out.put_slice(if close {
        &b"\r\nconnection: close\r\n\r\n"[..]
    } else {
        &b"\r\n\r\n"[..]
    });
    out.put_slice(text.as_bytes());
}

/// The names listed in a head's `Connection` fields (at most
/// [`MAX_CONNECTION_TOKENS`]; `None` beyond).
fn connection_tokens<'h>(headers: &[httparse::Header<'h>]) -> Option<Tokens<'h>> {
    let mut t = Tokens {
        names: [&[]; MAX_CONNECTION_TOKENS],
        len: 0,
    };
    for h in headers {
        if !h.name.eq_ignore_ascii_case("connection") {
            continue;
        }
        for token in h.value.split(|&b| b == b',').map(trim) {
            if token.is_empty() {
                continue;
            }
            if t.len == MAX_CONNECTION_TOKENS {
                return None;
            }
            t.names[t.len] = token;
            t.len += 1;
        }
    }
    Some(t)
}

struct Tokens<'h> {
    names: [&'h [u8]; MAX_CONNECTION_TOKENS],
    len: usize,
}

impl Tokens<'_> {
    fn has(&self, name: &[u8]) -> bool {
        self.names[..self.len]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name))
    }
}

/// The value of cookie `name` in the `Cookie` fields.
fn cookie(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .find_map(|v| headers::cookie_in(v, name))
        .map(str::to_owned)
}

/// A field never forwarded: hop-by-hop ([`headers::HOP_BY_HOP`]), and
/// `Upgrade`, which the relay never passes (upgrades go to hyper).
fn hop_by_hop(name: &str) -> bool {
    name.eq_ignore_ascii_case("upgrade")
        || headers::HOP_BY_HOP
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
}

fn parse_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Appends `value` to a comma-separated list.
fn join(list: &mut Vec<u8>, value: &[u8]) {
    let value = trim(value);
    if value.is_empty() {
        return;
    }
    if !list.is_empty() {
        list.extend_from_slice(b", ");
    }
    list.extend_from_slice(value);
}

fn field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
