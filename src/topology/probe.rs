//! One backend check over the monitor's own connection: the I/O half of the
//! monitor. Turns the server's answers into a [`Sample`]; judges nothing.
//!
//! Per check, on one kept connection (re-opened after any failure):
//! 1. `SELECT @@read_only, @@gtid_*` — also the liveness ping;
//! 2. `SHOW ALL SLAVES STATUS` (MariaDB) / `SHOW REPLICA STATUS` (MySQL);
//! 3. with the heartbeat on, tandem's heartbeat row.
//!
//! Connecting is bounded by `connect_timeout_ms`, the statements together by
//! `query_timeout_ms`; a check that overruns fails and drops the connection.

use std::sync::Arc;
use std::time::Duration;

use super::gtid::Gtid;
use super::health::{Channel, IoState, Observation, Sample};
use super::heartbeat;
use crate::config::MonitorConfig;
use crate::mysql::backend::query::{self, QueryError, QueryResult};
use crate::mysql::backend::{self, BackendConn, BackendError, BackendTls, ConnectParams};
use crate::mysql::protocol::auth::Secret;
use crate::mysql::protocol::DEFAULT_COLLATION;

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect: {0}")]
    Connect(#[from] BackendError),
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error("check timed out after {0:?}")]
    Timeout(Duration),
    #[error("unexpected answer: {0}")]
    Unexpected(&'static str),
}

/// The monitor's connection to one backend and how to open it again.
pub struct Prober {
    pub name: String,
    pub address: String,
    conn: Option<BackendConn>,
    user: String,
    secret: Secret,
    connect_timeout: Duration,
    query_timeout: Duration,
    heartbeat: bool,
    tls: Option<Arc<BackendTls>>,
}

/// Packet limit for monitor connections; checks return a few rows.
const MAX_PACKET: u32 = 16 << 20;

// === impl Prober ===

impl Prober {
    pub fn new(
        name: &str,
        address: &str,
        cfg: &MonitorConfig,
        tls: Option<Arc<BackendTls>>,
    ) -> Prober {
        Prober {
            name: name.to_string(),
            address: address.to_string(),
            conn: None,
            user: cfg.user.clone(),
            secret: Secret::Plain(cfg.password.clone()),
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
            query_timeout: Duration::from_millis(cfg.query_timeout_ms),
            heartbeat: cfg.heartbeat_interval_ms > 0,
            tls,
        }
    }

    /// Runs one check; any failure drops the connection.
    pub async fn check(&mut self) -> Sample {
        match self.try_check().await {
            Ok(obs) => Sample::Ok(obs),
            Err(e) => {
                self.conn = None;
                Sample::Failed(e.to_string().into())
            }
        }
    }

    async fn try_check(&mut self) -> Result<Observation, ProbeError> {
        if self.conn.is_none() {
            self.conn = Some(connect(self).await?);
        }
        let heartbeat = self.heartbeat;
        let conn = self.conn.as_mut().expect("connected above");
        let timeout = self.query_timeout;
        tokio::time::timeout(timeout, observe(conn, heartbeat))
            .await
            .map_err(|_| ProbeError::Timeout(timeout))?
    }
}

/// Opens an authenticated monitor connection to `p`'s backend.
pub async fn connect(p: &Prober) -> Result<BackendConn, BackendError> {
    backend::connect(&ConnectParams {
        backend_name: &p.name,
        address: &p.address,
        user: &p.user,
        secret: &p.secret,
        database: None,
        capabilities: 0,
        ext_capabilities: 0,
        collation: DEFAULT_COLLATION,
        attributes: None,
        timeout: p.connect_timeout,
        tls: p.tls.as_deref(),
        max_packet: MAX_PACKET,
    })
    .await
}

/// The statements of one check on an open connection.
async fn observe(conn: &mut BackendConn, heartbeat: bool) -> Result<Observation, ProbeError> {
    let mariadb = conn.version.contains("MariaDB");
    let mut obs = if mariadb {
        let r = query::query(
            conn,
            "SELECT @@global.read_only, @@global.gtid_current_pos, \
             @@global.gtid_slave_pos, @@global.gtid_binlog_pos",
        )
        .await?;
        let row = r.rows.first().ok_or(ProbeError::Unexpected("no row"))?;
        Observation {
            read_only: row.first().cloned().flatten().as_deref() == Some("1"),
            gtid_current_pos: row.get(1).cloned().flatten(),
            gtid_slave_pos: row.get(2).cloned().flatten(),
            gtid_binlog_pos: row.get(3).cloned().flatten(),
            ..Default::default()
        }
    } else {
        let r = query::query(conn, "SELECT @@global.read_only, @@global.gtid_executed").await?;
        let row = r.rows.first().ok_or(ProbeError::Unexpected("no row"))?;
        Observation {
            read_only: row.first().cloned().flatten().as_deref() == Some("1"),
            gtid_current_pos: row.get(1).cloned().flatten(),
            ..Default::default()
        }
    };
    obs.gtid_current = obs
        .gtid_current_pos
        .as_deref()
        .and_then(|t| Gtid::parse(t).ok())
        .map(Arc::new);
    match replication_status(conn, mariadb).await {
        Ok(r) => obs.replication = channels(&r),
        Err(QueryError::Server(e)) => obs.replication_error = Some(e.message),
        Err(e) => return Err(e.into()),
    }
    if heartbeat {
        obs.heartbeat_us = heartbeat::read(conn).await?;
    }
    Ok(obs)
}

