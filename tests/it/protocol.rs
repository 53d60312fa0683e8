//! mysql_async against the testbed primary, directly and through tandem:
//! column types (text and binary protocol), multi-results, OK fields, large
//! packets, KILL, COM_CHANGE_USER / COM_RESET_CONNECTION.

use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};

use crate::common::{targets, unique, Proxy};

const TYPES_DDL: &str = "(
  id INT PRIMARY KEY,
  ti TINYINT, si SMALLINT, mi MEDIUMINT, n INT, b BIGINT, u BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dec1 DECIMAL(30,10),
  dt DATETIME(6), ts TIMESTAMP(3) NULL, dte DATE, tm TIME(6), y YEAR,
  c CHAR(10), vc VARCHAR(100), tx TEXT, bl BLOB, js JSON, bt BIT(10),
  en ENUM('a','b'), st SET('x','y'), geo GEOMETRY NULL, nul INT NULL
) CHARACTER SET utf8mb4";

const TYPES_ROW: &str = "(1, -128, -32768, -8388608, -2147483648, -9223372036854775808,
  18446744073709551615, 1.5, 2.25, 12345678901234567890.0123456789,
  '2024-02-29 23:59:59.123456', '2024-01-01 00:00:00.125', '1000-01-01', '-838:59:59.000000', 2155,
  'ab', 'héllo 😀 wörld', REPEAT('t', 1000), X'00FF10', '{\"k\": [1, 2, null]}', b'1010101010',
  'b', 'x,y', ST_GeomFromText('POINT(1 2)'), NULL)";

/// Every row of the types table via the text and the binary protocol.
async fn read_types(conn: &mut Conn, table: &str) -> (Vec<Row>, Vec<Row>) {
    let text: Vec<Row> = conn
        .query(format!("SELECT * FROM {table} ORDER BY id"))
        .await
        .unwrap();
    let bin: Vec<Row> = conn
        .exec(
            format!("SELECT * FROM {table} WHERE id >= ? ORDER BY id"),
            (0,),
        )
        .await
        .unwrap();
    (text, bin)
}

fn values(rows: &[Row]) -> Vec<Vec<Value>> {
    rows.iter().map(|r| r.clone().unwrap()).collect()
}

