//! HTTP/2, TLS with SNI, WebSocket, malformed requests, slowloris.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fixtures::{curl, frontend, path_str, reqwest_like::Client, Lb, Nginx};

#[tokio::test]
async fn http2_prior_knowledge_with_curl() {
    let nginx = Nginx::start(1);
    let lb = Lb::start(&frontend("web", "", &[("w1", &nginx.addr(1), 1)])).await;
    let (code, out) = curl(&[
        "--http2-prior-knowledge",
        "-w",
        " %{http_version} %{http_code}",
        &lb.url("/whoami.txt"),
    ])
    .await;
    assert_eq!((code, out.as_str()), (0, "w1 2 200"));
    // A request body over HTTP/2 reaches the HTTP/1.1 server whole.
    let (code, out) = curl(&[
        "--http2-prior-knowledge",
        "-X",
        "PUT",
        "--data-binary",
        "over h2",
        "-w",
        "%{http_version} %{http_code}",
        &lb.url("/h2/put.txt"),
    ])
    .await;
    assert_eq!(code, 0);
    assert!(out == "2 201" || out == "2 204", "{out}");
    let stored = std::fs::read_to_string(nginx.root(1).join("h2/put.txt")).unwrap();
    assert_eq!(stored, "over h2");
    // HTTP/1.1 on the same port still works.
    let (code, out) = curl(&[
        "--http1.1",
        "-w",
        " %{http_version}",
        &lb.url("/whoami.txt"),
    ])
    .await;
    assert_eq!((code, out.as_str()), (0, "w1 1.1"));
}

#[tokio::test]
async fn tls_picks_the_certificate_by_sni_and_offers_h2() {
    let nginx = Nginx::start(1);
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        let ck = rcgen::generate_simple_self_signed(vec![format!("{name}.test")]).unwrap();
        std::fs::write(dir.path().join(format!("{name}.pem")), ck.cert.pem()).unwrap();
        std::fs::write(
            dir.path().join(format!("{name}.key")),
            ck.key_pair.serialize_pem(),
        )
        .unwrap();
    }
    let p = |f| path_str(dir.path(), f);
    let tls = format!(
        "tls = {{ certificates = [{{ cert_file = \"{}\", key_file = \"{}\" }}, {{ cert_file = \"{}\", key_file = \"{}\" }}] }}",
        p("a.pem"),
        p("a.key"),
        p("b.pem"),
        p("b.key")
    );
    let lb = Lb::start(&frontend("web", &tls, &[("w1", &nginx.addr(1), 1)])).await;
    let port = lb.addr(0).port();
    for (host, ca, ok) in [
        ("a.test", "a.pem", true),
        ("b.test", "b.pem", true),
        ("b.test", "a.pem", false),
    ] {
        let resolve = format!("{host}:{port}:127.0.0.1");
        let url = format!("https://{host}:{port}/whoami.txt");
        let (code, out) = curl(&[
            "--cacert",
            &p(ca),
            "--resolve",
            &resolve,
            "-w",
            " %{http_version}",
            &url,
        ])
        .await;
        if ok {
            assert_eq!(
                (code, out.as_str()),
                (0, "w1 2"),
                "{host} with {ca}: ALPN h2"
            );
        } else {
            assert_eq!(code, 60, "{host} must not verify with {ca}");
        }
    }
    let resolve = format!("a.test:{port}:127.0.0.1");
    let (code, out) = curl(&[
        "--http1.1",
        "--cacert",
        &p("a.pem"),
        "--resolve",
        &resolve,
        &format!("https://a.test:{port}/whoami.txt"),
    ])
    .await;
    assert_eq!((code, out.as_str()), (0, "w1"));
}

#[tokio::test]
async fn malformed_requests_get_400() {
    let nginx = Nginx::start(1);
    let lb = Lb::start(&frontend("web", "", &[("w1", &nginx.addr(1), 1)])).await;
    for raw in [
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(lb.addr(0)).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 400"), "{raw:?} -> {text:?}");
    }
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_without_hurting_others() {
    let nginx = Nginx::start(1);
    let lb = Lb::start(&frontend(
        "web",
        "client_header_timeout_ms = 1000",
        &[("w1", &nginx.addr(1), 1)],
    ))
    .await;
    let addr = lb.addr(0);
    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /whoami.txt HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // One header byte every 100 ms, for at most 10 s.
        for _ in 0..100 {
            if s.write_all(b"X").await.is_err() {
                return (started.elapsed(), String::new());
            }
            let mut b = [0u8; 64];
            // Any answer (a 408, a close, an error) ends the wait.
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut b)).await {
                let n = r.unwrap_or(0);
                return (
                    started.elapsed(),
                    String::from_utf8_lossy(&b[..n]).into_owned(),
                );
            }
        }
        panic!("the slow client was never cut off");
    });
    let client = Client::new();
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_millis(800) {
        assert_eq!(
            client.get(&lb.url("/whoami.txt")).await,
            (200, "w1".to_owned())
        );
        served += 1;
    }
    assert!(served > 5, "others are served meanwhile ({served})");
    let (cut_after, answer) = slow.await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "HAProxy's answer to a head not finished in time: {answer:?}"
    );
    assert!(
        cut_after >= Duration::from_millis(900) && cut_after < Duration::from_secs(3),
        "cut off after {cut_after:?}"
    );
}

/// A WebSocket echo server (RFC 6455): handshake, then unmasks each short
/// text frame and sends it back unmasked.
async fn websocket_echo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read_exact(&mut b).await.is_err() {
                return;
            }
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let key = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("sec-websocket-key: ")
                    .or_else(|| l.strip_prefix("Sec-WebSocket-Key: "))
            })
            .unwrap()
            .trim()
            .to_owned();
        use sha1::{Digest, Sha1};
        let digest = Sha1::digest(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes());
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            base64(&digest)
        );
        s.write_all(answer.as_bytes()).await.unwrap();
        for _ in 0..10 {
            let mut h = [0u8; 2];
            if s.read_exact(&mut h).await.is_err() {
                return;
            }
            let len = (h[1] & 0x7f) as usize;
            let mut mask = [0u8; 4];
            s.read_exact(&mut mask).await.unwrap();
            let mut payload = vec![0u8; len];
            s.read_exact(&mut payload).await.unwrap();
            for (i, p) in payload.iter_mut().enumerate() {
                *p ^= mask[i % 4];
            }
            let mut frame = vec![h[0], len as u8];
            frame.extend_from_slice(&payload);
            s.write_all(&frame).await.unwrap();
        }
    });
    addr
}

fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn websocket_echo_through_the_balancer() {
    let echo = websocket_echo().await;
    let lb = Lb::start(&frontend("ws", "", &[("echo", &echo, 1)])).await;
    let mut s = TcpStream::connect(lb.addr(0)).await.unwrap();
    s.write_all(
        b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    for msg in ["hello", "through tandem"] {
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | msg.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(msg.bytes().enumerate().map(|(i, c)| c ^ mask[i % 4]));
        s.write_all(&frame).await.unwrap();
        let mut back = vec![0u8; 2 + msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back[0], 0x81);
        assert_eq!(&back[2..], msg.as_bytes());
    }
}
