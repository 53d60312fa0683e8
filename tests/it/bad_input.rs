//! Bad input from clients: every case gets the error a server would send, the
//! offending connection closes (or survives where mysqld's would), and a
//! parallel healthy session is unaffected.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tandem::mysql::protocol::auth;
use tandem::mysql::protocol::err::ServerError;
use tandem::mysql::protocol::handshake::{BackendGreeting, ClientHello};
use tandem::mysql::protocol::CapabilityFlags as Cap;

use crate::common::{config_text, Proxy};

/// A deliberately primitive client for sending malformed bytes.
struct Raw {
    s: TcpStream,
}

impl Raw {
    async fn connect(addr: std::net::SocketAddr) -> Raw {
        Raw {
            s: TcpStream::connect(addr).await.unwrap(),
        }
    }

    async fn read_packet(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), self.s.read_exact(&mut h))
            .await
            .expect("no answer within 10 s")
            .ok()?;
        let len = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
        let mut p = vec![0u8; len];
        self.s.read_exact(&mut p).await.ok()?;
        Some((h[3], p))
    }

    async fn send(&mut self, seq: u8, payload: &[u8]) {
        let n = payload.len();
        let mut b = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        b.extend_from_slice(payload);
        self.s.write_all(&b).await.unwrap();
    }

    /// Logs in as app/apppass with mysql_native_password.
    async fn login(addr: std::net::SocketAddr) -> Raw {
        let mut r = Raw::connect(addr).await;
        let (_, g) = r.read_packet().await.unwrap();
        let g = BackendGreeting::parse(&g).unwrap();
        let hello = ClientHello {
            capabilities: (Cap::CLIENT_PROTOCOL_41
                | Cap::CLIENT_SECURE_CONNECTION
                | Cap::CLIENT_PLUGIN_AUTH
                | Cap::CLIENT_LONG_PASSWORD
                | Cap::CLIENT_TRANSACTIONS)
                .bits(),
            max_packet: 1 << 24,
            collation: 45,
            user: "app".into(),
            auth_response: auth::native_token("apppass", &g.scramble[..20]),
            auth_plugin: Some("mysql_native_password".into()),
            ..Default::default()
        };
        r.send(1, &hello.encode()).await;
        let (_, ok) = r.read_packet().await.unwrap();
        assert_eq!(ok[0], 0x00, "login OK");
        r
    }

    /// Expects an ERR packet and returns it.
    async fn expect_err(&mut self) -> ServerError {
        let (_, p) = self
            .read_packet()
            .await
            .expect("an ERR packet, not a closed socket");
        ServerError::parse(&p).unwrap_or_else(|| panic!("expected ERR, got {p:?}"))
    }

    /// True when the server closed the connection.
    async fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.s.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

async fn healthy(conn: &mut Conn) {
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the parallel healthy session is unaffected");
}

async fn proxy_with(extra: &str) -> (Proxy, Conn) {
    let proxy = Proxy::start_with(&config_text(extra)).await;
    let conn = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap();
    (proxy, conn)
}

#[tokio::test]
async fn silent_client_is_cut_at_the_handshake_timeout() {
    let (proxy, mut good) = proxy_with("handshake_timeout_ms = 300").await;
    let mut r = Raw::connect(proxy.addr()).await;
    let (_, greeting) = r.read_packet().await.unwrap();
    assert_eq!(greeting[0], 10, "HandshakeV10");
    let t0 = Instant::now();
    assert!(r.closed().await);
    assert!(t0.elapsed() < Duration::from_secs(5));
    healthy(&mut good).await;
}

