//! Active checks with rise/fall, maintenance by check file, drain through
//! the admin API, passive ejection.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::fixtures::{frontend, reqwest_like::Client, Lb, Nginx, Php};
use super::wire::WireServer;

const CHECK: &str = "[http.frontends.health_check]\npath = \"/servercheck.txt\"\ninterval_ms = 100\nrise = 2\nfall = 3";

async fn served_by(lb: &Lb, client: &Client, n: usize) -> HashSet<String> {
    let mut seen = HashSet::new();
    for _ in 0..n {
        let (status, body) = client.get(&lb.url("/whoami.txt")).await;
        assert_eq!(status, 200);
        seen.insert(body);
    }
    seen
}

#[tokio::test]
async fn a_server_whose_check_file_is_removed_leaves_and_returns_with_rise_and_fall() {
    let nginx = Nginx::start(2);
    let lb = Lb::start(&frontend(
        "web",
        CHECK,
        &[("w1", &nginx.addr(1), 1), ("w2", &nginx.addr(2), 1)],
    ))
    .await;
    let client = Client::new();
    assert_eq!(served_by(&lb, &client, 10).await.len(), 2);
    let check = nginx.root(2).join("servercheck.txt");
    std::fs::remove_file(&check).unwrap();
    let removed = Instant::now();
    lb.wait_state("w2", "down", Duration::from_secs(5)).await;
    // fall = 3 checks 100 ms apart: not before the third failure.
    assert!(
        removed.elapsed() >= Duration::from_millis(150),
        "{:?}",
        removed.elapsed()
    );
    let s = lb.status();
    assert_eq!(s["frontends"][0]["servers"][1]["last_check"], "status 404");
    assert_eq!(
        served_by(&lb, &client, 10).await,
        HashSet::from(["w1".to_owned()])
    );
    std::fs::write(&check, "OK\n").unwrap();
    lb.wait_state("w2", "up", Duration::from_secs(5)).await;
    assert_eq!(served_by(&lb, &client, 10).await.len(), 2);
    // Metrics tell the same story.
    let (_, metrics) = client.get(&format!("http://{}/metrics", lb.admin())).await;
    assert!(
        metrics.contains("tandem_http_server_state{frontend=\"web\",server=\"w2\",state=\"up\"} 1"),
        "{metrics}"
    );
    assert!(metrics
        .contains("tandem_http_checks_total{frontend=\"web\",server=\"w2\",result=\"fail\"}"));
    assert!(metrics
        .contains("tandem_http_responses_total{frontend=\"web\",server=\"w1\",class=\"2xx\"}"));
}

#[tokio::test]
async fn disable_on_404_drains_at_the_first_missing_check_file() {
    let nginx = Nginx::start(2);
    let lb = Lb::start(&frontend(
        "web",
        &format!("{CHECK}\ndisable_on_404 = true"),
        &[("w1", &nginx.addr(1), 1), ("w2", &nginx.addr(2), 1)],
    ))
    .await;
    std::fs::remove_file(nginx.root(1).join("servercheck.txt")).unwrap();
    lb.wait_state("w1", "drain", Duration::from_secs(2)).await;
    let client = Client::new();
    assert_eq!(
        served_by(&lb, &client, 10).await,
        HashSet::from(["w2".to_owned()])
    );
}

#[tokio::test]
async fn admin_drain_lets_requests_in_flight_finish() {
    let idle = Duration::from_secs(60);
    let (s1, s2) = (
        WireServer::start("s1", idle).await,
        WireServer::start("s2", idle).await,
    );
    let lb = Lb::start(&frontend(
        "web",
        "",
        &[("s1", &s1.addr, 1), ("s2", &s2.addr, 1)],
    ))
    .await;
    let url = lb.url("/hold");
    let slow = tokio::spawn(async move { Client::new().get(&url).await });
    // The server the held request is on.
    let (busy, other) = tokio::select! {
        _ = s1.held_request() => ("s1", "s2"),
        _ = s2.held_request() => ("s2", "s1"),
    };
    let client = Client::new();
    let (status, _, body) = client
        .request(
            "POST",
            &format!(
                "http://{}/http/frontends/web/servers/{busy}/drain",
                lb.admin()
            ),
            &[("content-type", "application/json")],
            b"",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"state\": \"drain\""), "{body}");
    for _ in 0..6 {
        let (status, body) = client.get(&lb.url("/x")).await;
        assert_eq!(
            (status, body),
            (200, format!("{other} GET")),
            "a drained server takes no new request"
        );
    }
    s1.release();
    s2.release();
    let (status, body) = slow.await.unwrap();
    assert_eq!(
        (status, body),
        (200, format!("{busy} GET")),
        "the request in flight finished"
    );
    let (status, _, _) = client
        .request(
            "POST",
            &format!(
                "http://{}/http/frontends/web/servers/nope/drain",
                lb.admin()
            ),
            &[("content-type", "application/json")],
            b"",
        )
        .await;
    assert_eq!(status, 404);
    let ready = format!(
        "http://{}/http/frontends/web/servers/{busy}/ready",
        lb.admin()
    );
    assert_eq!(
        client
            .request("POST", &ready, &[("content-type", "application/json")], b"")
            .await
            .0,
        200
    );
    let mut seen = HashSet::new();
    for _ in 0..4 {
        seen.insert(client.get(&lb.url("/x")).await.1);
    }
    assert_eq!(seen.len(), 2, "back in rotation");
}

#[tokio::test]
async fn consecutive_5xx_eject_a_server_for_the_cooldown() {
    let (p1, p2) = (Php::start("p1"), Php::start("p2"));
    std::fs::write(p2.dir.path().join("error.php"), "<?php echo 'fine';").unwrap();
    let lb = Lb::start(&frontend(
        "web",
        "eject_consecutive_errors = 2\neject_cooldown_ms = 60000",
        &[("p1", &p1.addr(), 1), ("p2", &p2.addr(), 1)],
    ))
    .await;
    let client = Client::new();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(client.get(&lb.url("/error.php")).await.0);
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 500).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(lb.status()["frontends"][0]["servers"][0]["ejected"], true);
}

#[tokio::test]
async fn tcp_checks_take_a_server_without_listener_out() {
    let nginx = Nginx::start(1);
    let dead = format!("127.0.0.1:{}", super::fixtures::free_port());
    let lb = Lb::start(&frontend(
        "web",
        "eject_consecutive_errors = 0\n[http.frontends.health_check]\ntype = \"tcp\"\ninterval_ms = 100\nrise = 1\nfall = 2",
        &[("w1", &nginx.addr(1), 1), ("dead", &dead, 1)],
    ))
    .await;
    lb.wait_state("dead", "down", Duration::from_secs(3)).await;
    assert_eq!(lb.state("w1"), "up");
    let client = Client::new();
    assert_eq!(
        served_by(&lb, &client, 6).await,
        HashSet::from(["w1".to_owned()])
    );
    let s = lb.status();
    assert!(
        s["frontends"][0]["servers"][1]["last_check"]
            .as_str()
            .unwrap()
            .starts_with("connect"),
        "{s}"
    );
}
