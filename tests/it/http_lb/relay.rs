//! The HTTP/1 relay on the wire: chunked and close-delimited responses to
//! HTTP/1.1 and HTTP/1.0 clients, pipelined requests, HTTP/1.0 keep-alive,
//! and idle server sockets that the server closed.
//!
//! nginx and `php -S` rarely answer chunked, and close idle connections only
//! after their keep-alive timeout: [`WireServer`] does both on demand.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fixtures::{curl, frontend, Lb, Nginx};
use super::wire::WireServer;

#[tokio::test]
async fn chunked_and_close_delimited_answers_reach_http11_and_http10_clients() {
    let server = WireServer::start("s1", Duration::from_secs(30)).await;
    let lb = Lb::start(&frontend("web", "", &[("s1", &server.addr, 1)])).await;
    let chunked = lb.url("/chunked");
    let (code, body) = curl(&[&chunked]).await;
    assert_eq!((code, body.as_str()), (0, "hello world"));
    // HTTP/1.1 gets the chunks as sent (framing kept), HTTP/1.0 the data
    // alone and the end of the connection.
    let (_, head) = curl(&["-D", "-", "-o", "/dev/null", &chunked]).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let (code, body) = curl(&["--http1.0", &chunked]).await;
    assert_eq!((code, body.as_str()), (0, "hello world"));
    let (_, head) = curl(&["--http1.0", "-D", "-", "-o", "/dev/null", &chunked]).await;
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("transfer-encoding") && lower.contains("connection: close"),
        "{head}"
    );

    let close = lb.url("/close");
    let (code, out) = curl(&["-i", &close]).await;
    assert_eq!(code, 0);
    assert!(
        out.to_ascii_lowercase().contains("connection: close"),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\nuntil close"), "{out}");
    // Both kinds again on one keep-alive client connection: the chunked
    // answer leaves it usable.
    let (code, out) = curl(&["-s", &chunked, &chunked, &lb.url("/x")]).await;
    assert_eq!((code, out.as_str()), (0, "hello worldhello worlds1 GET"));
}

#[tokio::test]
async fn idle_server_sockets_the_server_closed_are_not_used() {
    let server = WireServer::start("s1", Duration::from_millis(200)).await;
    let lb = Lb::start(&frontend("web", "retries = 0", &[("s1", &server.addr, 1)])).await;
    let url = lb.url("/x");
    let mut closed = server.idle_closed.clone();
    let mut idle_closed = 0;
    // The server closes tandem's kept socket after each request; the next
    // request must not be lost on it.
    let port: u16 = server.addr.rsplit(':').next().unwrap().parse().unwrap();
    let mut server_closes_the_kept_socket = async || {
        idle_closed += 1;
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            closed.wait_for(|n| *n >= idle_closed),
        );
        assert!(
            matches!(waited.await, Ok(Ok(_))),
            "the server never closed an idle socket"
        );
        // And its FIN reached tandem's socket (the kernel's event: no
        // socket to the server is still ESTABLISHED on tandem's side).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while established_to(port) {
            assert!(std::time::Instant::now() < deadline, "FIN never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    for round in 0..3 {
        let (code, body) = curl(&[&url]).await;
        assert_eq!((code, body.as_str()), (0, "s1 GET"), "round {round}");
        server_closes_the_kept_socket().await;
        let (code, body) = curl(&["--data-binary", "abc", &url]).await;
        assert_eq!((code, body.as_str()), (0, "s1 POST"), "round {round}");
        server_closes_the_kept_socket().await;
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 6);
    assert_eq!(
        server.posts.load(Ordering::SeqCst),
        3,
        "no POST was sent twice"
    );
}

/// True while a loopback TCP socket connected to `port` is ESTABLISHED
/// (`/proc/net/tcp`: state 01; the remote address is the third column).
fn established_to(port: u16) -> bool {
    let remote = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2].ends_with(&remote) && f[3] == "01"
        })
}

/// Reads from `s` until `done(text so far)`, at most 10 s.
async fn read_until(s: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done(&String::from_utf8_lossy(&got)) {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no full answer: {}", String::from_utf8_lossy(&got)));
    String::from_utf8(got).unwrap()
}

#[tokio::test]
async fn pipelined_requests_and_http10_keep_alive_share_one_connection() {
    let nginx = Nginx::start(1);
    let lb = Lb::start(&frontend("web", "", &[("w1", &nginx.addr(1), 1)])).await;
    let mut s = TcpStream::connect(lb.addr(0)).await.unwrap();
    let one = "GET /whoami.txt HTTP/1.1\r\nHost: shop\r\n\r\n";
    s.write_all(one.repeat(3).as_bytes()).await.unwrap();
    let out = read_until(&mut s, |t| t.matches("\r\n\r\nw1").count() == 3).await;
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");

    let ten = "GET /whoami.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    for _ in 0..2 {
        s.write_all(ten.as_bytes()).await.unwrap();
        let out = read_until(&mut s, |t| t.ends_with("\r\n\r\nw1")).await;
        assert!(
            out.to_ascii_lowercase().contains("connection: keep-alive"),
            "{out}"
        );
    }
    // Without keep-alive an HTTP/1.0 exchange ends the connection.
    s.write_all(b"GET /whoami.txt HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut rest = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut rest))
        .await
        .expect("closed after the answer")
        .unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 200 OK") && rest.ends_with("\r\n\r\nw1"),
        "{rest}"
    );
}
