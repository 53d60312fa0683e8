//! What happens on a state change besides the VIPs: the notify program
//! (keepalived's `notify`) and the built-in database actions of a writer VIP.
//!
//! One worker per instance runs them in order, so a quick MASTER -> BACKUP
//! -> MASTER never promotes after it fenced. Every step is bounded in time.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{DbAction, VrrpInstance};
use crate::mysql::backend::{self, query, BackendConn, ConnectParams};
use crate::mysql::protocol::auth::Secret;
use crate::mysql::protocol::DEFAULT_COLLATION;

/// A notify program gets this long before it is killed.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// DB actions are retried this often (a MariaDB restarting).
const DB_ATTEMPTS: u32 = 3;
const DB_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_PACKET: u32 = 16 << 20;

/// The state reported to actions (keepalived's names; `STOP` on shutdown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    Master,
    Backup,
    Fault,
    Stop,
}

/// One state change to act on.
#[derive(Clone, Debug)]
pub struct Event {
    pub state: Reported,
    pub priority: u8,
}

/// Sends events to the instance's action worker.
#[derive(Clone)]
pub struct Actions {
    tx: mpsc::UnboundedSender<Event>,
}

// === impl Reported ===

impl Reported {
    pub fn as_str(self) -> &'static str {
        match self {
            Reported::Master => "MASTER",
            Reported::Backup => "BACKUP",
            Reported::Fault => "FAULT",
            Reported::Stop => "STOP",
        }
    }
}

// === impl Actions ===

impl Actions {
    /// Starts the worker; it ends when every `Actions` is dropped and the
    /// queue is empty (the returned handle says when).
    pub fn start(cfg: &VrrpInstance) -> (Actions, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let name = cfg.name.clone();
        let notify = cfg.notify.clone();
        let db = cfg.db.clone();
        let handle = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if let Some(db) = &db {
                    db_action(&name, db, ev.state).await;
                }
                if let Some(program) = &notify {
                    run_notify(program, &name, &ev).await;
                }
            }
        });
        (Actions { tx }, handle)
    }

    pub fn send(&self, ev: Event) {
        // The worker lives as long as the instance; a closed queue means shutdown.
        let _ = self.tx.send(ev);
    }
}

/// `PROGRAM INSTANCE <name> <state> <priority>`, like keepalived's notify.
async fn run_notify(program: &std::path::Path, name: &str, ev: &Event) {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args([
        "INSTANCE",
        name,
        ev.state.as_str(),
        &ev.priority.to_string(),
    ])
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    match tokio::time::timeout(NOTIFY_TIMEOUT, cmd.status()).await {
        Ok(Ok(s)) if s.success() => {}
        Ok(Ok(s)) => {
            tracing::warn!(instance = name, status = %s, program = %program.display(), "vrrp notify program failed")
        }
        Ok(Err(e)) => {
            tracing::warn!(instance = name, error = %e, program = %program.display(), "vrrp notify program could not run")
        }
        Err(_) => {
            tracing::warn!(instance = name, program = %program.display(), "vrrp notify program timed out")
        }
    }
}

/// MASTER: promote (apply what was received, stop replication,
/// `read_only=OFF`); anything else: fence (`read_only=ON`).
async fn db_action(name: &str, db: &DbAction, state: Reported) {
    let step = match state {
        Reported::Master if db.stop_replication => Step::Promote,
        Reported::Master => Step::Writable,
        Reported::Backup | Reported::Fault | Reported::Stop => Step::Fence,
    };
    for attempt in 1..=DB_ATTEMPTS {
        let timeout = Duration::from_millis(db.timeout_ms);
        match tokio::time::timeout(timeout, run_step(name, db, step)).await {
            Ok(Ok(())) => {
                tracing::info!(instance = name, state = state.as_str(), address = %db.address, "vrrp database action done");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(instance = name, attempt, error = %e, "vrrp database action failed")
            }
            Err(_) => tracing::warn!(instance = name, attempt, "vrrp database action timed out"),
        }
        tokio::time::sleep(DB_RETRY_DELAY).await;
    }
    ::metrics::counter!(crate::metrics::VRRP_DB_ACTION_ERRORS_TOTAL, "instance" => name.to_owned())
        .increment(1);
}

/// What a state change does to the local database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Catch up, stop replication, writable.
    Promote,
    /// Writable only (`stop_replication = false`).
    Writable,
    /// `read_only = ON`.
    Fence,
}

async fn run_step(name: &str, db: &DbAction, step: Step) -> Result<(), String> {
    let secret = Secret::Plain(db.password.clone());
    let mut conn = backend::connect(&ConnectParams {
        backend_name: "vrrp-db",
        address: &db.address,
        user: &db.user,
        secret: &secret,
        database: None,
        capabilities: 0,
        ext_capabilities: 0,
        collation: DEFAULT_COLLATION,
        attributes: None,
        timeout: Duration::from_millis(db.timeout_ms),
        tls: None,
        max_packet: MAX_PACKET,
    })
    .await
    .map_err(|e| e.to_string())?;
    let statements: &[&str] = match step {
        Step::Promote => {
            // Half the action's time at most, so a replica that cannot catch
            // up is still promoted (availability) before the action times out.
            catch_up(name, &mut conn, Duration::from_millis(db.timeout_ms / 2)).await?;
            &["STOP ALL SLAVES", "SET GLOBAL read_only = OFF"]
        }
        Step::Writable => &["SET GLOBAL read_only = OFF"],
        Step::Fence => &["SET GLOBAL read_only = ON"],
    };
    for sql in statements {
        query::exec(&mut conn, sql)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
    }
    Ok(())
}

/// Before a replica becomes the writer: stop receiving from the old primary
/// and apply every transaction already received (its relay log), so writes
/// the old primary acknowledged and shipped are not lost by the promotion.
/// Bounded by `limit`; on timeout (or a stopped SQL thread) the promotion
/// goes on with a warning, as MaxScale's failover does past its timeout.
async fn catch_up(name: &str, conn: &mut BackendConn, limit: Duration) -> Result<(), String> {
    let sql = "STOP ALL SLAVES IO_THREAD";
    query::exec(conn, sql)
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    let sql = "SHOW ALL SLAVES STATUS";
    let status = query::query(conn, sql)
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    for row in 0..status.rows.len() {
        let received = status.get(row, "Gtid_IO_Pos").unwrap_or("");
        if received.is_empty() || !is_gtid_list(received) {
            continue;
        }
        let wait = format!(
            "SELECT MASTER_GTID_WAIT('{received}', {:.3})",
            limit.as_secs_f64()
        );
        let answer = query::query(conn, &wait)
            .await
            .map_err(|e| format!("MASTER_GTID_WAIT: {e}"))?;
        if answer
            .rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .flatten()
            != Some("0".into())
        {
            tracing::warn!(
                instance = name,
                received,
                "vrrp promote: the relay log was not applied in time; promoting anyway"
            );
        }
    }
    Ok(())
}

/// A MariaDB GTID list (`0-1-42,1-2-7`): safe to quote into SQL.
fn is_gtid_list(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b',')
}

#[cfg(test)]
mod tests {
    use super::is_gtid_list;

    #[test]
    fn only_gtid_lists_are_quoted_into_sql() {
        assert!(is_gtid_list("0-1-42"));
        assert!(is_gtid_list("0-1-42,1-2-7"));
        assert!(!is_gtid_list("0-1-42'); DROP TABLE t; --"));
        assert!(!is_gtid_list("0-1-42 "));
    }
}