#[tokio::test]
async fn garbage_and_truncated_handshake_responses_get_bad_handshake() {
    let (proxy, mut good) = proxy_with("").await;
    // Pre-4.1 capabilities / garbage.
    let mut r = Raw::connect(proxy.addr()).await;
    r.read_packet().await.unwrap();
    r.send(1, b"\x00\x00GARBAGEGARBAGEGARBAGEGARBAGEGARBAGE")
        .await;
    assert_eq!(r.expect_err().await.code, 1043);
    assert!(r.closed().await);
    // PROTOCOL_41 but cut in the middle of the auth data.
    let mut r = Raw::connect(proxy.addr()).await;
    r.read_packet().await.unwrap();
    let mut p = (Cap::CLIENT_PROTOCOL_41 | Cap::CLIENT_SECURE_CONNECTION)
        .bits()
        .to_le_bytes()
        .to_vec();
    p.extend_from_slice(&[0; 28]);
    p.extend_from_slice(b"app\0\x14abc");
    r.send(1, &p).await;
    assert_eq!(r.expect_err().await.code, 1043);
    assert!(r.closed().await);
    healthy(&mut good).await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_1045_like_mariadb() {
    let (proxy, mut good) = proxy_with("").await;
    for (user, pass) in [("app", "nope"), ("nobody", "x")] {
        let direct = Conn::from_url(crate::common::direct_url(user, pass, "appdb"))
            .await
            .unwrap_err();
        let through = Conn::from_url(proxy.url(user, pass, "appdb"))
            .await
            .unwrap_err();
        for (name, e) in [("direct", &direct), ("tandem", &through)] {
            match e {
                mysql_async::Error::Server(s) => {
                    assert_eq!(s.code, 1045, "{name}");
                    assert_eq!(s.state, "28000", "{name}");
                    assert!(
                        s.message
                            .starts_with(&format!("Access denied for user '{user}'@'")),
                        "{name}: {}",
                        s.message
                    );
                    assert!(
                        s.message.ends_with("(using password: YES)"),
                        "{name}: {}",
                        s.message
                    );
                }
                other => panic!("{name}: {other}"),
            }
        }
    }
    healthy(&mut good).await;
}

#[tokio::test]
async fn command_phase_errors() {
    let (proxy, mut good) =
        proxy_with("max_allowed_packet = 4096\nnet_read_timeout_ms = 300").await;
    // Unknown command: ERR 1047 and the connection survives.
    let mut r = Raw::login(proxy.addr()).await;
    r.send(0, &[0x50, 1, 2, 3]).await;
    assert_eq!(r.expect_err().await.code, 1047);
    r.send(0, &[0x0E]).await; // COM_PING
    let (_, ok) = r.read_packet().await.unwrap();
    assert_eq!(ok[0], 0x00, "still usable after an unknown command");
    // Replication commands are not relayed.
    r.send(0, &[0x12, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0]).await;
    assert_eq!(r.expect_err().await.code, 1047);
    // Wrong sequence id: ERR 1156 and close.
    r.send(3, b"\x03SELECT 1").await;
    assert_eq!(r.expect_err().await.code, 1156);
    assert!(r.closed().await);
    // Packet over max_allowed_packet: ERR 1153 and close.
    let mut r = Raw::login(proxy.addr()).await;
    let mut big = vec![0x03];
    big.extend(std::iter::repeat_n(b' ', 5000));
    r.send(0, &big).await;
    assert_eq!(r.expect_err().await.code, 1153);
    assert!(r.closed().await);
    // A length header that lies (announces 1000 bytes, sends 10): ERR 1159.
    let mut r = Raw::login(proxy.addr()).await;
    r.s.write_all(&[
        0xE8, 0x03, 0, 0, 0x03, b'S', b'E', b'L', b'E', b'C', b'T', b' ', b'1', b' ',
    ])
    .await
    .unwrap();
    assert_eq!(r.expect_err().await.code, 1159);
    assert!(r.closed().await);
    healthy(&mut good).await;
}

#[tokio::test]
async fn connection_limit_answers_1040() {
    let (proxy, mut good) = proxy_with("max_client_connections = 2").await;
    let _second = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap();
    let e = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1040),
        "{e}"
    );
    healthy(&mut good).await;
}

#[tokio::test]
async fn backend_down_at_connect_is_a_prompt_2003() {
    // A port nobody listens on: bind, note, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = config_text("").replace(&crate::common::testbed().primary, &dead.to_string());
    let proxy = Proxy::start_with(&text).await;
    let t0 = Instant::now();
    let e = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5));
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 2003);
            assert!(
                s.message.contains("tandem") && s.message.contains("db1"),
                "{}",
                s.message
            );
        }
        other => panic!("{other}"),
    }
}