async fn replication_status(
    conn: &mut BackendConn,
    mariadb: bool,
) -> Result<QueryResult, QueryError> {
    if mariadb {
        return query::query(conn, "SHOW ALL SLAVES STATUS").await;
    }
    // MySQL 8.0.22+ names it SHOW REPLICA STATUS; older ones only know SLAVE.
    match query::query(conn, "SHOW REPLICA STATUS").await {
        Err(QueryError::Server(e)) if e.code == 1064 => {
            query::query(conn, "SHOW SLAVE STATUS").await
        }
        other => other,
    }
}

/// Channels from a replication status result, under either naming
/// (MariaDB/MySQL `Slave_*`/`Master_*`, MySQL 8 `Replica_*`/`Source_*`).
pub fn channels(r: &QueryResult) -> Vec<Channel> {
    let get = |row: usize, names: &[&str]| -> Option<String> {
        names
            .iter()
            .find_map(|n| r.column(n).map(|i| r.rows[row].get(i).cloned().flatten()))
            .flatten()
    };
    (0..r.rows.len())
        .map(|i| {
            let io = match get(i, &["Slave_IO_Running", "Replica_IO_Running"]).as_deref() {
                Some("Yes") => IoState::Yes,
                Some("Connecting") => IoState::Connecting,
                _ => IoState::No,
            };
            let host = get(i, &["Master_Host", "Source_Host"]).unwrap_or_default();
            let port = get(i, &["Master_Port", "Source_Port"]).unwrap_or_default();
            Channel {
                name: get(i, &["Connection_name", "Channel_Name"]).unwrap_or_default(),
                io_running: io,
                sql_running: get(i, &["Slave_SQL_Running", "Replica_SQL_Running"]).as_deref()
                    == Some("Yes"),
                seconds_behind_master: get(i, &["Seconds_Behind_Master", "Seconds_Behind_Source"])
                    .and_then(|s| s.parse().ok()),
                last_io_error: get(i, &["Last_IO_Error"]).unwrap_or_default(),
                last_sql_error: get(i, &["Last_SQL_Error"]).unwrap_or_default(),
                master: format!("{host}:{port}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(columns: &[&str], rows: &[&[Option<&str>]]) -> QueryResult {
        QueryResult {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
                .collect(),
        }
    }

    #[test]
    fn replication_status_under_both_namings() {
        let mariadb = result(
            &[
                "Connection_name",
                "Master_Host",
                "Master_Port",
                "Slave_IO_Running",
                "Slave_SQL_Running",
                "Last_IO_Error",
                "Last_SQL_Error",
                "Seconds_Behind_Master",
            ],
            &[&[
                Some(""),
                Some("127.0.0.1"),
                Some("3306"),
                Some("Connecting"),
                Some("No"),
                Some("error connecting"),
                Some(""),
                None,
            ]],
        );
        let c = &channels(&mariadb)[0];
        assert_eq!(c.io_running, IoState::Connecting);
        assert!(!c.sql_running);
        assert_eq!(c.seconds_behind_master, None);
        assert_eq!(c.master, "127.0.0.1:3306");
        assert_eq!(c.last_io_error, "error connecting");

        let mysql = result(
            &[
                "Source_Host",
                "Source_Port",
                "Replica_IO_Running",
                "Replica_SQL_Running",
                "Seconds_Behind_Source",
                "Channel_Name",
            ],
            &[&[
                Some("db1"),
                Some("3306"),
                Some("Yes"),
                Some("Yes"),
                Some("7"),
                Some(""),
            ]],
        );
        let c = &channels(&mysql)[0];
        assert_eq!(c.io_running, IoState::Yes);
        assert!(c.sql_running);
        assert_eq!(c.seconds_behind_master, Some(7));
        assert_eq!(c.master, "db1:3306");
        assert!(channels(&result(&["Slave_IO_Running"], &[])).is_empty());
    }
}
