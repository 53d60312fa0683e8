//! Connection pooling and multiplexing against the real testbed: many
//! client sessions on few backend connections, and no session state leaking
//! from one session to the next through a shared connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::common::{config_text, root_sql, testbed, Proxy};

/// A user of its own, so its connections can be counted on the server
/// while other tests run.
fn dedicated_user(name: &str) {
    root_sql(
        0,
        &format!(
            "CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY 'poolpass'; \
             GRANT ALL ON appdb.* TO '{name}'@'%'"
        ),
    );
}

fn proxy_config(user: &str, pool: &str) -> String {
    let mut text = config_text(&format!(
        "max_client_connections = 8000\n[mysql.pool]\n{pool}\n"
    ));
    text.push_str(&format!(
        "\n[[mysql.users]]\nuser = \"{user}\"\npassword = \"poolpass\"\n"
    ));
    text
}

fn url(proxy: &Proxy, user: &str, db: &str) -> Opts {
    let addr = proxy.addr();
    Opts::from_url(&format!(
        "mysql://{user}:poolpass@{}:{}/{db}?prefer_socket=false",
        addr.ip(),
        addr.port()
    ))
    .unwrap()
}

/// Backend connections of `user` on the primary, as the server counts them.
async fn server_connections(user: &str) -> usize {
    let tb = testbed();
    let mut c = Conn::new(
        Opts::from_url(&format!(
            "mysql://monitor:monitorpass@{}/?prefer_socket=false",
            tb.primary
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    let n: usize = c
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{user}'"
        ))
        .await
        .unwrap()
        .unwrap();
    let _ = c.disconnect().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_sessions_share_sixty_four_connections_without_leaking_state() {
    let sessions: usize = std::env::var("TANDEM_TEST_POOL_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    const CAP: usize = 64;
    let user = "pool5k";
    dedicated_user(user);
    raise_fd_limit();
    let proxy = Proxy::start_with(&proxy_config(
        user,
        &format!("max_backend_connections = {CAP}\nacquire_timeout_ms = 60000"),
    ))
    .await;
    let opts = url(&proxy, user, "appdb");

    // Watch the server side while the clients run.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut max = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
            while !done.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                max = max.max(server_connections(user).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            max
        })
    };

    // Every session connects first, so all of them are open at once (one
    // that fails to connect counts as arrived, and fails the test).
    let arrived = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(tokio::sync::watch::channel(false).0);
    let mut tasks = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let opts = opts.clone();
        let arrived = arrived.clone();
        let all_in = all_in.clone();
        tasks.push(tokio::spawn(async move {
            let mut rx = all_in.subscribe();
            let conn = Conn::new(opts).await;
            if arrived.fetch_add(1, Ordering::SeqCst) + 1 == sessions {
                all_in.send_replace(true);
            }
            let mut c = conn.map_err(|e| format!("connect {i}: {e}"))?;
            let all = tokio::time::timeout(Duration::from_secs(120), rx.wait_for(|all| *all));
            let _ = all.await;
            session_work(&mut c, i).await?;
            c.disconnect().await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            errors.push(e);
        }
    }
    done.store(true, Ordering::Relaxed);
    let max_seen = watcher.await.unwrap();
    assert!(
        errors.is_empty(),
        "{} sessions failed, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    assert!(
        max_seen > 0 && max_seen <= CAP,
        "the server saw {max_seen} connections"
    );
    let (_, body) = crate::admin::get(proxy.admin(), "/status").await;
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let db1 = status["mysql"]["backends"]["backends"]
        .as_array()
        .and_then(|list| list.iter().find(|b| b["name"] == "db1"))
        .cloned()
        .unwrap();
    let open = db1["pool"]["open"].as_u64().unwrap();
    assert!(open as usize <= CAP, "{status}");
    println!(
        "{sessions} sessions: at most {max_seen} backend connections seen by the server (cap {CAP})"
    );
}

/// Distinct session and user variables per session, checked after other
/// sessions have used the same backend connections in between.
async fn session_work(c: &mut Conn, i: usize) -> Result<(), String> {
    let len = 1024 + i;
    c.query_drop(format!("SET SESSION group_concat_max_len = {len}"))
        .await
        .map_err(|e| format!("{i}: {e}"))?;
    c.query_drop(format!("SET @mine = {i}, @tag = 'session-{i}'"))
        .await
        .map_err(|e| format!("{i}: {e}"))?;
    for round in 0..3 {
        tokio::task::yield_now().await;
        let row: Option<(u64, u64, String, Option<u64>)> = c
            .query_first("SELECT @@group_concat_max_len, @mine, @tag, @never_set")
            .await
            .map_err(|e| format!("{i}: {e}"))?;
        let (l, mine, tag, never) = row.ok_or("no row")?;
        if l != len as u64 || mine != i as u64 || tag != format!("session-{i}") || never.is_some() {
            return Err(format!(
                "session {i} round {round} saw another session's state: {l} {mine} {tag} {never:?}"
            ));
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_shared_connection_never_carries_state_to_the_next_session() {
    let user = "poolleak";
    dedicated_user(user);
    root_sql(
        0,
        "CREATE TABLE IF NOT EXISTS appdb.pool_leak (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
    );
    // One backend connection: every session gets the same one.
    let proxy = Proxy::start_with(&proxy_config(user, "max_backend_connections = 1")).await;
    let opts = url(&proxy, user, "appdb");

    let mut a = Conn::new(opts.clone()).await.unwrap();
    let first_thread = backend_thread(&mut a).await;
    a.query_drop("SET @secret = 42, SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    a.query_drop("CREATE TEMPORARY TABLE tmp_leak (x INT)")
        .await
        .unwrap();
    a.query_drop("DELETE FROM pool_leak").await.unwrap();
    a.query_drop("START TRANSACTION").await.unwrap();
    a.query_drop("INSERT INTO pool_leak VALUES (1, 1)")
        .await
        .unwrap();
    // Gone mid-transaction, holding a temporary table.
    drop(a);

    let mut b = Conn::new(opts.clone()).await.unwrap();
    assert_eq!(
        backend_thread(&mut b).await,
        first_thread,
        "the same backend connection"
    );
    let row: (Option<u64>, String) = b
        .query_first("SELECT @secret, @@sql_mode")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.0, None, "a user variable leaked");
    assert!(!row.1.contains("ANSI_QUOTES"), "sql_mode leaked: {}", row.1);
    let tmp = b.query_drop("SELECT * FROM tmp_leak").await.unwrap_err();
    assert!(
        tmp.to_string().contains("1146"),
        "temporary table leaked: {tmp}"
    );
    let n: u64 = b
        .query_first("SELECT COUNT(*) FROM pool_leak")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "the abandoned transaction was committed");
    b.disconnect().await.unwrap();

    // A session without a default database never inherits one.
    let mut c = Conn::new(url(&proxy, user, "")).await.unwrap();
    let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap().unwrap();
    assert_eq!(db, None);
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn connection_bound_state_keeps_the_connection_until_released() {
    let user = "poolbound";
    dedicated_user(user);
    let proxy = Proxy::start_with(&proxy_config(user, "max_backend_connections = 4")).await;
    let opts = url(&proxy, user, "appdb");
    let mut a = Conn::new(opts.clone()).await.unwrap();
    let mut b = Conn::new(opts).await.unwrap();
    // A transaction keeps A on its connection: B's statements in between do
    // not see A's uncommitted row and A keeps its own view.
    a.query_drop("CREATE TABLE IF NOT EXISTS pool_bound (id INT PRIMARY KEY) ENGINE=InnoDB")
        .await
        .unwrap();
    a.query_drop("DELETE FROM pool_bound").await.unwrap();
    a.query_drop("BEGIN").await.unwrap();
    let t1: u64 = a
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    a.query_drop("INSERT INTO pool_bound VALUES (7)")
        .await
        .unwrap();
    let seen_by_b: u64 = b
        .query_first("SELECT COUNT(*) FROM pool_bound")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen_by_b, 0);
    let t2: u64 = a
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t1, t2, "a transaction stays on one connection");
    a.query_drop("COMMIT").await.unwrap();
    // LAST_INSERT_ID() answers for this session's own insert.
    a.query_drop("CREATE TABLE IF NOT EXISTS pool_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    a.query_drop("INSERT INTO pool_ai (v) VALUES (1)")
        .await
        .unwrap();
    let mine = a.last_insert_id().unwrap();
    b.query_drop("INSERT INTO pool_ai (v) VALUES (2)")
        .await
        .unwrap();
    let asked: u64 = a
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(asked, mine);
    // Warnings are read where they were raised.
    a.query_drop("SELECT CAST('x' AS SIGNED)").await.unwrap();
    b.query_drop("SELECT 1").await.unwrap();
    let warnings: Vec<(String, u32, String)> = a.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    // Prepared statements survive moving between connections.
    let stmt = a.prep("SELECT ? + 1").await.unwrap();
    for n in 0..20u64 {
        let got: u64 = a.exec_first(&stmt, (n,)).await.unwrap().unwrap();
        assert_eq!(got, n + 1);
        b.query_drop("SELECT 1").await.unwrap();
    }
    a.close(stmt).await.unwrap();
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

async fn backend_thread(c: &mut Conn) -> u64 {
    c.query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap()
}

/// The client side of 5,000 sessions and tandem's side share this process.
fn raise_fd_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

/// `KILL QUERY` of a statement that waits for a pooled connection (none
/// free: another session holds the only one in a transaction) ends that
/// statement with ER 1317 at once, as the server interrupts a running one;
/// the session goes on.
#[tokio::test]
async fn kill_query_interrupts_a_statement_waiting_for_a_connection() {
    let user = "poolkill";
    dedicated_user(user);
    // One worker, so the cap of 1 is the whole pool.
    let cfg = proxy_config(
        user,
        "max_backend_connections = 1\nacquire_timeout_ms = 20000",
    )
    .replace("[runtime]\n", "[runtime]\nworker_threads = 1\n");
    let proxy = Proxy::start_with(&cfg).await;
    // Logged in first: a login borrows a connection too.
    let mut victim = Conn::new(url(&proxy, user, "appdb")).await.unwrap();
    let victim_id = victim.id();
    let mut killer = Conn::new(url(&proxy, user, "appdb")).await.unwrap();
    let mut holder = Conn::new(url(&proxy, user, "appdb")).await.unwrap();
    holder.query_drop("BEGIN").await.unwrap();
    holder.query_drop("SELECT 1").await.unwrap();
    let statement = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r = victim.query_drop("SELECT 'waits for a connection'").await;
        (victim, r, started.elapsed())
    });
    // Until the statement waits for the pool's only connection.
    crate::monitor::wait_backend(&proxy, "db1", |b| b["pool"]["waiting"] == 1).await;
    // The killer needs no backend connection for this.
    killer
        .query_drop(format!("KILL QUERY {victim_id}"))
        .await
        .expect("KILL QUERY of an own session answers OK");
    let (mut victim, r, took) = statement.await.unwrap();
    let e = r.expect_err("the waiting statement is interrupted");
    assert!(e.to_string().contains("1317"), "ER_QUERY_INTERRUPTED: {e}");
    assert!(
        took < Duration::from_secs(10),
        "at once, not at the acquire timeout: {took:?}"
    );
    holder.query_drop("COMMIT").await.unwrap();
    let one: Option<i64> = victim.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the session goes on");
}
