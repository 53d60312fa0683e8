//! What happens on a state change besides the VIPs: the notify program
//! (keepalived's `notify`) and the built-in database actions of a writer VIP.
//!
//! One worker per instance runs them in order, so a quick MASTER -> BACKUP
//! -> MASTER never promotes after it fenced. Every step is bounded in time.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{DbAction, VrrpInstance};
use crate::mysql::backend::{self, query, ConnectParams};
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

/// MASTER: promote (stop replication, `read_only=OFF`); anything else: fence
/// (`read_only=ON`).
async fn db_action(name: &str, db: &DbAction, state: Reported) {
    let statements: &[&str] = match state {
        Reported::Master if db.stop_replication => {
            &["STOP ALL SLAVES", "SET GLOBAL read_only = OFF"]
        }
        Reported::Master => &["SET GLOBAL read_only = OFF"],
        Reported::Backup | Reported::Fault | Reported::Stop => &["SET GLOBAL read_only = ON"],
    };
    for attempt in 1..=DB_ATTEMPTS {
        let timeout = Duration::from_millis(db.timeout_ms);
        match tokio::time::timeout(timeout, run_statements(db, statements)).await {
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

async fn run_statements(db: &DbAction, statements: &[&str]) -> Result<(), String> {
    let secret = Secret::Plain(db.password.clone());
    let mut conn = backend::connect(&ConnectParams {
        backend_name: "vrrp-db",
        address: &db.address,
        user: &db.user,
        secret: &secret,
        database: None,
        capabilities: 0,
        collation: DEFAULT_COLLATION,
        attributes: None,
        timeout: Duration::from_millis(db.timeout_ms),
        tls: None,
        max_packet: MAX_PACKET,
    })
    .await
    .map_err(|e| e.to_string())?;
    for sql in statements {
        query::exec(&mut conn, sql)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
    }
    Ok(())
}
