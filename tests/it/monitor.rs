//! The backend monitor against real faults: replication stopped, a replica
//! killed with SIGKILL, a second writable server, operators draining.
//!
//! These tests break replication, so they run on their own testbed
//! (`/tmp/tandem-mon`, ports 24306-24308), never the shared one, one at a
//! time (a lock), and every test restores the testbed when it ends, even by
//! a panic ([`Restore`]). Backends are named `mon1..mon3` so their metric
//! labels are not mixed with other tests' `db1..db3`.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Conn;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{repo_root, Proxy};

pub(crate) const DIR: &str = "/tmp/tandem-mon";
pub(crate) const BASE_PORT: u16 = 24306;
/// Every wait for the monitor to notice something; generous, never the
/// measure of success.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// One test at a time: they all break the same testbed.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts (once per test binary) the monitor tests' own testbed.
fn testbed() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(start_testbed);
}

pub(crate) fn start_testbed() {
    let status = Command::new(repo_root().join("scripts/testbed"))
        .args(["start", DIR, &BASE_PORT.to_string(), "2"])
        .status()
        .expect("run scripts/testbed");
    assert!(status.success(), "scripts/testbed start {DIR} failed");
}

/// Root SQL on testbed node `k` (0 = primary) through its unix socket.
pub(crate) fn root_sql(k: u16, sql: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            &format!("--socket={DIR}/node{k}/mysqld.sock"),
            "-uroot",
            "--connect-timeout=5",
            "-N",
            "-B",
            "-e",
            sql,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Puts the testbed back as it was (replication running, replicas
/// read-only, every server up and caught up) when a test ends, even by a
/// panic.
pub(crate) struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        for k in 1..=2 {
            let _ = root_sql(k, "SET GLOBAL read_only = 1");
            let _ = root_sql(k, "START SLAVE");
        }
        let _ = root_sql(0, "SET GLOBAL read_only = 0");
        // Restarts a killed server and waits until every replica caught up.
        start_testbed();
    }
}

/// The lock, the testbed, and the guard that restores it.
pub(crate) async fn exclusive() -> (tokio::sync::MutexGuard<'static, ()>, Restore) {
    let guard = LOCK.lock().await;
    testbed();
    (guard, Restore)
}

/// tandem in front of the three servers, checking every 100 ms, with the
/// heartbeat every 100 ms and a 500 ms lag limit.
fn config(role: &str, extra_monitor: &str) -> String {
    config_with_limit(role, 500, extra_monitor)
}

/// [`config`] with another lag limit: tests about other faults use none, so
/// a replica slowed by a busy machine does not change where reads go.
pub(crate) fn config_with_limit(role: &str, max_lag_ms: u64, extra_monitor: &str) -> String {
    let mut text = format!(
        r#"
[admin]
listen = "127.0.0.1:0"
[runtime]
shutdown_grace_ms = 2000
[mysql]
listen = "127.0.0.1:0"
[[mysql.users]]
user = "app"
password = "apppass"
[mysql.monitor]
user = "monitor"
password = "monitorpass"
interval_ms = 100
connect_timeout_ms = 500
query_timeout_ms = 500
heartbeat_interval_ms = 100
max_replication_lag_ms = {max_lag_ms}
{extra_monitor}
"#
    );
    for k in 0..3u16 {
        let role = match (role, k) {
            ("auto", _) => "auto",
            (_, 0) => "primary",
            _ => "replica",
        };
        text.push_str(&format!(
            "[[mysql.backends]]\nname = \"mon{}\"\naddress = \"127.0.0.1:{}\"\nrole = \"{role}\"\n",
            k + 1,
            BASE_PORT + k
        ));
    }
    text
}

async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