#[tokio::test]
async fn column_types_round_trip_identically_text_and_binary() {
    let proxy = Proxy::start().await;
    let table = format!("appdb.{}", unique("types"));
    let mut setup = Conn::from_url(crate::common::direct_url("app", "apppass", "appdb"))
        .await
        .unwrap();
    setup
        .query_drop(format!("CREATE TABLE {table} {TYPES_DDL}"))
        .await
        .unwrap();
    setup
        .query_drop(format!("INSERT INTO {table} VALUES {TYPES_ROW}"))
        .await
        .unwrap();
    let mut results = Vec::new();
    for (name, url) in targets(&proxy, "app", "apppass", "appdb") {
        let mut conn = Conn::from_url(&url).await.unwrap();
        // Binary-protocol insert with typed parameters, id 2 (direct) / 3 (tandem).
        let id = if name == "direct" { 2 } else { 3 };
        conn.exec_drop(
            format!("INSERT INTO {table} (id, n, d, vc, bl, nul, dt) VALUES (?, ?, ?, ?, ?, ?, ?)"),
            (
                id,
                42i32,
                0.5f64,
                "emoji 🎉",
                vec![0u8, 1, 2, 255],
                Value::NULL,
                "2023-05-06 07:08:09.5",
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (text, bin) = read_types(&mut conn, &table).await;
        assert!(text.len() >= 2, "{name}");
        let t = values(&text);
        // A few explicit values, as a user would check them.
        assert_eq!(
            t[0][16],
            Value::Bytes("héllo 😀 wörld".as_bytes().to_vec()),
            "{name}: utf8mb4"
        );
        assert_eq!(
            t[0][9],
            Value::Bytes(b"12345678901234567890.0123456789".to_vec()),
            "{name}: decimal"
        );
        assert_eq!(
            t[0][10],
            Value::Bytes(b"2024-02-29 23:59:59.123456".to_vec()),
            "{name}: datetime(6)"
        );
        assert_eq!(t[0][24], Value::NULL, "{name}: NULL");
        assert_eq!(
            t[1][18],
            Value::Bytes(vec![0, 1, 2, 255]),
            "{name}: blob param"
        );
        let b = values(&bin);
        assert_eq!(
            b[0][6],
            Value::UInt(u64::MAX),
            "{name}: bigint unsigned (binary)"
        );
        assert_eq!(b[0][24], Value::NULL, "{name}: NULL (binary)");
        results.push((name, t[0].clone(), b[0].clone()));
        conn.disconnect().await.unwrap();
    }
    // Row 1 read through tandem is byte-identical to the direct read.
    assert_eq!(
        results[0].1, results[1].1,
        "text protocol differs through tandem"
    );
    assert_eq!(
        results[0].2, results[1].2,
        "binary protocol differs through tandem"
    );
    setup
        .query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn ok_packet_fields_multi_results_and_status_flags() {
    let proxy = Proxy::start().await;
    let table = format!("appdb.{}", unique("okf"));
    for (name, url) in targets(&proxy, "app", "apppass", "appdb") {
        let mut conn = Conn::from_url(&url).await.unwrap();
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {table} (id INT AUTO_INCREMENT PRIMARY KEY, v TINYINT)"
        ))
        .await
        .unwrap();
        conn.query_drop(format!("INSERT INTO {table} (v) VALUES (1),(2),(3)"))
            .await
            .unwrap();
        assert_eq!(conn.affected_rows(), 3, "{name}");
        assert!(conn.last_insert_id().unwrap() > 0, "{name}");
        // 300 does not fit a TINYINT: a warning under a non-strict sql_mode.
        conn.query_drop("SET SESSION sql_mode = ''").await.unwrap();
        conn.query_drop(format!("INSERT INTO {table} (v) VALUES (300)"))
            .await
            .unwrap();
        assert_eq!(conn.get_warnings(), 1, "{name}: warnings count");
        // Multi-statement, multi-result.
        let mut res = conn
            .query_iter("SELECT 1 AS a; SELECT 2 AS b, 3 AS c; DO 0")
            .await
            .unwrap();
        let first: Vec<(i64,)> = res.collect().await.unwrap();
        let second: Vec<(i64, i64)> = res.collect().await.unwrap();
        drop(res);
        assert_eq!(first, vec![(1,)], "{name}");
        assert_eq!(second, vec![(2, 3)], "{name}");
        // Transaction status is relayed: a rollback undoes the insert.
        conn.query_drop("BEGIN").await.unwrap();
        conn.query_drop(format!("INSERT INTO {table} (v) VALUES (9)"))
            .await
            .unwrap();
        conn.query_drop("ROLLBACK").await.unwrap();
        let n: Option<i64> = conn
            .query_first(format!("SELECT COUNT(*) FROM {table} WHERE v = 9"))
            .await
            .unwrap();
        assert_eq!(n, Some(0), "{name}");
        // Errors carry the server's code.
        let e = conn.query_drop("SELEC 1").await.unwrap_err();
        assert!(
            matches!(e, mysql_async::Error::Server(ref s) if s.code == 1064),
            "{name}: {e}"
        );
        conn.query_drop(format!("DROP TABLE IF EXISTS {table}"))
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn twenty_mib_blob_round_trips_both_protocols() {
    let proxy = Proxy::start().await;
    let table = format!("appdb.{}", unique("big"));
    let blob: Vec<u8> = (0..20 * 1024 * 1024)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    for (name, url) in targets(&proxy, "app", "apppass", "appdb") {
        let mut conn = Conn::from_url(&url).await.unwrap();
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY, b LONGBLOB)"
        ))
        .await
        .unwrap();
        conn.query_drop(format!("DELETE FROM {table}"))
            .await
            .unwrap();
        conn.exec_drop(
            format!("INSERT INTO {table} VALUES (1, ?)"),
            (blob.clone(),),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let back: Option<Vec<u8>> = conn
            .query_first(format!("SELECT b FROM {table}"))
            .await
            .unwrap();
        assert!(
            back.as_ref() == Some(&blob),
            "{name}: text protocol blob differs"
        );
        let back: Option<Vec<u8>> = conn
            .exec_first(format!("SELECT b FROM {table} WHERE id = ?"), (1,))
            .await
            .unwrap();
        assert!(
            back.as_ref() == Some(&blob),
            "{name}: binary protocol blob differs"
        );
        // A 20 MiB statement text (multi-packet COM_QUERY).
        let hex: String = blob[..10 * 1024 * 1024]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        conn.query_drop(format!("UPDATE {table} SET b = X'{hex}' WHERE id = 1"))
            .await
            .unwrap();
        let len: Option<i64> = conn
            .query_first(format!("SELECT LENGTH(b) FROM {table}"))
            .await
            .unwrap();
        assert_eq!(len, Some(10 * 1024 * 1024), "{name}");
        conn.query_drop(format!("DROP TABLE {table}"))
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn kill_query_and_connection_use_tandem_ids() {
    let proxy = Proxy::start().await;
    let url = proxy.url("app", "apppass", "appdb");
    let mut victim = Conn::from_url(&url).await.unwrap();
    let mut killer = Conn::from_url(&url).await.unwrap();
    let victim_id = victim.id();
    assert_ne!(victim_id, killer.id());
    let sleeper = tokio::spawn(async move {
        let r = victim.query_drop("SELECT SLEEP(20)").await;
        (victim, r)
    });
    crate::common::wait_until_running("SELECT SLEEP(20)").await;
    let t0 = std::time::Instant::now();
    killer
        .query_drop(format!("KILL QUERY {victim_id}"))
        .await
        .unwrap();
    let (mut victim, r) = sleeper.await.unwrap();
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    // MariaDB answers a killed SLEEP() with 1 (interrupted) or ERR 1317.
    match r {
        Ok(()) => {}
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1317),
        Err(e) => panic!("unexpected: {e}"),
    }
    // The victim's session still works after KILL QUERY.
    let one: Option<i64> = victim.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    // Unknown ids get ER_NO_SUCH_THREAD.
    let e = killer.query_drop("KILL 4000000000").await.unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1094),
        "{e}"
    );
    // KILL CONNECTION ends the victim's session.
    killer
        .query_drop(format!("KILL CONNECTION {victim_id}"))
        .await
        .unwrap();
    assert!(victim.query_drop("SELECT 1").await.is_err());
}

