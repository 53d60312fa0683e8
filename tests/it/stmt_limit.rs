//! The server's `max_prepared_stmt_count` through the pool: statements that
//! clients close stay cached on pooled connections for reuse, but never make
//! a client's PREPARE fail where it would succeed directly.
//!
//! The limit is global to the server, so this runs on the monitor tests'
//! own testbed, under their lock, and puts the limit back afterwards.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::common::Proxy;
use crate::monitor::{exclusive, root_sql, BASE_PORT};

/// Puts the server's limit back to MariaDB's default, even after a panic.
struct DefaultLimit;

impl Drop for DefaultLimit {
    fn drop(&mut self) {
        let _ = root_sql(0, "SET GLOBAL max_prepared_stmt_count = 16382");
    }
}

/// Prepares and closes `n` distinct statements, as a client without a
/// statement cache does; returns the first error.
async fn prepare_and_close(url: &str, n: usize) -> Result<(), String> {
    let opts = Opts::from_url(url).map_err(|e| e.to_string())?;
    let mut c = Conn::new(opts).await.map_err(|e| e.to_string())?;
    for i in 0..n {
        let stmt = c
            .prep(format!("SELECT {i} + ? AS v"))
            .await
            .map_err(|e| format!("prepare #{i}: {e}"))?;
        let v: Option<i64> = c
            .exec_first(&stmt, (1,))
            .await
            .map_err(|e| format!("execute #{i}: {e}"))?;
        if v != Some(i as i64 + 1) {
            return Err(format!("execute #{i} answered {v:?}"));
        }
        c.close(stmt)
            .await
            .map_err(|e| format!("close #{i}: {e}"))?;
    }
    c.disconnect().await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn closed_statements_never_exhaust_max_prepared_stmt_count() {
    let (_lock, _restore) = exclusive().await;
    let _limit = DefaultLimit;
    let cfg = crate::monitor::config_with_limit("fixed", 0, "");
    let proxy = Proxy::start_with(&cfg).await;
    // Room for ten more statements than the server holds now (other tests'
    // idle connections may keep some).
    let held: u64 = root_sql(
        0,
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
         WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT'",
    )
    .unwrap()
    .parse()
    .unwrap();
    root_sql(
        0,
        &format!("SET GLOBAL max_prepared_stmt_count = {}", held + 10),
    )
    .unwrap();
    // stmt_cache_size=0: mysql_async closes each statement at once, like
    // PHP's mysqli_stmt_close().
    let direct = format!(
        "mysql://app:apppass@127.0.0.1:{BASE_PORT}/appdb?prefer_socket=false&stmt_cache_size=0"
    );
    let through = format!(
        "mysql://app:apppass@{}/appdb?prefer_socket=false&stmt_cache_size=0",
        proxy.addr()
    );
    prepare_and_close(&direct, 60).await.expect("directly");
    // Several sessions one after the other, on the same pooled connections.
    for round in 0..3 {
        prepare_and_close(&through, 60)
            .await
            .unwrap_or_else(|e| panic!("through tandem, round {round}: {e}"));
    }
    // Ten statements held open at once still fit: the closed ones gave way.
    let opts = Opts::from_url(&through).unwrap();
    let mut c = Conn::new(opts).await.unwrap();
    let mut open = Vec::new();
    for i in 0..10 {
        let s = c.prep(format!("SELECT {i} AS held")).await;
        open.push(s.unwrap_or_else(|e| panic!("statement {i} of 10 held at once: {e}")));
    }
    for s in open {
        c.close(s).await.unwrap();
    }
    c.disconnect().await.unwrap();
}
