//! The admin listener: Prometheus metrics reflect real traffic; /health.

use mysql_async::prelude::*;
use mysql_async::Conn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::Proxy;

pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
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
