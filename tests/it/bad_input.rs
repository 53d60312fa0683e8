//! Bad input from clients: every case gets the error a server would send, the
//! offending connection closes (or survives where mysqld's would), and a
//! parallel healthy session is unaffected.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;
use tokio::io::AsyncWriteExt;

use tandem::mysql::protocol::CapabilityFlags as Cap;

use crate::common::{config_text, Proxy, Raw};

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
    let mut r = Raw::login(proxy.addr(), Raw::BASIC_CAPS).await;
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
    let mut r = Raw::login(proxy.addr(), Raw::BASIC_CAPS).await;
    let mut big = vec![0x03];
    big.extend(std::iter::repeat_n(b' ', 5000));
    r.send(0, &big).await;
    assert_eq!(r.expect_err().await.code, 1153);
    assert!(r.closed().await);
    // A length header that lies (announces 1000 bytes, sends 10): ERR 1159.
    let mut r = Raw::login(proxy.addr(), Raw::BASIC_CAPS).await;
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
/// The only backend is down: a prompt ERR 1429 (a server-range code) that
/// every client parses, in the connection phase. A client-range code there
/// (2003) made libmariadb print "Received malformed packet" (2027).
async fn backend_down_at_connect_is_a_prompt_error_every_client_reads() {
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
            assert_eq!(s.code, 1429);
            assert!(
                s.message.contains("tandem") && s.message.contains("'db1'"),
                "{}",
                s.message
            );
        }
        other => panic!("{other}"),
    }
    let port = proxy.addr().port().to_string();
    let clients: [(&str, Vec<String>); 3] = [
        (
            "mariadb",
            ["--no-defaults", "-h127.0.0.1", "-P", &port, "-uapp", "-papppass", "appdb", "-e", "SELECT 1"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "php",
            vec![
                "-r".into(),
                format!(
                    "mysqli_report(MYSQLI_REPORT_OFF); @mysqli_connect('127.0.0.1', 'app', 'apppass', 'appdb', {port}); \
                     echo 'ERROR ', mysqli_connect_errno(), ' ', mysqli_connect_error(), PHP_EOL;"
                ),
            ],
        ),
        (
            "python3",
            vec![
                "-c".into(),
                format!(
                    "import pymysql\ntry:\n    pymysql.connect(host='127.0.0.1', port={port}, user='app', password='apppass', database='appdb')\n\
                     except pymysql.err.MySQLError as e:\n    print('ERROR', e.args[0], e.args[1])"
                ),
            ],
        ),
    ];
    for (program, args) in clients {
        let (_, text) = crate::common::program_output(program, args).await;
        assert!(
            text.contains("ERROR 1429") && text.contains("tandem: ") && text.contains("'db1'"),
            "{program}: {text}"
        );
    }
}

#[tokio::test]
async fn idle_client_gets_4031_then_close() {
    let (proxy, mut good) = proxy_with("client_idle_timeout_ms = 300").await;
    let mut r = Raw::login(proxy.addr(), Raw::BASIC_CAPS).await;
    let e = r.expect_err().await;
    assert_eq!(e.code, 4031, "{e}");
    assert!(r.closed().await);
    // The healthy session was idle too, so it was closed the same way: a
    // fresh one works.
    drop(good.disconnect().await);
    good = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap();
    healthy(&mut good).await;
}

#[tokio::test]
async fn per_user_limit_answers_1203() {
    let text = config_text("").replace(
        "user = \"app\"\npassword = \"apppass\"",
        "user = \"app\"\npassword = \"apppass\"\nmax_connections = 1",
    );
    let proxy = Proxy::start_with(&text).await;
    // The raw client holds app's only slot.
    let mut first = Raw::login(proxy.addr(), Raw::BASIC_CAPS).await;
    let e = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1203),
        "{e}"
    );
    // Another user is not limited by app's count.
    let mut other = Conn::from_url(proxy.url("app2", "app2pass", "appdb"))
        .await
        .unwrap();
    healthy(&mut other).await;
    // The slot is free by the time the server closes the quitting session.
    first.send(0, &[0x01]).await; // COM_QUIT
    assert!(first.closed().await);
    let mut again = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .expect("slot freed when the session closed");
    healthy(&mut again).await;
}

#[tokio::test]
async fn handshake_response_with_a_wrong_sequence_id_is_refused() {
    let (proxy, mut good) = proxy_with("").await;
    let mut r = Raw::connect(proxy.addr()).await;
    r.read_packet().await.unwrap();
    let mut p = Raw::BASIC_CAPS.to_le_bytes().to_vec();
    p.extend_from_slice(&[0; 28]);
    p.extend_from_slice(b"app\0\0");
    r.send(7, &p).await;
    assert_eq!(r.expect_err().await.code, 1156);
    assert!(r.closed().await);
    healthy(&mut good).await;
}

#[tokio::test]
async fn change_user_moves_the_per_user_slot() {
    let text = config_text("").replace(
        "user = \"app\"\npassword = \"apppass\"",
        "user = \"app\"\npassword = \"apppass\"\nmax_connections = 1",
    );
    let proxy = Proxy::start_with(&text).await;
    let mut conn = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap();
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some("app2".into()))
        .with_pass(Some("app2pass".into()));
    conn.change_user(opts).await.unwrap();
    // app's only slot was given back by the change.
    let mut app = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .expect("app's slot is free after COM_CHANGE_USER");
    healthy(&mut app).await;
    healthy(&mut conn).await;
}

