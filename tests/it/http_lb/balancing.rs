//! Distribution, stickiness, forwarding headers and safe retries.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::fixtures::{frontend, reqwest_like::Client, Lb, Nginx, Php};

#[tokio::test]
async fn distribution_follows_the_weights() {
    let nginx = Nginx::start(3);
    let lb = Lb::start(&frontend(
        "web",
        "",
        &[
            ("w1", &nginx.addr(1), 3),
            ("w2", &nginx.addr(2), 1),
            ("w3", &nginx.addr(3), 2),
        ],
    ))
    .await;
    let client = Client::new();
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..600 {
        let (status, body) = client.get(&lb.url("/whoami.txt")).await;
        assert_eq!(status, 200);
        *counts.entry(body).or_default() += 1;
    }
    // Smooth weighted round-robin is exact over whole cycles.
    assert_eq!(counts["w1"], 300, "{counts:?}");
    assert_eq!(counts["w2"], 100, "{counts:?}");
    assert_eq!(counts["w3"], 200, "{counts:?}");
}

#[tokio::test]
async fn backup_serves_only_when_every_normal_server_is_down_and_cookie_sticks() {
    let nginx = Nginx::start(3);
    let mut text = frontend(
        "web",
        "cookie = \"SERVERID\"\n[http.frontends.health_check]\npath = \"/servercheck.txt\"\ninterval_ms = 100\nrise = 1\nfall = 1",
        &[("w1", &nginx.addr(1), 1), ("w2", &nginx.addr(2), 1)],
    );
    text.push_str(&format!(
        "[[http.frontends.servers]]\nname = \"w3\"\naddress = \"{}\"\nbackup = true\n",
        nginx.addr(3)
    ));
    let lb = Lb::start(&text).await;
    let client = Client::new();
    let (status, headers, first) = client
        .request("GET", &lb.url("/whoami.txt"), &[], b"")
        .await;
    assert_eq!(status, 200);
    assert_ne!(
        first, "w3",
        "the backup does not serve while normal servers are up"
    );
    let cookie = headers["set-cookie"].to_str().unwrap().to_owned();
    assert_eq!(cookie, format!("SERVERID={first}; Path=/; HttpOnly"));
    let pair = cookie.split(';').next().unwrap().to_owned();
    for _ in 0..10 {
        let (_, h, body) = client
            .request("GET", &lb.url("/whoami.txt"), &[("cookie", &pair)], b"")
            .await;
        assert_eq!(body, first, "sticky");
        assert!(
            !h.contains_key("set-cookie"),
            "no new cookie for a sticky request"
        );
    }
    for k in [1, 2] {
        std::fs::remove_file(nginx.root(k).join("servercheck.txt")).unwrap();
    }
    lb.wait_state("w1", "down", std::time::Duration::from_secs(5))
        .await;
    lb.wait_state("w2", "down", std::time::Duration::from_secs(5))
        .await;
    for _ in 0..5 {
        let (status, _, body) = client
            .request("GET", &lb.url("/whoami.txt"), &[("cookie", &pair)], b"")
            .await;
        assert_eq!((status, body.as_str()), (200, "w3"));
    }
}

#[tokio::test]
async fn forwarding_headers_are_set_and_hop_by_hop_removed() {
    let php = Php::start("p1");
    let lb = Lb::start(&frontend(
        "web",
        "forwarded_header = true",
        &[("p1", &php.addr(), 1)],
    ))
    .await;
    let client = Client::new();
    let (status, _, body) = client
        .request(
            "GET",
            &lb.url("/headers.php"),
            &[
                ("host", "shop.example"),
                ("x-forwarded-for", "198.51.100.9"),
                ("connection", "keep-alive, x-private"),
                ("x-private", "secret"),
                ("x-app", "kept"),
            ],
            b"",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let h = &v["headers"];
    assert_eq!(h["host"], "shop.example", "Host preserved: {v}");
    assert_eq!(h["x-forwarded-for"], "198.51.100.9, 127.0.0.1");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "shop.example");
    assert_eq!(
        h["forwarded"],
        "for=127.0.0.1;proto=http;host=\"shop.example\""
    );
    assert_eq!(h["x-app"], "kept");
    assert!(h.get("x-private").is_none(), "named in Connection: {v}");
}

