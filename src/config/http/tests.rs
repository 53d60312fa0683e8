//! `[http]` parsing, defaults and errors.

use crate::config::Config;

use super::*;

const BRIEF: &str = r#"
[[http.frontends]]
name = "web"
listen = "0.0.0.0:80"
balance = "roundrobin"
[http.frontends.health_check]
path = "/servercheck.txt"
interval_ms = 2000
rise = 2
fall = 3
[[http.frontends.servers]]
name = "web1"
address = "192.168.0.11:80"
weight = 1
"#;

fn parse(text: &str) -> Result<Config, crate::config::ConfigError> {
    Config::from_toml_str(text, "<t>")
}

#[test]
fn brief_example_parses_with_haproxy_defaults() {
    let c = parse(BRIEF).unwrap();
    assert!(!c.runs_nothing());
    let f = &c.http.unwrap().frontends[0];
    assert_eq!(f.name, "web");
    assert_eq!(f.balance, HttpBalance::Roundrobin);
    assert_eq!(f.servers[0].weight, 1);
    assert!(!f.servers[0].backup);
    let h = f.health_check.as_ref().unwrap();
    assert_eq!((h.interval_ms, h.rise, h.fall), (2000, 2, 3));
    assert_eq!(h.kind, CheckKind::Http);
    assert_eq!(h.expect_status, None);
    assert_eq!(f.retries, 3);
    assert_eq!(f.client_header_timeout_ms, 10_000);
    assert_eq!(f.max_body_bytes, None);
    assert!(f.http2);
}

#[test]
fn the_commented_reference_parses_once_uncommented() {
    let example = Config::example();
    let start = example
        .find("# [[http.frontends]]")
        .expect("an [http] reference");
    // Every commented key of the [http] tables, except the two naming files.
    let mut in_http = false;
    let text: String = example[start..]
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| {
            if l.starts_with('[') {
                in_http = l.starts_with("[http") || l.starts_with("[[http");
                return in_http;
            }
            in_http && l.contains(" = ")
        })
        .filter(|l| !l.starts_with("tls =") && !l.starts_with("access_log ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let f = &c.http.unwrap().frontends[0];
    assert_eq!(f.servers[0].name, "web1");
    assert_eq!(f.health_check.as_ref().unwrap().path, "/servercheck.txt");
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            BRIEF.replace("weight = 1", "weight = 0"),
            "http.frontends[0].servers[0].weight",
        ),
        (
            BRIEF.replace("roundrobin", "fastest"),
            "http.frontends[0].balance",
        ),
        (
            BRIEF.replace("rise = 2", "rise = 0"),
            "http.frontends[0].health_check.rise",
        ),
        (
            BRIEF.replace("interval_ms = 2000", "interval_ms = 2000\nbogus = 1"),
            "http.frontends[0].health_check.bogus",
        ),
        (
            BRIEF.replace("192.168.0.11:80", "nohostport"),
            "http.frontends[0].servers[0].address",
        ),
        (
            BRIEF.replace("path = \"/servercheck.txt\"", "expect_md5 = \"xyz\""),
            "http.frontends[0].health_check.expect_md5",
        ),
        (
            BRIEF.replace("weight = 1", "weight = 1\nbackup = true"),
            "http.frontends[0].servers",
        ),
        (
            BRIEF.replace("0.0.0.0:80", "localhost"),
            "http.frontends[0].listen",
        ),
        ("[http]\n".to_owned(), "http.frontends"),
    ];
    for (text, field) in cases {
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field(), Some(field), "{e}");
    }
}

#[test]
fn every_setting_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("x.pem");
    std::fs::write(&pem, "x").unwrap();
    let c = parse(&format!(
        r#"
[[http.frontends]]
name = "w"
listen = "127.0.0.1:8080"
balance = "source"
cookie = "SERVERID"
http2 = false
connect_timeout_ms = 1
client_header_timeout_ms = 2
client_idle_timeout_ms = 3
backend_timeout_ms = 4
max_body_bytes = 5
retries = 0
forwarded_header = true
eject_consecutive_errors = 0
eject_cooldown_ms = 6
slow_start_ms = 7
pool_max_idle_per_server = 8
pool_idle_timeout_ms = 9
max_connections = 10
access_log = {{ path = "-", format = "tandem" }}
tls = {{ certificates = [{{ cert_file = "{p}", key_file = "{p}" }}] }}
[http.frontends.health_check]
type = "tcp"
host = "example.org"
interval_ms = 100
timeout_ms = 50
expect_status = 204
expect_body = "OK"
expect_md5 = "D41D8CD98F00B204E9800998ECF8427E"
disable_on_404 = true
[[http.frontends.servers]]
name = "a"
address = "127.0.0.1:1"
weight = 256
[[http.frontends.servers]]
name = "b"
address = "web2.lan:80"
backup = true
"#,
        p = pem.display()
    ))
    .unwrap();
    let f = &c.http.unwrap().frontends[0];
    assert_eq!(f.balance, HttpBalance::Source);
    assert_eq!(f.cookie.as_deref(), Some("SERVERID"));
    assert!(!f.http2 && f.forwarded_header);
    assert_eq!(
        (
            f.connect_timeout_ms,
            f.client_header_timeout_ms,
            f.client_idle_timeout_ms,
            f.backend_timeout_ms
        ),
        (1, 2, 3, 4)
    );
    assert_eq!((f.max_body_bytes, f.retries), (Some(5), 0));
    assert_eq!((f.eject_consecutive_errors, f.eject_cooldown_ms), (0, 6));
    assert_eq!(f.slow_start_ms, 7);
    assert_eq!((f.pool_max_idle_per_server, f.pool_idle_timeout_ms), (8, 9));
    assert_eq!(f.max_connections, 10);
    let log = f.access_log.as_ref().unwrap();
    assert_eq!(
        (log.path.to_str(), log.format),
        (Some("-"), AccessLogFormat::Tandem)
    );
    assert_eq!(f.tls.as_ref().unwrap().certificates.len(), 1);
    let h = f.health_check.as_ref().unwrap();
    assert_eq!(h.kind, CheckKind::Tcp);
    assert_eq!((h.interval_ms, h.timeout_ms), (100, 50));
    assert_eq!(h.expect_status, Some(204));
    assert_eq!(
        h.expect_md5.as_deref(),
        Some("d41d8cd98f00b204e9800998ecf8427e")
    );
    assert!(h.disable_on_404);
    assert_eq!(h.host.as_deref(), Some("example.org"));
    assert!(f.servers[1].backup);
    assert_eq!(f.servers[0].weight, 256);
}