/// Reads one compressed frame and returns its sequence id and bytes.
async fn read_frame(r: &mut Raw) -> (u8, Vec<u8>) {
    use tandem::mysql::protocol::compress::{Decoder, HEADER_LEN};
    use tokio::io::AsyncReadExt;
    let mut h = [0u8; HEADER_LEN];
    tokio::time::timeout(Duration::from_secs(10), r.s.read_exact(&mut h))
        .await
        .expect("a frame within 10 s")
        .expect("a frame, not a closed socket");
    let len = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
    let mut frame = h.to_vec();
    frame.resize(HEADER_LEN + len, 0);
    r.s.read_exact(&mut frame[HEADER_LEN..]).await.unwrap();
    let mut out = Vec::new();
    let f = Decoder::default()
        .decode(&frame, &mut out)
        .unwrap()
        .unwrap();
    (f.seq, out)
}

/// With CLIENT_COMPRESS, tandem answers in frames that continue the
/// client's frame sequence; a frame that inflates past its declared length
/// (a zlib bomb) gets ERR 1157, as from mysqld, and the connection closes.
#[tokio::test]
async fn compressed_frames_are_answered_in_sequence_and_a_bomb_is_refused() {
    use tandem::mysql::protocol::compress::Encoder;
    let (proxy, mut good) = proxy_with("").await;
    let mut r = Raw::login(proxy.addr(), Raw::BASIC_CAPS | Cap::CLIENT_COMPRESS.bits()).await;
    // COM_PING in an uncompressed frame: the OK comes back in frame 1. Then
    // a query in a compressed frame whose sequence id is 5: frame 6.
    r.s.write_all(&[5, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x0e])
        .await
        .unwrap();
    let (seq, ok) = read_frame(&mut r).await;
    assert_eq!((seq, &ok[..5]), (1, &[7, 0, 0, 1, 0][..]), "OK in frame 1");
    let mut frame = Vec::new();
    let mut query = vec![0, 0, 0, 0, 0x03];
    query
        .extend_from_slice(b"SELECT 'tandem compressed', 'tandem compressed', 'tandem compressed'");
    query[0] = (query.len() - 4) as u8;
    Encoder::default().encode(&query, 5, &mut frame);
    assert_ne!(&frame[4..7], &[0, 0, 0], "a compressed frame");
    r.s.write_all(&frame).await.unwrap();
    let (seq, rows) = read_frame(&mut r).await;
    assert_eq!(seq, 6, "the answer continues the client's frame sequence");
    assert!(
        rows.windows(17).any(|w| w == b"tandem compressed"),
        "result: {rows:?}"
    );
    // 1 MiB of zeros declared as 100 bytes.
    let mut bomb = Vec::new();
    Encoder::default().encode(&vec![0u8; 1 << 20], 0, &mut bomb);
    bomb[4..7].copy_from_slice(&[100, 0, 0]);
    r.s.write_all(&bomb).await.unwrap();
    let (_, err) = read_frame(&mut r).await;
    let e = tandem::mysql::protocol::err::ServerError::parse(&err[4..])
        .unwrap_or_else(|| panic!("an ERR packet: {err:?}"));
    assert_eq!(e.code, 1157, "{}", e.message);
    assert!(r.closed().await);
    healthy(&mut good).await;
}

/// A header announcing a 16 MiB packet with nothing after it (issue 15):
/// the session waits for the payload within `net_read_timeout_ms` instead
/// of reading past its buffer, and clients that leave that way give their
/// place back (the count used to leak until every client got 1040).
#[tokio::test]
async fn a_bare_16_mib_header_never_leaks_the_client_count() {
    let (proxy, mut good) =
        proxy_with("max_client_connections = 4\nnet_read_timeout_ms = 500").await;
    for _ in 0..6 {
        let mut r = Raw::login(proxy.addr(), Raw::BASIC_CAPS).await;
        r.s.write_all(&[0xFF, 0xFF, 0xFF, 0x00]).await.unwrap();
        if rand_bool() {
            // Leave at once.
            drop(r);
        } else {
            // Or stay silent: ERR 1159 at net_read_timeout, then the close.
            let e = r.expect_err().await;
            assert_eq!(e.code, 1159, "{e}");
            assert!(r.closed().await);
        }
    }
    // Every place came back: new clients log in (the limit is 4, one is
    // taken by `good`).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut conns = Vec::new();
        for _ in 0..3 {
            match Conn::from_url(proxy.url("app", "apppass", "appdb")).await {
                Ok(c) => conns.push(c),
                Err(e) => {
                    assert!(Instant::now() < deadline, "places leaked: {e}");
                    break;
                }
            }
        }
        if conns.len() == 3 {
            break;
        }
        drop(conns);
        tokio::task::yield_now().await;
    }
    healthy(&mut good).await;
}

fn rand_bool() -> bool {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed) % 2 == 0
}