#[tokio::test]
async fn change_user_and_reset_connection() {
    let proxy = Proxy::start().await;
    for (name, url) in targets(&proxy, "app", "apppass", "appdb") {
        let mut conn = Conn::from_url(&url).await.unwrap();
        conn.query_drop("SET @x = 5").await.unwrap();
        assert!(
            conn.reset().await.unwrap(),
            "{name}: COM_RESET_CONNECTION supported"
        );
        let x: Option<Option<i64>> = conn.query_first("SELECT @x").await.unwrap();
        assert_eq!(x, Some(None), "{name}: reset clears user variables");
        let opts = mysql_async::ChangeUserOpts::default()
            .with_user(Some("app2".into()))
            .with_pass(Some("app2pass".into()))
            .with_db_name(Some("appdb".into()));
        conn.change_user(opts)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
        assert!(who.unwrap().starts_with("app2@"), "{name}");
        let bad = mysql_async::ChangeUserOpts::default()
            .with_user(Some("app2".into()))
            .with_pass(Some("wrong".into()));
        let e = conn.change_user(bad).await.unwrap_err();
        assert!(
            e.to_string().contains("1045") || e.to_string().contains("Access denied"),
            "{name}: {e}"
        );
    }
}

#[tokio::test]
async fn com_process_kill_maps_the_tandem_id() {
    let proxy = Proxy::start().await;
    let mut victim = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap();
    let id = victim.id();
    let mut killer = crate::common::Raw::login(proxy.addr(), crate::common::Raw::BASIC_CAPS).await;
    let mut cmd = vec![0x0C];
    cmd.extend_from_slice(&id.to_le_bytes());
    killer.send(0, &cmd).await;
    let (seq, ok) = killer.read_packet().await.unwrap();
    assert_eq!((seq, ok[0]), (1, 0x00), "COM_PROCESS_KILL answered OK");
    assert!(
        victim.query_drop("SELECT 1").await.is_err(),
        "the victim is gone"
    );
    // Unknown ids: ER_NO_SUCH_THREAD, and the killer's session survives.
    killer.send(0, &[0x0C, 0xFF, 0xFF, 0xFF, 0x7F]).await;
    assert_eq!(killer.expect_err().await.code, 1094);
    killer.send(0, &[0x0E]).await;
    assert_eq!(killer.read_packet().await.unwrap().1[0], 0x00);
}

