//! Read/write splitting against the real primary and two replicas. Which
//! server answered is observed with @@port.

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::common::{testbed, unique, Proxy};

/// tandem in front of the primary and both replicas, plus `extra` keys in
/// `[mysql.routing]`.
fn split_config(extra_routing: &str, replica_override: Option<&str>) -> String {
    let tb = testbed();
    let mut text = crate::common::config_text(&format!("[mysql.routing]\n{extra_routing}\n"));
    for (i, r) in tb.replicas.iter().enumerate() {
        let address = match (i, replica_override) {
            (0, Some(dead)) => dead.to_string(),
            _ => r.clone(),
        };
        text.push_str(&format!(
            "\n[[mysql.backends]]\nname = \"db{}\"\naddress = \"{address}\"\nrole = \"replica\"\n",
            i + 2
        ));
    }
    text
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

async fn port(conn: &mut Conn, sql: &str) -> u16 {
    conn.query_first::<u16, _>(sql).await.unwrap().unwrap()
}

struct Ports {
    primary: u16,
    replicas: Vec<u16>,
}

fn ports() -> Ports {
    let tb = testbed();
    Ports {
        primary: port_of(&tb.primary),
        replicas: tb.replicas.iter().map(|r| port_of(r)).collect(),
    }
}

async fn connect(proxy: &Proxy) -> Conn {
    Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap()
}

#[tokio::test]
async fn reads_spread_over_replicas_and_writes_go_to_the_primary() {
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let p = ports();
    let mut conn = connect(&proxy).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        let got = port(&mut conn, "SELECT @@port").await;
        assert!(p.replicas.contains(&got), "a read on {got}");
        seen.insert(got);
    }
    assert_eq!(seen.len(), 2, "both replicas serve reads");
    let table = format!("appdb.{}", unique("split"));
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, port INT)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("INSERT INTO {table} VALUES (1, @@port)"))
        .await
        .unwrap();
    let mut direct = Conn::from_url(crate::common::direct_url("app", "apppass", "appdb"))
        .await
        .unwrap();
    let written: Option<u16> = direct
        .query_first(format!("SELECT port FROM {table} WHERE id = 1"))
        .await
        .unwrap();
    assert_eq!(written, Some(p.primary), "the INSERT ran on the primary");
    assert_eq!(
        port(&mut conn, &format!("SELECT @@port FROM {table} FOR UPDATE")).await,
        p.primary
    );
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn transactions_and_autocommit_stay_on_the_primary() {
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let p = ports();
    let mut conn = connect(&proxy).await;
    conn.query_drop("BEGIN").await.unwrap();
    assert_eq!(port(&mut conn, "SELECT @@port").await, p.primary);
    conn.query_drop("COMMIT").await.unwrap();
    assert!(p.replicas.contains(&port(&mut conn, "SELECT @@port").await));
    conn.query_drop("SET autocommit = 0").await.unwrap();
    assert_eq!(port(&mut conn, "SELECT @@port").await, p.primary);
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        port(&mut conn, "SELECT @@port").await,
        p.primary,
        "autocommit=0 still"
    );
    conn.query_drop("SET autocommit = 1").await.unwrap();
    assert!(p.replicas.contains(&port(&mut conn, "SELECT @@port").await));
    // A read-only transaction runs on one replica from start to end.
    conn.query_drop("START TRANSACTION READ ONLY")
        .await
        .unwrap();
    let first = port(&mut conn, "SELECT @@port").await;
    assert!(p.replicas.contains(&first));
    for _ in 0..10 {
        assert_eq!(port(&mut conn, "SELECT @@port").await, first);
    }
    let e = conn
        .query_drop("INSERT INTO appdb.users (id) VALUES (1)")
        .await
        .unwrap_err();
    // The replica refuses: read-only transaction (1792) or read-only server (1290).
    assert!(
        e.to_string().contains("1792") || e.to_string().contains("1290"),
        "{e}"
    );
    conn.query_drop("COMMIT").await.unwrap();
}