/// `/status` → the backend named `name`.
pub(crate) async fn backend(proxy: &Proxy, name: &str) -> Value {
    let (_, body) = http(proxy.admin(), "GET", "/status").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    v["mysql"]["backends"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no backend {name} in {v}"))
}

/// Polls `/status` (bounded by [`WAIT`]) until `name` satisfies `ok`;
/// returns it and how long that took.
pub(crate) async fn wait_backend(
    proxy: &Proxy,
    name: &str,
    ok: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let b = backend(proxy, name).await;
        if ok(&b) {
            return (b, start.elapsed());
        }
        assert!(
            start.elapsed() < WAIT,
            "{name} never reached the expected state: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of one metric line (labels written as rendered).
pub(crate) async fn metric(proxy: &Proxy, series: &str) -> f64 {
    let (_, body) = http(proxy.admin(), "GET", "/metrics").await;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn connect(proxy: &Proxy) -> Conn {
    Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap()
}

/// The ports that answered `n` plain reads through tandem.
async fn read_ports(proxy: &Proxy, n: usize) -> Vec<u16> {
    let mut conn = connect(proxy).await;
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        ports.push(conn.query_first("SELECT @@port").await.unwrap().unwrap());
    }
    ports
}

pub(crate) fn serving(b: &Value) -> bool {
    b["serving"] == true
}

#[tokio::test]
async fn a_replica_with_its_sql_thread_stopped_is_excluded_once_behind_the_limit() {
    let (_lock, _restore) = exclusive().await;
    let proxy = Proxy::start_with(&config("fixed", "")).await;
    wait_backend(&proxy, "mon2", |b| serving(b) && b["lag_ms"].is_u64()).await;

    root_sql(1, "STOP SLAVE SQL_THREAD").unwrap();
    let (b, took) = wait_backend(&proxy, "mon2", |b| !serving(b)).await;
    eprintln!(
        "SQL thread stopped: excluded after {took:?} at lag {}",
        b["lag_ms"]
    );
    assert_eq!(b["state"], "lagging", "{b}");
    assert_eq!(
        b["reason"], "replication lag over max_replication_lag_ms",
        "{b}"
    );
    assert!(
        b["lag_ms"].as_u64().unwrap() > 500,
        "heartbeat lag grew: {b}"
    );
    assert_eq!(
        b["check"]["last_good"]["replication"][0]["sql_running"],
        false
    );
    assert_eq!(
        b["check"]["last_good"]["replication"][0]["io_running"],
        "yes"
    );
    let ports = read_ports(&proxy, 40).await;
    assert!(
        !ports.contains(&(BASE_PORT + 1)),
        "no read on the late replica: {ports:?}"
    );
    assert!(ports.contains(&(BASE_PORT + 2)), "{ports:?}");

    root_sql(1, "START SLAVE").unwrap();
    let (b, took) = wait_backend(&proxy, "mon2", serving).await;
    eprintln!("SQL thread started: serving again after {took:?}");
    assert_eq!(b["state"], "up", "{b}");
    assert!(b["lag_ms"].as_u64().unwrap() <= 500, "{b}");
    let ports = read_ports(&proxy, 60).await;
    assert!(
        ports.contains(&(BASE_PORT + 1)),
        "reads come back: {ports:?}"
    );
}

#[tokio::test]
async fn stopped_replication_is_excluded_at_once() {
    let (_lock, _restore) = exclusive().await;
    let proxy = Proxy::start_with(&config("fixed", "")).await;
    wait_backend(&proxy, "mon3", serving).await;

    root_sql(2, "STOP SLAVE").unwrap();
    // Unknown lag is no lag to wait for: out at the next check or two,
    // well before any lag limit could be reached.
    let (b, took) = wait_backend(&proxy, "mon3", |b| !serving(b)).await;
    assert_eq!(b["state"], "lagging", "{b}");
    assert_eq!(b["lag_ms"], Value::Null, "{b}");
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .starts_with("replication IO thread stopped"),
        "{b}"
    );
    eprintln!("STOP SLAVE: excluded after {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let ports = read_ports(&proxy, 40).await;
    assert!(!ports.contains(&(BASE_PORT + 2)), "{ports:?}");

    root_sql(2, "START SLAVE").unwrap();
    wait_backend(&proxy, "mon3", serving).await;
}

#[tokio::test]
async fn a_killed_replica_is_marked_down_and_back_after_a_restart() {
    let (_lock, _restore) = exclusive().await;
    let proxy = Proxy::start_with(&config_with_limit("fixed", 0, "")).await;
    wait_backend(&proxy, "mon3", serving).await;
    let before = metric(
        &proxy,
        "tandem_mysql_monitor_check_errors_total{backend=\"mon3\"}",
    )
    .await;

    let pid = std::fs::read_to_string(format!("{DIR}/node2/mysqld.pid")).unwrap();
    let status = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    let (b, took) = wait_backend(&proxy, "mon3", |b| b["state"] == "down").await;
    eprintln!("kill -9: down after {took:?}");
    assert_eq!(b["serving"], false);
    assert_eq!(b["check"]["ok"], false, "{b}");
    assert!(b["reason"].as_str().unwrap().contains("connect"), "{b}");
    assert!(
        metric(
            &proxy,
            "tandem_mysql_monitor_check_errors_total{backend=\"mon3\"}"
        )
        .await
            >= before + 3.0,
        "fall = 3 failed checks were counted"
    );
    assert_eq!(
        metric(
            &proxy,
            "tandem_mysql_backend_state{backend=\"mon3\",state=\"down\"}"
        )
        .await,
        1.0
    );
    // Fresh sessions read without an error, from the other replica.
    let ports = read_ports(&proxy, 30).await;
    assert!(ports.iter().all(|p| *p == BASE_PORT + 1), "{ports:?}");

    start_testbed();
    let (b, took) = wait_backend(&proxy, "mon3", |b| serving(b) && b["state"] == "up").await;
    eprintln!("restarted: serving again {took:?} after the testbed script returned");
    assert_eq!(b["check"]["ok"], true, "{b}");
}

#[tokio::test]
async fn auto_roles_find_the_primary_and_a_second_writable_server_raises_the_alarm() {
    let (_lock, _restore) = exclusive().await;
    let proxy = Proxy::start_with(&config_with_limit("auto", 0, "")).await;
    let (b, _) = wait_backend(&proxy, "mon1", |b| b["role"] == "primary").await;
    assert_eq!(b["configured_role"], "auto");
    assert_eq!(b["takes_writes"], true);
    for r in ["mon2", "mon3"] {
        let (b, _) = wait_backend(&proxy, r, serving).await;
        assert_eq!(b["role"], "replica", "{b}");
    }
    let (_, route) = http(proxy.admin(), "GET", "/route?sql=INSERT+INTO+t+VALUES+(1)").await;
    assert!(route.contains("\"backend\": \"mon1\""), "{route}");

    // A replica made writable while it still replicates: alarm, and the
    // writes stay on the primary.
    root_sql(1, "SET GLOBAL read_only = 0").unwrap();
    let start = Instant::now();
    while metric(&proxy, "tandem_mysql_backend_writable{backend=\"mon2\"}").await != 1.0 {
        assert!(
            start.elapsed() < WAIT,
            "the second writable server was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, status) = http(proxy.admin(), "GET", "/status").await;
    let status: Value = serde_json::from_str(&status).unwrap();
    let summary = &status["mysql"]["backends"]["monitor"];
    assert_eq!(summary["writable_alarm"], true, "{summary}");
    assert_eq!(
        summary["writable_backends"],
        serde_json::json!(["mon1", "mon2"])
    );
    assert_eq!(status["mysql"]["backends"]["primary"], "mon1");

    let table = crate::common::unique("mon_alarm");
    let writes = "tandem_mysql_routed_total{backend=\"mon1\",reason=\"write\"}";
    let before = metric(&proxy, writes).await;
    let mut conn = connect(&proxy).await;
    conn.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    for i in 0..5 {
        conn.query_drop(format!("INSERT INTO {table} VALUES ({i})"))
            .await
            .unwrap();
    }
    assert!(metric(&proxy, writes).await >= before + 5.0);
    assert_eq!(
        metric(
            &proxy,
            "tandem_mysql_routed_total{backend=\"mon2\",reason=\"write\"}"
        )
        .await,
        0.0
    );
    let on_primary = root_sql(0, &format!("SELECT COUNT(*) FROM appdb.{table}")).unwrap();
    assert_eq!(on_primary, "5");
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn auto_roles_follow_a_switchover_made_by_hand() {
    let (_lock, _restore) = exclusive().await;
    // No heartbeat: tandem must not write on the promoted replica, or it
    // could not replicate from the old primary again afterwards.
    let proxy = Proxy::start_with(
        &config_with_limit("auto", 0, "").replace("heartbeat_interval_ms = 100", ""),
    )
    .await;
    wait_backend(&proxy, "mon1", |b| b["role"] == "primary").await;
    wait_backend(&proxy, "mon2", serving).await;

    // Switchover as an operator (or orchestrator) does it: old primary
    // read-only, the replica detached and writable.
    root_sql(0, "SET GLOBAL read_only = 1").unwrap();
    root_sql(1, "STOP SLAVE").unwrap();
    root_sql(1, "SET GLOBAL read_only = 0").unwrap();
    let (b, took) = wait_backend(&proxy, "mon2", |b| b["role"] == "primary").await;
    eprintln!("switchover followed after {took:?}");
    assert_eq!(b["takes_writes"], true, "{b}");
    let (old, _) = wait_backend(&proxy, "mon1", |b| b["role"] == "replica").await;
    assert_eq!(
        old["serving"], false,
        "the old primary replicates from nobody: {old}"
    );
    let (_, route) = http(proxy.admin(), "GET", "/route?sql=INSERT+INTO+t+VALUES+(1)").await;
    assert!(route.contains("\"backend\": \"mon2\""), "{route}");
    // A new session's transaction runs on the new primary.
    let mut conn = connect(&proxy).await;
    conn.query_drop("BEGIN").await.unwrap();
    let port: u16 = conn.query_first("SELECT @@port").await.unwrap().unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(port, BASE_PORT + 1);
    drop(conn);

    // And back.
    root_sql(1, "SET GLOBAL read_only = 1").unwrap();
    root_sql(1, "START SLAVE").unwrap();
    root_sql(0, "SET GLOBAL read_only = 0").unwrap();
    wait_backend(&proxy, "mon1", |b| b["role"] == "primary").await;
    let (b, _) = wait_backend(&proxy, "mon2", serving).await;
    assert_eq!(b["role"], "replica");
}

#[tokio::test]
async fn drain_and_maintenance_through_the_admin_api_move_reads_away() {
    let (_lock, _restore) = exclusive().await;
    let proxy = Proxy::start_with(&config_with_limit("fixed", 0, "")).await;
    wait_backend(&proxy, "mon2", serving).await;
    wait_backend(&proxy, "mon3", serving).await;
    let admin = proxy.admin();

    let (code, body) = http(admin, "POST", "/mysql/backends/mon2/drain").await;
    assert_eq!(code, 200, "{body}");
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (b["state"].as_str(), b["serving"].as_bool()),
        (Some("draining"), Some(false))
    );
    let reads2 = "tandem_mysql_routed_total{backend=\"mon2\",reason=\"read\"}";
    let before = metric(&proxy, reads2).await;
    let ports = read_ports(&proxy, 40).await;
    assert!(ports.iter().all(|p| *p == BASE_PORT + 2), "{ports:?}");
    assert_eq!(
        metric(&proxy, reads2).await,
        before,
        "no read routed to mon2"
    );

    // Both replicas out: the primary stands in (primary_reads = fallback).
    let (code, _) = http(admin, "POST", "/mysql/backends/mon3/maintenance").await;
    assert_eq!(code, 200);
    assert_eq!(backend(&proxy, "mon3").await["state"], "maintenance");
    let ports = read_ports(&proxy, 10).await;
    assert!(ports.iter().all(|p| *p == BASE_PORT), "{ports:?}");
    let (_, route) = http(admin, "GET", "/route?sql=SELECT+1").await;
    assert!(route.contains("no_replica_fallback"), "{route}");

    for (path, code) in [
        ("/mysql/backends/mon1/drain", 409),
        ("/mysql/backends/mon1/maintenance", 409),
        ("/mysql/backends/nope/drain", 404),
        ("/mysql/backends/mon2/reboot", 404),
    ] {
        assert_eq!(http(admin, "POST", path).await.0, code, "{path}");
    }
    assert_eq!(
        http(admin, "GET", "/mysql/backends/mon2/drain").await.0,
        405
    );

    assert_eq!(
        http(admin, "POST", "/mysql/backends/mon2/undrain").await.0,
        200
    );
    assert_eq!(
        http(admin, "POST", "/mysql/backends/mon3/ready").await.0,
        200
    );
    let (b, _) = wait_backend(&proxy, "mon2", serving).await;
    assert_eq!(b["state"], "up");
    wait_backend(&proxy, "mon3", serving).await;
    let ports = read_ports(&proxy, 60).await;
    assert!(
        ports.contains(&(BASE_PORT + 1)) && ports.contains(&(BASE_PORT + 2)),
        "{ports:?}"
    );
}

#[tokio::test]
async fn status_shows_roles_states_lag_gtids_and_checks() {
    let (_lock, _restore) = exclusive().await;
    let proxy = Proxy::start_with(&config("fixed", "min_serving_replicas = 1\n")).await;
    let (p, _) = wait_backend(&proxy, "mon1", |b| b["gtid_current"].is_string()).await;
    assert_eq!(p["role"], "primary");
    assert_eq!(p["state"], "up");
    assert_eq!(p["lag_ms"], 0, "lag never applies to the primary");
    assert_eq!(p["check"]["last_good"]["read_only"], false);
    assert!(p["check"]["last_good"]["gtid_binlog_pos"].is_string());
    assert!(p["check"]["at_unix_ms"].as_u64().unwrap() > 0);
    assert!(p.get("pool").is_some());
    let (r, _) = wait_backend(&proxy, "mon2", |b| b["check"]["lag_seconds"].is_u64()).await;
    assert_eq!(r["role"], "replica");
    assert_eq!(r["check"]["last_good"]["read_only"], true);
    assert!(r["check"]["last_good"]["gtid_slave_pos"].is_string(), "{r}");
    assert_eq!(
        r["check"]["last_good"]["replication"][0]["master"],
        "127.0.0.1:24306"
    );
    assert_eq!(r["reason"], Value::Null);
    assert!(r["check"]["last_good"]["heartbeat_us"].is_u64(), "{r}");

    // min_serving_replicas = 1: with both replicas behind, the least late
    // one keeps serving; a broken one never does.
    root_sql(1, "STOP SLAVE SQL_THREAD").unwrap();
    root_sql(2, "STOP SLAVE").unwrap();
    let (b, _) = wait_backend(&proxy, "mon2", |b| {
        b["state"] == "lagging" && b["lag_ms"].as_u64().is_some_and(|l| l > 500)
    })
    .await;
    assert_eq!(b["serving"], true, "kept by min_serving_replicas: {b}");
    assert_eq!(b["reason"], "lagging, kept serving by min_serving_replicas");
    let (b, _) = wait_backend(&proxy, "mon3", |b| b["state"] == "lagging").await;
    assert_eq!(b["serving"], false, "{b}");
}