/// A one-connection TCP forwarder to `upstream` that counts the bytes sent
/// to the client, so a test can see what crossed the wire.
async fn counting_forwarder(
    upstream: String,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let down = std::sync::Arc::new(AtomicU64::new(0));
    let counter = down.clone();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = sr.read(&mut buf).await {
            counter.fetch_add(n as u64, Ordering::Relaxed);
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        up.abort();
    });
    (addr, down)
}

/// mysql_async asks for compression only when the server offers it. Through
/// tandem as directly, a compressible 4 MiB result crosses the wire in a
/// fraction of its size, and a 17 MiB value (a packet over several frames),
/// a prepared statement, multi-results and COM_CHANGE_USER work over it.
#[tokio::test]
async fn compressed_protocol_shrinks_traffic_and_round_trips() {
    use std::sync::atomic::Ordering;
    let proxy = Proxy::start().await;
    let table = format!("appdb.{}", unique("zlib"));
    let blob: Vec<u8> = (0..17 * 1024 * 1024u32)
        .map(|i| if i % 4096 < 64 { (i % 251) as u8 } else { b'z' })
        .collect();
    let upstreams = [
        ("direct", crate::common::testbed().primary.clone()),
        ("tandem", proxy.addr().to_string()),
    ];
    for (name, upstream) in upstreams {
        let (fwd, received) = counting_forwarder(upstream).await;
        let url = format!("mysql://app:apppass@{fwd}/appdb?prefer_socket=false&compression=fast");
        let mut conn = Conn::from_url(&url)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let before = received.load(Ordering::Relaxed);
        let len: Option<(i64, String)> = conn
            .query_first("SELECT LENGTH(r), RIGHT(r, 3) FROM (SELECT REPEAT('ab', 2097152) AS r) t")
            .await
            .unwrap();
        assert_eq!(len, Some((4 << 20, "bab".into())), "{name}");
        let big: Option<Vec<u8>> = conn
            .query_first("SELECT REPEAT('ab', 2097152)")
            .await
            .unwrap();
        assert_eq!(big.map(|b| b.len()), Some(4 << 20), "{name}");
        let wire = received.load(Ordering::Relaxed) - before;
        assert!(
            wire < 256 * 1024,
            "{name}: a 4 MiB result took {wire} bytes on the wire"
        );

        conn.query_drop(format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, b LONGBLOB)"
        ))
        .await
        .unwrap();
        conn.exec_drop(
            format!("REPLACE INTO {table} VALUES (1, ?)"),
            (blob.clone(),),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let back: Option<Vec<u8>> = conn
            .exec_first(format!("SELECT b FROM {table} WHERE id = ?"), (1,))
            .await
            .unwrap();
        assert!(
            back.as_ref() == Some(&blob),
            "{name}: binary protocol blob differs"
        );
        let back: Option<Vec<u8>> = conn
            .query_first(format!("SELECT b FROM {table}"))
            .await
            .unwrap();
        assert!(
            back.as_ref() == Some(&blob),
            "{name}: text protocol blob differs"
        );
        conn.query_drop(format!("DROP TABLE {table}"))
            .await
            .unwrap();

        // Multi-results whose first set ends around 64 KiB: for one of these
        // sizes it ends exactly where tandem cuts a full frame, and
        // mysql_async then takes the packet sequence from the frame's. (The
        // server flushes between results, so there each one costs a delayed
        // ACK: a few sizes are enough directly.)
        let sizes = if name == "tandem" {
            65300..65536
        } else {
            65300..65303
        };
        for n in sizes {
            let mut results = conn
                .query_iter(format!("SELECT REPEAT('a', {n}); SELECT 2 UNION SELECT 3"))
                .await
                .unwrap();
            let first: Vec<String> = results
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{name}: first result of {n} bytes: {e}"));
            let second: Vec<i64> = results
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{name}: second result after {n} bytes: {e}"));
            drop(results);
            assert_eq!((first[0].len(), second), (n, vec![2, 3]), "{name}");
        }

        let opts = mysql_async::ChangeUserOpts::default()
            .with_user(Some("app2".into()))
            .with_pass(Some("app2pass".into()))
            .with_db_name(Some("appdb".into()));
        conn.change_user(opts)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
        assert!(who.unwrap().starts_with("app2@"), "{name}");
        conn.disconnect().await.unwrap();
    }
}

