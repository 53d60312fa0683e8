//! Read-your-writes and transparent retry under real faults, on the monitor
//! tests' own testbed (see `monitor.rs`: one test at a time, restored after).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::common::Proxy;
use crate::monitor::{
    config_with_limit, exclusive, metric, root_sql, wait_backend, BASE_PORT, DIR,
};

fn opts(proxy: &Proxy) -> Opts {
    Opts::from_url(&proxy.url("app", "apppass", "appdb")).unwrap()
}

async fn served(proxy: &Proxy, place: &str) -> f64 {
    metric(
        proxy,
        &format!("tandem_mysql_consistency_reads_total{{served_by=\"{place}\"}}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_consistency_never_reads_a_stale_row_while_a_replica_is_held_behind() {
    const ITERATIONS: u64 = 10_000;
    const WORKERS: u64 = 8;
    let (_lock, _restore) = exclusive().await;
    let mut text = config_with_limit("fixed", 0, "");
    text.push_str("\n[mysql.routing]\nconsistency = \"session\"\nconsistency_timeout_ms = 200\n");
    let proxy = Proxy::start_with(&text).await;
    for name in ["mon2", "mon3"] {
        wait_backend(&proxy, name, crate::monitor::serving).await;
    }
    root_sql(
        0,
        "CREATE TABLE IF NOT EXISTS appdb.ryw (id BIGINT PRIMARY KEY, v BIGINT) ENGINE=InnoDB; \
         TRUNCATE appdb.ryw",
    )
    .unwrap();
    let before = [
        served(&proxy, "replica").await,
        served(&proxy, "replica_waited").await,
        served(&proxy, "primary").await,
    ];

    // Replica mon2 is held behind: its SQL thread stops for a second, runs
    // for a second, again and again until the writers are done.
    let done = Arc::new(AtomicBool::new(false));
    let holder = {
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let mut rounds = 0;
            while !done.load(Ordering::Relaxed) && rounds < 300 {
                root_sql(1, "STOP SLAVE SQL_THREAD").unwrap();
                std::thread::sleep(Duration::from_millis(1000));
                root_sql(1, "START SLAVE SQL_THREAD").unwrap();
                std::thread::sleep(Duration::from_millis(1000));
                rounds += 1;
            }
            rounds
        })
    };

    let stale = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for w in 0..WORKERS {
        let opts = opts(&proxy);
        let stale = stale.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..ITERATIONS / WORKERS {
                let id = w * 1_000_000 + i;
                // A fresh session per iteration, like a PHP request.
                let mut c = Conn::new(opts.clone()).await.unwrap();
                c.exec_drop("INSERT INTO ryw VALUES (?, ?)", (id, id * 7))
                    .await
                    .unwrap();
                let v: Option<u64> = c
                    .exec_first("SELECT v FROM ryw WHERE id = ?", (id,))
                    .await
                    .unwrap();
                if v != Some(id * 7) {
                    stale.fetch_add(1, Ordering::Relaxed);
                }
                c.disconnect().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let rounds = holder.await.unwrap();
    let after = [
        served(&proxy, "replica").await,
        served(&proxy, "replica_waited").await,
        served(&proxy, "primary").await,
    ];
    let [replica, waited, primary] = [0, 1, 2].map(|i| after[i] - before[i]);
    let total = replica + waited + primary;
    println!(
        "session consistency: {ITERATIONS} write+read on fresh sessions in {took:?} with mon2 held \
         behind {rounds} times: {replica} reads on replicas as they were, {waited} on replicas \
         after a GTID wait, {primary} on the primary ({:.1}% on replicas)",
        100.0 * (replica + waited) / total.max(1.0)
    );
    assert_eq!(stale.load(Ordering::Relaxed), 0, "stale reads");
    assert_eq!(
        total as u64, ITERATIONS,
        "every read was a read after a write"
    );
    assert!(rounds >= 1, "the replica was never held behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_read_only_survives_kill_9_of_a_replica() {
    let (_lock, _restore) = exclusive().await;
    let proxy = Proxy::start_with(&config_with_limit("fixed", 0, "")).await;
    for name in ["mon2", "mon3"] {
        wait_backend(&proxy, name, crate::monitor::serving).await;
    }
    let primary = format!("--mysql-port={BASE_PORT}");
    let sb = |port: &str, extra: &[&str], cmd: &str| {
        Command::new("sysbench")
            .args([
                "oltp_read_only",
                "--mysql-host=127.0.0.1",
                port,
                "--mysql-user=app",
                "--mysql-password=apppass",
                "--mysql-db=sbtest",
                "--tables=2",
                "--table-size=2000",
            ])
            .args(extra)
            .arg(cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sysbench")
    };
    let _ = sb(&primary, &[], "cleanup").wait_with_output();
    let out = sb(&primary, &[], "prepare").wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Let the replicas have the tables before reads go there.
    root_sql(1, "SELECT MASTER_GTID_WAIT(@@global.gtid_binlog_pos, 30)").unwrap();
    let pos = root_sql(0, "SELECT @@global.gtid_binlog_pos").unwrap();
    for k in 1..=2 {
        root_sql(k, &format!("SELECT MASTER_GTID_WAIT('{pos}', 30)")).unwrap();
    }

    // An idle session that last read from mon3 must not notice its death.
    let mut idle = Conn::new(opts(&proxy)).await.unwrap();
    let mut saw_mon3 = false;
    for _ in 0..50 {
        let port: u16 = idle.query_first("SELECT @@port").await.unwrap().unwrap();
        if port == BASE_PORT + 2 {
            saw_mon3 = true;
            break;
        }
    }
    assert!(saw_mon3, "reads never reached mon3");

    let tandem = format!("--mysql-port={}", proxy.addr().port());
    let run = sb(
        &tandem,
        &[
            "--threads=8",
            "--time=8",
            "--skip_trx=on",
            "--report-interval=1",
        ],
        "run",
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = std::fs::read_to_string(format!("{DIR}/node2/mysqld.pid")).unwrap();
    let killed = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || run.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sysbench failed: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = report
        .lines()
        .find(|l| l.contains("ignored errors:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?");
    assert_eq!(errors, "0", "{report}");
    let queries = report
        .lines()
        .find(|l| l.trim_start().starts_with("read:"))
        .unwrap_or_default()
        .to_string();
    println!(
        "sysbench read-only, mon3 killed after 3 s of 8: errors 0, {}",
        queries.trim()
    );

    // The idle session reads on, from what is left.
    let port: u16 = idle.query_first("SELECT @@port").await.unwrap().unwrap();
    assert_ne!(port, BASE_PORT + 2);
    idle.disconnect().await.unwrap();
}

/// Reads never depend on the primary: with the primary's mariadbd killed,
/// the replicas cut off from it keep serving, and new sessions of every
/// client log in (their database checked on a replica), `USE` and
/// COM_INIT_DB (the CLI's `use`) work, and reads answer. A write gets an ERR every client
/// parses and the session goes on. `Restore` restarts the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_reads_go_on_while_the_primary_is_down() {
    let (_lock, _restore) = exclusive().await;
    let failover = |pause: u64| format!("\n[mysql.failover]\nwrite_pause_ms = {pause}\n");
    let proxy = Proxy::start_with(&(config_with_limit("fixed", 0, "") + &failover(300))).await;
    // A second tandem that holds writes long enough for a restart.
    let patient = Proxy::start_with(&(config_with_limit("fixed", 0, "") + &failover(30_000))).await;
    for name in ["mon2", "mon3"] {
        wait_backend(&proxy, name, crate::monitor::serving).await;
    }
    root_sql(
        0,
        "CREATE TABLE IF NOT EXISTS appdb.held_writes (id INT PRIMARY KEY); TRUNCATE appdb.held_writes",
    )
    .unwrap();
    // A transaction open on the primary when it dies.
    let mut tx = Conn::new(opts(&proxy)).await.unwrap();
    tx.query_drop("BEGIN").await.unwrap();
    let port: Option<u16> = tx.query_first("SELECT @@port").await.unwrap();
    assert_eq!(port, Some(BASE_PORT), "the transaction runs on the primary");

    let pid = std::fs::read_to_string(format!("{DIR}/node0/mysqld.pid")).unwrap();
    let killed = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (_, took) = wait_backend(&proxy, "mon1", |b| b["state"] == "down").await;
    eprintln!("primary down after {took:?}");
    for name in ["mon2", "mon3"] {
        let (b, _) = wait_backend(&proxy, name, |b| {
            crate::monitor::serving(b)
                && b["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("primary is down"))
        })
        .await;
        assert_eq!(b["state"], "up", "{b}");
    }

    // The transaction's next statement: an ERR naming the lost primary; the
    // session goes on, its next read on a replica.
    let e = tx
        .query_drop("SELECT 1")
        .await
        .expect_err("the transaction died with the primary");
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 1429, "{}", s.message);
            assert!(s.message.contains("'mon1'"), "{}", s.message);
        }
        other => panic!("a server error, not {other}"),
    }
    let port: Option<u16> = tx.query_first("SELECT @@port").await.unwrap();
    assert_ne!(
        port,
        Some(BASE_PORT),
        "after the lost transaction: a replica"
    );
    tx.disconnect().await.unwrap();

    // mysql_async: login with a database, reads, USE, a write.
    let mut c = Conn::new(opts(&proxy))
        .await
        .expect("login with the primary down");
    for _ in 0..10 {
        let port: Option<u16> = c.query_first("SELECT @@port").await.unwrap();
        let port = port.unwrap();
        assert!(
            port == BASE_PORT + 1 || port == BASE_PORT + 2,
            "a replica answered: {port}"
        );
    }
    c.query_drop("USE appdb").await.expect("USE on a replica");
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM users").await.unwrap();
    assert_eq!(n, Some(20));
    let started = Instant::now();
    let e = c
        .query_drop("INSERT INTO users (name) VALUES ('x')")
        .await
        .expect_err("no primary for a write");
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 1290, "{}", s.message);
            assert!(
                s.message.contains("no primary for this write"),
                "{}",
                s.message
            );
        }
        other => panic!("a server error, not {other}"),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "held for write_pause_ms first"
    );
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the session goes on after the failed write");
    c.disconnect().await.unwrap();

    // The other clients: a login and a read each.
    let port = proxy.addr().port();
    let php = format!(
        "mysqli_report(MYSQLI_REPORT_OFF); $m = mysqli_connect('127.0.0.1', 'app', 'apppass', 'appdb', {port}); \
         if (!$m) {{ echo 'connect ', mysqli_connect_errno(), ' ', mysqli_connect_error(); exit(1); }} \
         $r = mysqli_query($m, 'SELECT COUNT(*) FROM users'); echo mysqli_fetch_row($r)[0];"
    );
    let py = format!(
        "import pymysql\nc = pymysql.connect(host='127.0.0.1', port={port}, user='app', password='apppass', database='appdb')\n\
         cur = c.cursor(); cur.execute('SELECT COUNT(*) FROM users'); print(cur.fetchone()[0])"
    );
    let port_s = port.to_string();
    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "mariadb",
            [
                "--no-defaults",
                "-h127.0.0.1",
                "-P",
                &port_s,
                "-uapp",
                "-papppass",
                "-N",
                "-B",
                "appdb",
                "-e",
                "SELECT COUNT(*) FROM users",
            ]
            .map(String::from)
            .to_vec(),
        ),
        ("php", vec!["-r".into(), php]),
        ("python3", vec!["-c".into(), py]),
    ];
    for (program, args) in runs {
        let (ok, text) = crate::common::program_output(program, args).await;
        assert!(ok && text.trim() == "20", "{program}: {text}");
    }

    // A write held while the primary restarts runs once it is back.
    wait_backend(&patient, "mon1", |b| b["state"] == "down").await;
    let mut w = Conn::new(opts(&patient)).await.unwrap();
    let held = tokio::spawn(async move {
        let started = Instant::now();
        let r = w.query_drop("INSERT INTO held_writes VALUES (1)").await;
        (w, r, started.elapsed())
    });
    assert!(!held.is_finished(), "the write waits for a primary");
    tokio::task::spawn_blocking(crate::monitor::start_testbed)
        .await
        .unwrap();
    let (w, r, took) = held.await.unwrap();
    r.unwrap_or_else(|e| panic!("the held write, after {took:?}: {e}"));
    eprintln!("write held {took:?} while the primary restarted");
    drop(w);
    assert_eq!(
        root_sql(0, "SELECT COUNT(*) FROM appdb.held_writes").unwrap(),
        "1"
    );
}
