//! Pool bookkeeping with loopback sockets standing in for backends (the
//! real-server behaviour is covered by tests/it/pool.rs).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::mysql::io::{PacketIo, Stream};
use crate::mysql::protocol::auth::Secret;

fn cfg(acquire_timeout_ms: u64) -> PoolConfig {
    PoolConfig {
        multiplex: true,
        max_backend_connections: 2,
        min_idle: 0,
        idle_timeout_ms: 60_000,
        max_lifetime_ms: 3_600_000,
        acquire_timeout_ms,
        ping_after_idle_ms: 60_000,
        hold_for_diagnostics_ms: 1_000,
    }
}

fn key(user: &str) -> Arc<PoolKey> {
    Arc::new(PoolKey {
        user: Arc::from(user),
        caps: 0,
        ext_caps: 0,
        collation: 45,
    })
}

/// A connection in a place taken from `pool`, over a loopback socket.
async fn fake(pool: &Pool, backend: &Arc<str>, key: &Arc<PoolKey>) -> PooledConn {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, _server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let conn = BackendConn {
        io: PacketIo::new(Stream::Plain(client.unwrap())),
        thread_id: 1,
        capabilities: 0,
        version: "test".into(),
        status: 2,
        awaiting_response: false,
    };
    {
        let mut map = pool.inner.lock();
        map.entry(backend.clone()).or_default().open += 1;
    }
    let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    PooledConn::new(conn, id, key.clone(), pool.lease(backend))
}

/// Acquire parameters pointing at a port nothing listens on: opening a
/// connection fails fast, which shows whether the pool tried to.
fn refused<'a>(secret: &'a Secret) -> ConnectParams<'a> {
    ConnectParams {
        backend_name: "db",
        address: "127.0.0.1:1",
        user: "app",
        secret,
        database: None,
        capabilities: 0,
        ext_capabilities: 0,
        collation: 45,
        attributes: None,
        timeout: Duration::from_secs(1),
        tls: None,
        max_packet: 1 << 20,
    }
}

fn any(_: &PooledConn) -> bool {
    true
}

fn open(pool: &Pool, backend: &str) -> usize {
    pool.stats().get(backend).map_or(0, |s| s.open)
}

#[tokio::test]
async fn idle_connections_are_lent_newest_first_and_only_to_their_key() {
    let pool = Pool::new(cfg(200), 2);
    let db: Arc<str> = Arc::from("db");
    let a = fake(&pool, &db, &key("app")).await;
    let b = fake(&pool, &db, &key("app")).await;
    let (a_id, b_id) = (a.id, b.id);
    pool.release(a);
    pool.release(b);
    assert_eq!(pool.stats()["db"].idle, 2);
    let secret = Secret::Plain("x".into());
    let got = pool
        .acquire(&db, &key("app"), &refused(&secret), &any, &any)
        .await
        .unwrap();
    assert_eq!(got.id, b_id, "LIFO: the warmest connection first");
    let prefer_a = move |c: &PooledConn| c.id == a_id;
    pool.release(got);
    let got = pool
        .acquire(&db, &key("app"), &refused(&secret), &prefer_a, &any)
        .await
        .unwrap();
    assert_eq!(got.id, a_id, "a preferred connection wins over LIFO");
    // Another user's key never gets them: the pool is full (2 open, one
    // idle of "app"), so it closes that idle one and tries to open its own.
    let err = pool
        .acquire(&db, &key("other"), &refused(&secret), &any, &any)
        .await
        .unwrap_err();
    assert!(matches!(err, AcquireError::Connect(_)), "{err}");
    assert_eq!(open(&pool, "db"), 1, "the evicted place was given back");
    drop(got);
    assert_eq!(open(&pool, "db"), 0);
}

#[tokio::test]
async fn a_waiter_gets_the_next_released_connection_of_its_key() {
    let pool = Arc::new(Pool::new(cfg(5_000), 2));
    let db: Arc<str> = Arc::from("db");
    let a = fake(&pool, &db, &key("app")).await;
    let b = fake(&pool, &db, &key("app")).await;
    let a_id = a.id;
    let waiter = {
        let pool = pool.clone();
        let db = db.clone();
        tokio::spawn(async move {
            let secret = Secret::Plain("x".into());
            pool.acquire(&db, &key("app"), &refused(&secret), &any, &any)
                .await
                .map(|c| c.id)
        })
    };
    while pool.stats()["db"].waiting == 0 {
        tokio::task::yield_now().await;
    }
    pool.release(a);
    assert_eq!(waiter.await.unwrap().unwrap(), a_id);
    assert_eq!(pool.stats()["db"].idle, 0, "handed over, not parked");
    drop(b);
}

#[tokio::test]
async fn a_dropped_connection_frees_its_place_for_a_waiter() {
    let pool = Arc::new(Pool::new(cfg(5_000), 1));
    let db: Arc<str> = Arc::from("db");
    let a = fake(&pool, &db, &key("app")).await;
    let waiter = {
        let pool = pool.clone();
        let db = db.clone();
        tokio::spawn(async move {
            let secret = Secret::Plain("x".into());
            pool.acquire(&db, &key("other"), &refused(&secret), &any, &any)
                .await
                .err()
                .map(|e| e.to_string())
        })
    };
    while pool.stats()["db"].waiting == 0 {
        tokio::task::yield_now().await;
    }
    // A session that ends abruptly drops its connection.
    drop(a);
    let err = waiter.await.unwrap().unwrap();
    assert!(!err.contains("became free"), "woken to open one: {err}");
    assert_eq!(open(&pool, "db"), 0, "the failed open gave the place back");
}

#[tokio::test]
async fn waiting_is_bounded_and_a_late_release_is_not_lost() {
    let pool = Pool::new(cfg(50), 1);
    let db: Arc<str> = Arc::from("db");
    let a = fake(&pool, &db, &key("app")).await;
    let secret = Secret::Plain("x".into());
    let err = pool
        .acquire(&db, &key("app"), &refused(&secret), &any, &any)
        .await
        .unwrap_err();
    assert!(matches!(err, AcquireError::Timeout { max: 1, .. }), "{err}");
    pool.release(a);
    let s = &pool.stats()["db"];
    assert_eq!((s.open, s.idle, s.waiting), (1, 1, 0));
}

#[tokio::test]
async fn sweep_closes_idle_connections_past_their_timeout() {
    let mut c = cfg(50);
    c.idle_timeout_ms = 1;
    let pool = Pool::new(c, 2);
    let db: Arc<str> = Arc::from("db");
    let a = fake(&pool, &db, &key("app")).await;
    pool.release(a);
    tokio::time::sleep(Duration::from_millis(5)).await;
    pool.sweep();
    let s = &pool.stats()["db"];
    assert_eq!((s.open, s.idle), (0, 0));
}

#[test]
fn statement_cache_replaces_and_evicts_least_recently_used() {
    let mut c = StmtCache::default();
    let q = |s: &str| -> Arc<[u8]> { Arc::from(s.as_bytes()) };
    assert!(c.insert(q("a"), 1, 2).is_empty());
    assert!(c.insert(q("b"), 2, 2).is_empty());
    assert_eq!(c.get(b"a").map(|s| s.id), Some(1));
    // "b" is now the least recently used.
    assert_eq!(c.insert(q("c"), 3, 2), vec![2]);
    // Preparing the same text again replaces (and closes) the old id.
    assert_eq!(c.insert(q("a"), 4, 2), vec![1]);
    assert_eq!(c.len(), 2);
    assert_eq!(c.remove(b"c"), Some(3));
    c.clear();
    assert!(c.is_empty());
}
