use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn fw() -> Forwarding<'static> {
    Forwarding {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
        tls: false,
        forwarded: false,
        cookie: None,
        log: false,
    }
}

/// The head and the bytes written for the servers.
fn ready(raw: &str, fw: Forwarding<'_>) -> (RequestHead, String) {
    let mut out = BytesMut::from(&b"left over"[..]);
    match parse_request(raw.as_bytes(), fw, &mut out) {
        Request::Ready(h) => {
            assert_eq!(h.forward_len, out.len());
            (h, text(&out))
        }
        other => panic!("{raw:?}: {other:?}"),
    }
}

fn hyper(raw: &[u8]) -> bool {
    matches!(
        parse_request(raw, fw(), &mut BytesMut::new()),
        Request::Hyper
    )
}

fn text(b: &BytesMut) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn a_request_head_is_rewritten_for_the_server() {
    let raw = "GET /a?b=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Secret\r\n\
               Keep-Alive: timeout=5\r\nX-Secret: 1\r\nTE: trailers\r\nUpgrade: h2c\r\n\
               X-Forwarded-For: 1.2.3.4\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\
               Cookie: a=1\r\n\r\nBODY";
    let (h, forward) = ready(raw, fw());
    assert_eq!(&raw.as_bytes()[h.len..], b"BODY");
    assert_eq!(
        (h.minor, h.body, h.keep_alive, h.has_host),
        (1, 0, true, true)
    );
    assert_eq!(
        forward,
        "GET /a?b=1 HTTP/1.1\r\nHost: shop.example\r\nCookie: a=1\r\n\
         X-Forwarded-For: 1.2.3.4, 10.0.0.7\r\nX-Real-IP: 10.0.0.7\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Host: shop.example\r\n"
    );
}

#[test]
fn forwarded_sticky_cookie_and_log_fields() {
    let f = Forwarding {
        tls: true,
        forwarded: true,
        cookie: Some("SERVERID"),
        log: true,
        ..fw()
    };
    let raw = "POST /form HTTP/1.0\r\nHost: h\r\nForwarded: for=1.1.1.1\r\nContent-Length: 3\r\n\
               Cookie: x=1; SERVERID=\"web2\"\r\nUser-Agent: ua/1\r\n\r\n";
    let (h, out) = ready(raw, f);
    assert_eq!((h.minor, h.body, h.keep_alive), (0, 3, false));
    assert_eq!(h.sticky.as_deref(), Some("web2"));
    assert!(out.starts_with("POST /form HTTP/1.1\r\n"), "{out}");
    assert!(out.contains("X-Forwarded-Proto: https\r\n"), "{out}");
    assert!(
        out.contains("Forwarded: for=1.1.1.1, for=10.0.0.7;proto=https;host=\"h\"\r\n"),
        "{out}"
    );
    assert_eq!(
        h.log,
        Some(LogFields {
            request_line: "POST /form HTTP/1.0".into(),
            referer: None,
            user_agent: Some("ua/1".into()),
        })
    );
}

#[test]
fn keep_alive_follows_the_version_and_connection() {
    let h = |raw: &str| ready(raw, fw()).0.keep_alive;
    assert!(!h("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    assert!(h("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!h("GET / HTTP/1.0\r\n\r\n"));
}

#[test]
fn what_the_relay_leaves_goes_to_hyper() {
    for raw in [
        "GET / HTTP/1.1\r\n\r\n",                    // no Host
        "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", // absolute form
        "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "G@T / HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        assert!(hyper(raw.as_bytes()), "{raw:?}");
    }
    assert!(matches!(
        parse_request(b"GET / HTTP/1.1\r\nHost: h\r\n", fw(), &mut BytesMut::new()),
        Request::Partial
    ));
}

fn response(raw: &str, head: bool, minor: u8, cookie: Option<&str>) -> (ResponseHead, String) {
    let mut out = BytesMut::new();
    let r = parse_response(raw.as_bytes(), head, minor, cookie, &mut out)
        .unwrap()
        .unwrap();
    (r, text(&out))
}

#[test]
fn response_framing() {
    let f = |raw: &str, head: bool| response(raw, head, 1, None).0.framing;
    assert_eq!(
        f("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", false),
        Framing::Length(12)
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true),
        Framing::Empty
    );
    assert_eq!(
        f("HTTP/1.1 304 Not Modified\r\n\r\n", false),
        Framing::Empty
    );
    assert_eq!(
        f(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
            false
        ),
        Framing::Chunked
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
        Framing::UntilClose
    );
    assert_eq!(f("HTTP/1.0 200 OK\r\n\r\n", false), Framing::UntilClose);
    let mut out = BytesMut::new();
    assert!(parse_response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        false,
        1,
        None,
        &mut out
    )
    .is_err());
}

#[test]
fn a_response_head_is_rewritten_for_the_client() {
    let raw = "HTTP/1.1 200 Fine\r\nConnection: close, X-Internal\r\nX-Internal: 1\r\n\
               Transfer-Encoding: chunked\r\nContent-Length: 99\r\nContent-Type: text/html\r\n\r\n";
    let (r, out) = response(raw, false, 1, Some("SERVERID=web1; Path=/; HttpOnly"));
    assert!(r.server_close);
    assert_eq!(r.len, raw.len());
    assert_eq!(
        out,
        "HTTP/1.1 200 Fine\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\
         Set-Cookie: SERVERID=web1; Path=/; HttpOnly\r\n"
    );
    // An HTTP/1.0 client gets the data without chunk framing.
    let (_, out) = response(raw, false, 0, None);
    assert_eq!(out, "HTTP/1.1 200 Fine\r\nContent-Type: text/html\r\n");
    // HTTP/1.0 servers close unless they say keep-alive.
    assert!(
        response(
            "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
            1,
            None
        )
        .0
        .server_close
    );
}

#[test]
fn informational_heads_are_skipped_and_101_refused() {
    let mut out = BytesMut::new();
    let r = parse_response(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n",
        false,
        1,
        None,
        &mut out,
    )
    .unwrap()
    .unwrap();
    assert_eq!((r.status, out.is_empty()), (103, true));
    assert!(parse_response(b"HTTP/1.1 101 Switching\r\n\r\n", false, 1, None, &mut out).is_err());
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\n", false, 1, None, &mut out),
        Ok(None)
    );
}

#[test]
fn local_answers_are_complete_responses() {
    let mut out = BytesMut::new();
    local_response(
        &mut out,
        hyper::StatusCode::SERVICE_UNAVAILABLE,
        "503 no\n",
        true,
    );
    assert_eq!(
        text(&out),
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         cache-control: no-store\r\ncontent-length: 7\r\nconnection: close\r\n\r\n503 no\n"
    );
}