#[tokio::test]
async fn session_state_follows_reads_to_replicas() {
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let p = ports();
    let mut conn = connect(&proxy).await;
    conn.query_drop("SET @x = 42, @y = 'héllo'").await.unwrap();
    conn.query_drop("SET NAMES latin1").await.unwrap();
    conn.query_drop("SET SESSION time_zone = '+03:00'")
        .await
        .unwrap();
    conn.query_drop("USE mysql").await.unwrap();
    for _ in 0..6 {
        let row: (i64, String, String, String, u16) = conn
            .query_first("SELECT @x, @@character_set_client, @@time_zone, DATABASE(), @@port")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&row.0, &42);
        assert_eq!(row.1, "latin1");
        assert_eq!(row.2, "+03:00");
        assert_eq!(row.3, "mysql");
        assert!(p.replicas.contains(&row.4), "state checked on a replica");
    }
    // A SET the primary refuses fails for the client, and nothing breaks.
    let e = conn
        .query_drop("SET @@session.no_such_variable = 1")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1193"), "{e}");
    let x: Option<i64> = conn.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(42));
    // COM_RESET_CONNECTION clears the state everywhere.
    conn.reset().await.unwrap();
    let x: Option<Option<i64>> = conn.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(None));
}

#[tokio::test]
async fn connection_bound_state_pins_the_session_to_the_primary() {
    let p = ports();
    let proxy = Proxy::start_with(&split_config("", None)).await;
    for setup in [
        "CREATE TEMPORARY TABLE tmp_pin (a INT)",
        "SELECT GET_LOCK('tandem_pin', 1)",
        "SELECT @v := 5",
        "SELECT 1; SELECT 2",
    ] {
        let mut conn = connect(&proxy).await;
        let mut r = conn.query_iter(setup).await.unwrap();
        while !r.is_empty() {
            let _: Vec<mysql_async::Row> = r.collect().await.unwrap();
        }
        drop(r);
        for _ in 0..5 {
            assert_eq!(
                port(&mut conn, "SELECT @@port").await,
                p.primary,
                "after {setup}"
            );
        }
    }
    // A temporary table is usable right after it is made.
    let mut conn = connect(&proxy).await;
    conn.query_drop("CREATE TEMPORARY TABLE tmp_rw (a INT)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO tmp_rw VALUES (1), (2)")
        .await
        .unwrap();
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM tmp_rw")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
}

#[tokio::test]
async fn diagnostics_and_session_functions_see_the_right_backend() {
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let mut conn = connect(&proxy).await;
    let table = format!("appdb.{}", unique("lid"));
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("INSERT INTO {table} (v) VALUES (1), (2), (3)"))
        .await
        .unwrap();
    let expected = conn.last_insert_id().unwrap();
    let lid: Option<u64> = conn.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(lid, Some(expected));
    // A warning produced by a replica read is visible to SHOW WARNINGS.
    let _: Option<Option<i64>> = conn.query_first("SELECT 1/0").await.unwrap();
    let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].1, 1365, "division by 0");
    // SQL_CALC_FOUND_ROWS then FOUND_ROWS().
    let _: Vec<i64> = conn
        .query("SELECT SQL_CALC_FOUND_ROWS id FROM appdb.users LIMIT 1")
        .await
        .unwrap();
    let found: Option<i64> = conn.query_first("SELECT FOUND_ROWS()").await.unwrap();
    let total: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM appdb.users")
        .await
        .unwrap();
    assert_eq!(found, total);
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn hints_choose_the_backend_but_cannot_write_to_a_replica() {
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let p = ports();
    let mut conn = connect(&proxy).await;
    assert_eq!(
        port(&mut conn, "/* tandem:primary */ SELECT @@port").await,
        p.primary
    );
    assert_eq!(
        port(&mut conn, "/* tandem:backend=db3 */ SELECT @@port").await,
        p.replicas[1]
    );
    let e = conn
        .query_drop("/* tandem:replica */ INSERT INTO appdb.users (id) VALUES (999999)")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("1290"),
        "the replica's read-only error: {e}"
    );
}

#[tokio::test]
async fn a_dead_replica_is_skipped_without_errors() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = Proxy::start_with(&split_config("", Some(&dead.to_string()))).await;
    let p = ports();
    let mut conn = connect(&proxy).await;
    for _ in 0..20 {
        let got = port(&mut conn, "SELECT @@port").await;
        assert_eq!(got, p.replicas[1], "only the live replica serves");
    }
}

