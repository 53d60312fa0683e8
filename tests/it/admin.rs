//! The admin listener: Prometheus metrics reflect real traffic; /health.

use mysql_async::prelude::*;
use mysql_async::Conn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::Proxy;

pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn metric(body: &str, prefix: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_real_traffic_and_health_answers() {
    let proxy = Proxy::start().await;
    let (_, before) = get(proxy.admin(), "/metrics").await;
    let q0 = metric(&before, "tandem_mysql_commands_total{command=\"query\"}");
    let mut conn = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap();
    for _ in 0..5 {
        let _: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    }
    let _ = Conn::from_url(proxy.url("app", "bad", "appdb"))
        .await
        .unwrap_err();
    let (status, after) = get(proxy.admin(), "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metric(&after, "tandem_mysql_commands_total{command=\"query\"}") >= q0 + 5.0,
        "{after}"
    );
    assert!(
        metric(
            &after,
            "tandem_mysql_client_connections_rejected_total{reason=\"auth_failed\"}"
        ) >= 1.0
    );
    assert!(metric(&after, "tandem_mysql_client_bytes_sent_total") > 0.0);
    assert!(after.contains("tandem_mysql_query_duration_seconds"));
    let (status, body) = get(proxy.admin(), "/health").await;
    assert_eq!(status, 200);
    assert!(body.contains("ok"), "{body}");
    let (status, body) = get(proxy.admin(), "/status").await;
    assert_eq!(status, 200);
    assert!(body.contains("db1"), "{body}");
    let (status, _) = get(proxy.admin(), "/nope").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn graceful_shutdown_lets_a_running_statement_finish() {
    let proxy = Proxy::start().await;
    let mut conn = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap();
    let running = tokio::spawn(async move {
        let r: Option<i64> = conn.query_first("SELECT SLEEP(1) + 41").await.unwrap();
        (conn, r)
    });
    crate::common::wait_until_running("SELECT SLEEP(1) + 41").await;
    let addr = proxy.addr();
    let t0 = std::time::Instant::now();
    proxy.app.shutdown().await;
    let (_conn, r) = running.await.unwrap();
    assert_eq!(
        r,
        Some(41),
        "in-flight statement finished (SLEEP returns 0)"
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(3));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// One raw request to the admin listener: (status, body).
async fn request(addr: std::net::SocketAddr, head: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{head}Connection: close\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The admin API locked (issue 15): with `[admin] token` every request but
/// `/health` (and `/metrics` when public) needs `Authorization: Bearer`, and
/// a refused POST changes nothing; without a token a POST still needs a JSON
/// content type (a web page's no-cors fetch cannot set one); a Host that is
/// neither an IP address, `localhost` nor an allowed name gets 421 (DNS
/// rebinding).
#[tokio::test]
async fn admin_requests_need_the_token_a_json_post_and_a_known_host() {
    const TOKEN: &str = "0123456789abcdef-admin";
    let text = crate::common::config_text("").replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        &format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\nmetrics_public = true"),
    );
    let locked = Proxy::start_with(&text).await;
    let a = locked.admin();
    let host = "Host: 127.0.0.1\r\n";
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let drain = "POST /mysql/backends/db1/drain HTTP/1.1\r\n";

    let (code, body) = request(
        a,
        &format!("{drain}{host}Content-Type: application/json\r\n"),
    )
    .await;
    assert_eq!(code, 401, "{body}");
    let (code, _) = request(
        a,
        &format!("{drain}{host}Authorization: Bearer wrong-token-123456\r\n"),
    )
    .await;
    assert_eq!(code, 401);
    let (code, body) = request(a, &format!("GET /status HTTP/1.1\r\n{host}")).await;
    assert_eq!(code, 401, "{body}");
    let (code, body) = request(a, &format!("GET /status HTTP/1.1\r\n{host}{auth}")).await;
    assert_eq!(code, 200);
    assert!(body.contains("\"db1\""), "{body}");
    assert_eq!(
        request(a, &format!("GET /metrics HTTP/1.1\r\n{host}"))
            .await
            .0,
        200
    );
    assert_eq!(
        request(a, &format!("GET /health HTTP/1.1\r\n{host}"))
            .await
            .0,
        200
    );
    // The token is enough for a POST (409: the primary cannot be drained,
    // so the request was heard and judged).
    let (code, body) = request(a, &format!("{drain}{host}{auth}")).await;
    assert_eq!(code, 409, "{body}");
    let (code, _) = request(
        a,
        &format!("GET /status HTTP/1.1\r\nHost: evil.example:9090\r\n{auth}"),
    )
    .await;
    assert_eq!(code, 421);

    // No token: a POST needs JSON; the no-cors kind is refused and changes nothing.
    let open = Proxy::start_with(&crate::common::config_text("")).await;
    let a = open.admin();
    let (code, body) = request(a, &format!("{drain}{host}Content-Type: text/plain\r\n")).await;
    assert_eq!(code, 415, "{body}");
    let (code, _) = request(
        a,
        &format!("{drain}{host}Content-Type: application/json\r\n"),
    )
    .await;
    assert_eq!(code, 409, "heard and judged");
    let (code, body) = request(a, &format!("GET /status HTTP/1.1\r\n{host}")).await;
    assert_eq!(code, 200);
    assert!(!body.contains("draining"), "nothing changed: {body}");
}