/// A server that reads one request head, counts it, and closes without
/// answering: the failure after a request has reached a server.
async fn black_hole() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        for _ in 0..100 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // Read a little of any body, then hang up.
                let _ =
                    tokio::time::timeout(std::time::Duration::from_millis(50), s.read(&mut buf))
                        .await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn retries_happen_only_when_safe() {
    let php = Php::start("p1");
    let dead = format!("127.0.0.1:{}", super::fixtures::free_port());
    let (hole, hole_seen) = black_hole().await;
    let extra = "eject_consecutive_errors = 0\nretries = 3";
    let lb = Lb::start(&format!(
        "{}{}",
        frontend(
            "refused",
            extra,
            &[("dead", &dead, 1), ("p1", &php.addr(), 1)]
        ),
        // Weighted so that every first pick of a request is the hole.
        frontend(
            "reached",
            extra,
            &[("hole", &hole, 100), ("p1", &php.addr(), 1)]
        ),
    ))
    .await;
    let client = Client::new();
    let refused = format!("http://{}/count.php", lb.addr(0));
    let reached = format!("http://{}/count.php", lb.addr(1));
    // Connection refused: nothing was sent, so even a POST moves on.
    for _ in 0..4 {
        let (status, _, body) = client.request("POST", &refused, &[], b"order=1").await;
        assert_eq!((status, body.as_str()), (200, "p1 7"));
    }
    assert_eq!(php.hits(), ["POST"; 4]);
    // A GET without a body is idempotent: after the hole hangs up, it goes on.
    let (status, _, body) = client.request("GET", &reached, &[], b"").await;
    assert_eq!((status, body.as_str()), (200, "p1 0"));
    assert_eq!(hole_seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A POST that reached the hole is not replayed elsewhere.
    let (status, _, body) = client.request("POST", &reached, &[], b"order=2").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.starts_with("502 bad gateway"), "{body}");
    assert_eq!(hole_seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        php.hits(),
        ["POST", "POST", "POST", "POST", "GET"],
        "a POST that reached a server is never replayed"
    );
    assert!(
        lb.status()["frontends"][1]["servers"][0]["requests_total"]
            .as_u64()
            .unwrap()
            >= 2
    );
}

#[tokio::test]
async fn source_keeps_a_client_on_one_server_and_leastconn_uses_all() {
    let nginx = Nginx::start(3);
    let servers = [
        ("w1", nginx.addr(1), 1),
        ("w2", nginx.addr(2), 1),
        ("w3", nginx.addr(3), 1),
    ];
    let servers: Vec<(&str, &str, u32)> = servers
        .iter()
        .map(|(n, a, w)| (*n, a.as_str(), *w))
        .collect();
    let lb = Lb::start(&format!(
        "{}{}{}",
        frontend("by-source", "balance = \"source\"", &servers),
        frontend("by-leastconn", "balance = \"leastconn\"", &servers),
        frontend("by-random2", "balance = \"random2\"", &servers),
    ))
    .await;
    let client = Client::new();
    let mut seen: Vec<std::collections::HashSet<String>> = vec![Default::default(); 3];
    for (i, s) in seen.iter_mut().enumerate() {
        for _ in 0..30 {
            let (status, body) = client
                .get(&format!("http://{}/whoami.txt", lb.addr(i)))
                .await;
            assert_eq!(status, 200);
            s.insert(body);
        }
    }
    assert_eq!(
        seen[0].len(),
        1,
        "one client address, one server: {:?}",
        seen[0]
    );
    assert_eq!(
        seen[1].len(),
        3,
        "idle servers tie and rotate: {:?}",
        seen[1]
    );
    assert!(seen[2].len() >= 2, "{:?}", seen[2]);
}

#[tokio::test]
async fn a_slow_server_gets_504_and_no_server_gets_503() {
    let (p1, p2) = (Php::start("p1"), Php::start("p2"));
    let lb = Lb::start(&format!(
        "{}{}",
        frontend(
            "slow",
            "backend_timeout_ms = 300\neject_consecutive_errors = 0",
            &[("p1", &p1.addr(), 1), ("p2", &p2.addr(), 1)],
        ),
        frontend("empty", "", &[("p1", &p1.addr(), 1)]),
    ))
    .await;
    let client = Client::new();
    let started = std::time::Instant::now();
    let (status, _, body) = client
        .request(
            "GET",
            &format!("http://{}/slow.php?ms=1500", lb.addr(0)),
            &[],
            b"",
        )
        .await;
    assert_eq!(status, 504, "{body}");
    assert!(body.starts_with("504 gateway timeout"), "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1400),
        "not retried elsewhere"
    );
    let admin = format!(
        "http://{}/http/frontends/empty/servers/p1/maintenance",
        lb.admin()
    );
    assert_eq!(
        client
            .request("POST", &admin, &[("content-type", "application/json")], b"")
            .await
            .0,
        200
    );
    let (status, _, body) = client
        .request(
            "GET",
            &format!("http://{}/slow.php?ms=1", lb.addr(1)),
            &[],
            b"",
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "503 service unavailable: no server is available\n");
}