#[tokio::test]
async fn split_can_be_turned_off() {
    let proxy = Proxy::start_with(&split_config("read_write_split = false", None)).await;
    let p = ports();
    let mut conn = connect(&proxy).await;
    for _ in 0..5 {
        assert_eq!(port(&mut conn, "SELECT @@port").await, p.primary);
    }
}

#[tokio::test]
async fn prepared_reads_run_on_replicas_with_their_parameter_types() {
    use crate::common::Raw;
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let p = ports();
    let mut r = Raw::login(proxy.addr(), Raw::BASIC_CAPS).await;
    let id = r.prepare("SELECT @@port + ?").await;
    let mut seen = std::collections::HashSet::new();
    for i in 0..12u64 {
        // Types only on the first execute, as mysqlnd does: a replica that
        // prepares the statement later still needs them (tandem resends).
        let v = r.execute_u64(id, Some((i, i == 0))).await;
        let port = (v - i) as u16;
        assert!(p.replicas.contains(&port), "execute {i} ran on {port}");
        seen.insert(port);
    }
    assert_eq!(seen.len(), 2, "both replicas prepared it lazily");
    // RESET and CLOSE reach every backend; then the id is unknown.
    let mut reset = vec![0x1A];
    reset.extend_from_slice(&id);
    r.send(0, &reset).await;
    assert_eq!(r.read_packet().await.unwrap().1[0], 0x00);
    let mut close = vec![0x19];
    close.extend_from_slice(&id);
    r.send(0, &close).await;
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id);
    exec.extend_from_slice(&[0, 1, 0, 0, 0]);
    r.send(0, &exec).await;
    assert_eq!(r.expect_err().await.code, 1243);
    // A prepared locking read goes to the primary.
    let id = r.prepare("SELECT @@port FOR UPDATE").await;
    assert_eq!(r.execute_u64(id, None).await as u16, p.primary);
}

/// Statements routed per backend for `reason`, from /metrics.
fn routed(metrics: &str, backend: &str, reason: &str) -> f64 {
    crate::admin::metric(
        metrics,
        &format!("tandem_mysql_routed_total{{backend=\"{backend}\",reason=\"{reason}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_with_and_without_transactions_and_the_read_split() {
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let addr = proxy.addr().to_string();
    crate::clients::run_client_env(
        "sysbench (transactions, split)",
        "bash",
        &["tests/clients/sysbench.sh"],
        addr.clone(),
        &[
            ("TANDEM_SYSBENCH_DB", "sbtest_split"),
            ("TANDEM_SYSBENCH_TIME", "5"),
        ],
    )
    .await;
    let (_, before) = crate::admin::get(proxy.admin(), "/metrics").await;
    let out = crate::clients::run_client_env(
        "sysbench --skip_trx=on (split)",
        "bash",
        &["tests/clients/sysbench.sh"],
        addr,
        &[
            ("TANDEM_SYSBENCH_DB", "sbtest_split"),
            ("TANDEM_SYSBENCH_TIME", "5"),
            ("TANDEM_SYSBENCH_EXTRA", "--skip_trx=on"),
            // Without transactions sysbench's DELETE+INSERT of one id races
            // to duplicate keys on MariaDB itself too; sysbench retries them.
            ("TANDEM_SYSBENCH_IGNORE", "1213,1062"),
        ],
    )
    .await;
    let (_, after) = crate::admin::get(proxy.admin(), "/metrics").await;
    let delta = |b: &str, r: &str| routed(&after, b, r) - routed(&before, b, r);
    let replica_reads = delta("db2", "read") + delta("db3", "read");
    let primary_reads = delta("db1", "read") + delta("db1", "no_replica_fallback");
    let primary_writes = delta("db1", "write");
    println!(
        "{out}\nread split with --skip_trx=on: db2 {} db3 {} primary {primary_reads} (writes {primary_writes})",
        delta("db2", "read"),
        delta("db3", "read")
    );
    assert!(
        delta("db2", "read") > 0.0 && delta("db3", "read") > 0.0,
        "both replicas read"
    );
    assert!(
        replica_reads > 10.0 * primary_reads.max(1.0),
        "replicas serve most SELECTs"
    );
    assert!(primary_writes > 0.0, "writes reached the primary");
}

#[tokio::test]
async fn route_explains_decisions() {
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let (status, body) =
        crate::admin::get(proxy.admin(), "/route?sql=SELECT+*+FROM+users+FOR+UPDATE").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"reason\": \"locking_read\""), "{body}");
    assert!(body.contains("\"backend\": \"db1\""), "{body}");
    let (_, body) = crate::admin::get(proxy.admin(), "/route?sql=SELECT%201").await;
    assert!(body.contains("\"reason\": \"read\""), "{body}");
    assert!(body.contains("db2") || body.contains("db3"), "{body}");
    let (status, _) = crate::admin::get(proxy.admin(), "/route").await;
    assert_eq!(status, 400);
}