/// `KILL` of another user's idle session (no backend thread to let the
/// server judge): refused with ERR 1095 without SUPER / CONNECTION ADMIN,
/// as MariaDB refuses it (issue 15); done with it.
#[tokio::test]
async fn kill_of_another_users_idle_session_needs_the_privilege() {
    let proxy = Proxy::start().await;
    // app: ALL ON *.* (SUPER, CONNECTION ADMIN); app2: ALL ON appdb.* only.
    let mut app = Conn::from_url(proxy.url("app", "apppass", "appdb"))
        .await
        .unwrap();
    let mut app2 = Conn::from_url(proxy.url("app2", "app2pass", "appdb"))
        .await
        .unwrap();
    for kind in ["", "QUERY ", "CONNECTION "] {
        let e = app2
            .query_drop(format!("KILL {kind}{}", app.id()))
            .await
            .expect_err("app2 may not kill app's session");
        match e {
            mysql_async::Error::Server(s) => {
                assert_eq!(s.code, 1095, "{kind}: {}", s.message);
                assert!(s.message.contains("not owner"), "{}", s.message);
            }
            other => panic!("{other}"),
        }
    }
    let one: Option<i64> = app.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "app's session is untouched");
    // A session that changed user belongs to its new user.
    let mut switched = Conn::from_url(proxy.url("app2", "app2pass", "appdb"))
        .await
        .unwrap();
    let to_app = mysql_async::ChangeUserOpts::default()
        .with_user(Some("app".into()))
        .with_pass(Some("apppass".into()));
    switched.change_user(to_app).await.unwrap();
    let e = app2
        .query_drop(format!("KILL {}", switched.id()))
        .await
        .expect_err("app2 may not kill what is now app's session");
    assert!(e.to_string().contains("1095"), "{e}");
    app.query_drop(format!("KILL {}", app2.id()))
        .await
        .expect("a privileged user kills another user's session");
    assert!(
        app2.query_drop("SELECT 1").await.is_err(),
        "app2's session was killed"
    );
}
