//! Millisecond replication lag: tandem writes a timestamp row on the primary
//! every `heartbeat_interval_ms`; every check reads it back on each backend.
//!
//! Clocks: the row holds the primary's `NOW(6)` as microseconds since the
//! Unix epoch. A replica's lag is the newest heartbeat seen on any backend
//! (the primary's last write) minus the replica's copy of the row, so both
//! timestamps come from the primary's clock: neither tandem's clock nor the
//! replicas' clocks matter, and no NTP agreement is assumed. The resolution
//! is the heartbeat interval (a caught-up replica reads 0 or, just after a
//! write, up to one interval): set `max_replication_lag_ms` to a few
//! intervals.
//!
//! The schema `tandem` and table `tandem.heartbeat` are created when missing
//! (the monitor account needs `ALL ON tandem.*`); several tandem nodes may
//! write the same row, which only makes it fresher.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::probe::{self, ProbeError, Prober};
use super::Topology;
use crate::mysql::backend::query::{self, QueryError};
use crate::mysql::backend::BackendConn;

/// Server errors that mean "no heartbeat here (yet)", not "check failed":
/// unknown database, unknown table, no privilege on it.
const ABSENT: [u16; 4] = [1049, 1146, 1142, 1044];

const CREATE_SCHEMA: &str = "CREATE DATABASE IF NOT EXISTS tandem";
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tandem.heartbeat (\
     id TINYINT UNSIGNED NOT NULL PRIMARY KEY, \
     ts_us BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB";
const WRITE: &str = "REPLACE INTO tandem.heartbeat (id, ts_us) \
     VALUES (1, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS UNSIGNED))";
const READ: &str = "SELECT ts_us FROM tandem.heartbeat WHERE id = 1";

/// This backend's copy of the heartbeat; `None` when it has none yet.
pub async fn read(conn: &mut BackendConn) -> Result<Option<u64>, QueryError> {
    match query::query(conn, READ).await {
        Ok(r) => Ok(r
            .rows
            .first()
            .and_then(|row| row.first()?.as_deref()?.parse().ok())),
        Err(QueryError::Server(e)) if ABSENT.contains(&e.code) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the heartbeat on the current primary every `interval` until
/// shutdown. Follows the primary when the topology changes; a failed write
/// drops the connection and is retried at the next tick.
pub async fn run(
    topology: Arc<Topology>,
    mut prober: Prober,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<BackendConn> = None;
    let mut failing = false;
    // A write may take a little longer than one interval, never forever.
    let bound = interval.max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let snap = topology.load();
        let Some(primary) = snap.primary().filter(|p| p.takes_writes()) else {
            continue;
        };
        if prober.name != primary.name {
            conn = None;
            prober.name.clone_from(&primary.name);
            prober.address.clone_from(&primary.address);
        }
        let result = tokio::time::timeout(bound, beat(&mut conn, &prober))
            .await
            .unwrap_or(Err(ProbeError::Timeout(bound)));
        match result {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(backend = %primary.name, "heartbeat writes work again");
            }
            Ok(()) => {}
            Err(e) => {
                conn = None;
                ::metrics::counter!(crate::metrics::MYSQL_HEARTBEAT_ERRORS_TOTAL).increment(1);
                if !failing {
                    failing = true;
                    tracing::warn!(backend = %primary.name, error = %e,
                        "cannot write the heartbeat (the monitor account needs ALL ON tandem.*)");
                }
            }
        }
    }
}

/// One heartbeat write; connects (and creates the table) first when needed.
async fn beat(conn: &mut Option<BackendConn>, prober: &Prober) -> Result<(), ProbeError> {
    if conn.is_none() {
        let mut c = probe::connect(prober).await?;
        query::exec(&mut c, CREATE_SCHEMA).await?;
        query::exec(&mut c, CREATE_TABLE).await?;
        *conn = Some(c);
    }
    let c = conn.as_mut().expect("connected above");
    query::exec(c, WRITE).await?;
    Ok(())
}