/// Many sessions at once: bank transfers with the sum checked inside the
/// transaction, reads of the session's own uncommitted rows, temporary
/// tables, prepared reads and writes, user variables. Zero errors and zero
/// wrong answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_many_sessions_stay_consistent() {
    const SESSIONS: usize = 8;
    const ROUNDS: usize = 25;
    const ACCOUNTS: i64 = 20;
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let bank = format!("appdb.{}", unique("bank"));
    let mut setup = connect(&proxy).await;
    setup
        .query_drop(format!(
            "CREATE TABLE {bank} (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB"
        ))
        .await
        .unwrap();
    let values: Vec<String> = (0..ACCOUNTS).map(|i| format!("({i}, 1000)")).collect();
    setup
        .query_drop(format!("INSERT INTO {bank} VALUES {}", values.join(",")))
        .await
        .unwrap();
    let total = ACCOUNTS * 1000;
    // Reads outside transactions go to replicas: start once they have the table.
    for r in &testbed().replicas {
        let url = format!("mysql://app:apppass@{r}/appdb?prefer_socket=false");
        let mut replica = Conn::from_url(url).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let sql = format!("SELECT COUNT(*) FROM {bank}");
        // Not there yet (1146) or not all rows yet: poll, bounded.
        while replica.query_first::<i64, _>(&sql).await.ok().flatten() != Some(ACCOUNTS) {
            assert!(std::time::Instant::now() < deadline, "{r} never got {bank}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let url = proxy.url("app", "apppass", "appdb");
        let bank = bank.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::from_url(url).await.unwrap();
            let own = format!("appdb.{}", unique("own"));
            conn.query_drop(format!("CREATE TABLE {own} (k INT PRIMARY KEY, v INT)"))
                .await
                .unwrap();
            for r in 0..ROUNDS {
                let (a, b) = (
                    ((s * 7 + r) as i64) % ACCOUNTS,
                    ((s * 3 + r * 5 + 1) as i64) % ACCOUNTS,
                );
                // A transfer; the invariant is checked inside the transaction.
                conn.query_drop("START TRANSACTION").await.unwrap();
                let _: Vec<(i64, i64)> = conn
                    .query(format!(
                        "SELECT id, balance FROM {bank} WHERE id IN ({a},{b}) FOR UPDATE"
                    ))
                    .await
                    .unwrap();
                conn.query_drop(format!(
                    "UPDATE {bank} SET balance = balance - 7 WHERE id = {a}"
                ))
                .await
                .unwrap();
                conn.query_drop(format!(
                    "UPDATE {bank} SET balance = balance + 7 WHERE id = {b}"
                ))
                .await
                .unwrap();
                let sum: Option<i64> = conn
                    .query_first(format!("SELECT SUM(balance) FROM {bank}"))
                    .await
                    .unwrap();
                assert_eq!(
                    sum,
                    Some(total),
                    "session {s} round {r}: sum inside the transaction"
                );
                conn.query_drop("COMMIT").await.unwrap();
                // Reading one's own uncommitted write.
                conn.query_drop("BEGIN").await.unwrap();
                conn.exec_drop(
                    format!("INSERT INTO {own} VALUES (?, ?)"),
                    (r as i64, s as i64),
                )
                .await
                .unwrap();
                let v: Option<i64> = conn
                    .exec_first(format!("SELECT v FROM {own} WHERE k = ?"), (r as i64,))
                    .await
                    .unwrap();
                assert_eq!(v, Some(s as i64), "session {s} round {r}: own write");
                if r % 2 == 0 {
                    conn.query_drop("ROLLBACK").await.unwrap();
                } else {
                    conn.query_drop("COMMIT").await.unwrap();
                }
                // User variables follow reads to replicas.
                conn.query_drop(format!("SET @round = {r}")).await.unwrap();
                let got: Option<i64> = conn.query_first("SELECT @round").await.unwrap();
                assert_eq!(got, Some(r as i64), "session {s} round {r}: user variable");
                // Prepared reads (replicas) and writes (primary) interleaved.
                let n: Option<i64> = conn
                    .exec_first(format!("SELECT COUNT(*) FROM {bank} WHERE id >= ?"), (0,))
                    .await
                    .unwrap();
                assert_eq!(n, Some(ACCOUNTS));
            }
            // A temporary table pins the session; it must keep working.
            conn.query_drop("CREATE TEMPORARY TABLE t_tmp (a INT)")
                .await
                .unwrap();
            conn.query_drop("INSERT INTO t_tmp VALUES (1), (2), (3)")
                .await
                .unwrap();
            let n: Option<i64> = conn
                .query_first("SELECT COUNT(*) FROM t_tmp")
                .await
                .unwrap();
            assert_eq!(n, Some(3));
            conn.query_drop(format!("DROP TABLE {own}")).await.unwrap();
            conn.disconnect().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.expect("a session failed");
    }
    let sum: Option<i64> = setup
        .query_first(format!("SELECT SUM(balance) FROM {bank}"))
        .await
        .unwrap();
    assert_eq!(sum, Some(total));
    setup
        .query_drop(format!("DROP TABLE {bank}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn prepared_statements_beyond_the_cap_are_reprepared() {
    use crate::common::Raw;
    let proxy = Proxy::start_with(&split_config(
        "max_prepared_statements_per_backend = 2",
        None,
    ))
    .await;
    let mut r = Raw::login(proxy.addr(), Raw::BASIC_CAPS).await;
    let mut ids = Vec::new();
    for k in 0..5u64 {
        ids.push(r.prepare(&format!("SELECT ? + {k}")).await);
    }
    // Every statement, several times, in an order that keeps evicting.
    for round in 0..3u64 {
        for (k, id) in ids.iter().enumerate() {
            let v = r.execute_u64(*id, Some((round * 100, true))).await;
            assert_eq!(v, round * 100 + k as u64, "round {round} statement {k}");
        }
    }
}

#[tokio::test]
async fn lock_tables_and_xa_keep_to_the_primary() {
    let proxy = Proxy::start_with(&split_config("", None)).await;
    let p = ports();
    let mut conn = connect(&proxy).await;
    let table = format!("appdb.{}", unique("lock"));
    conn.query_drop(format!("CREATE TABLE {table} (a INT)"))
        .await
        .unwrap();
    conn.query_drop(format!("LOCK TABLES {table} WRITE"))
        .await
        .unwrap();
    conn.query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    let n: Option<i64> = conn
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap();
    assert_eq!(n, Some(1), "the locked table is read where it is locked");
    assert_eq!(
        port(&mut conn, "SELECT @@port").await,
        p.primary,
        "pinned by LOCK TABLES"
    );
    conn.query_drop("UNLOCK TABLES").await.unwrap();
    assert!(
        p.replicas.contains(&port(&mut conn, "SELECT @@port").await),
        "released by UNLOCK TABLES"
    );
    conn.query_drop("XA START 'tandem-xa'").await.unwrap();
    conn.query_drop(format!("INSERT INTO {table} VALUES (2)"))
        .await
        .unwrap();
    assert_eq!(
        port(&mut conn, "SELECT @@port").await,
        p.primary,
        "inside an XA transaction"
    );
    conn.query_drop("XA END 'tandem-xa'").await.unwrap();
    conn.query_drop("XA PREPARE 'tandem-xa'").await.unwrap();
    conn.query_drop("XA COMMIT 'tandem-xa'").await.unwrap();
    let mut direct = Conn::from_url(crate::common::direct_url("app", "apppass", "appdb"))
        .await
        .unwrap();
    let n: Option<i64> = direct
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap();
    assert_eq!(n, Some(2), "the XA transaction committed on the primary");
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
