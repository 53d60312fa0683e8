//! Access log, `/status` over the admin listener, graceful shutdown.

use std::future::Future;
use std::time::{Duration, Instant};

use super::fixtures::{frontend, reqwest_like::Client, Lb, Nginx};
use super::wire::WireServer;

#[tokio::test]
async fn access_log_lines_and_status_over_admin() {
    let nginx = Nginx::start(1);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let lb = Lb::start(&frontend(
        "web",
        &format!(
            "access_log = {{ path = \"{}\", format = \"combined\" }}",
            log.display()
        ),
        &[("w1", &nginx.addr(1), 1)],
    ))
    .await;
    let client = Client::new();
    let (status, _, _) = client
        .request(
            "GET",
            &lb.url("/whoami.txt?x=1"),
            &[("user-agent", "probe/1.0"), ("referer", "http://r.test/")],
            b"",
        )
        .await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().next() {
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "no access log line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.ends_with("\"GET /whoami.txt?x=1 HTTP/1.1\" 200 2 \"http://r.test/\" \"probe/1.0\""),
        "{line}"
    );
    let (status, body) = client.get(&format!("http://{}/status", lb.admin())).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let fe = &v["http"]["frontends"][0];
    assert_eq!(fe["name"], "web");
    assert_eq!(fe["servers"][0]["name"], "w1");
    assert_eq!(fe["servers"][0]["state"], "up");
    assert_eq!(fe["servers"][0]["requests_total"], 1);
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let server = WireServer::start("s1", Duration::from_secs(60)).await;
    let lb = Lb::start(&frontend("web", "", &[("s1", &server.addr, 1)])).await;
    let url = lb.url("/hold");
    let addr = lb.addr(0);
    let slow = tokio::spawn(async move { Client::new().get(&url).await });
    server.held_request().await;
    // The first poll of `shutdown` cancels the token: tandem is stopping
    // while the request is held at the server.
    let mut stopping = Box::pin(lb.app.shutdown());
    std::future::poll_fn(|cx| {
        assert!(
            stopping.as_mut().poll(cx).is_pending(),
            "a request is in flight"
        );
        std::task::Poll::Ready(())
    })
    .await;
    server.release();
    let (status, body) = slow.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "s1 GET"));
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}
