//! Tracked checks: each `[[vrrp.checks]]` runs on its own task every
//! `interval_ms` and publishes up/down with rise/fall hysteresis on a
//! `watch` channel that the instances read.
//!
//! The first result is taken as it is (a node starting with its database
//! down must not wait `fall` checks to say so); later flips need `rise`
//! good or `fall` bad results in a row.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{VrrpCheck, VrrpCheckKind};
use crate::http_lb::check::{http_get, status_code};
use crate::mysql::backend::{self, query, ConnectParams};
use crate::mysql::protocol::auth::Secret;
use crate::mysql::protocol::DEFAULT_COLLATION;

/// A check's published state: `None` until the first result.
pub type CheckState = watch::Receiver<Option<bool>>;

/// Rise/fall hysteresis over raw results.
#[derive(Clone, Debug)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    state: Option<bool>,
    streak: u32,
}

// === impl Hysteresis ===

impl Hysteresis {
    pub fn new(rise: u32, fall: u32) -> Hysteresis {
        Hysteresis {
            rise,
            fall,
            state: None,
            streak: 0,
        }
    }

    /// Feeds one result; returns the state after it.
    pub fn feed(&mut self, ok: bool) -> bool {
        match self.state {
            None => self.state = Some(ok),
            Some(up) if up == ok => self.streak = 0,
            Some(_) => {
                self.streak += 1;
                let need = if ok { self.rise } else { self.fall };
                if self.streak >= need {
                    self.state = Some(ok);
                    self.streak = 0;
                }
            }
        }
        self.state.unwrap_or(ok)
    }
}

/// Starts every check; the map goes from check name to its state.
pub fn start(checks: &[VrrpCheck], shutdown: &CancellationToken) -> HashMap<String, CheckState> {
    let mut out = HashMap::new();
    for c in checks {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(run(c.clone(), tx, shutdown.clone()));
        out.insert(c.name.clone(), rx);
    }
    out
}

async fn run(check: VrrpCheck, tx: watch::Sender<Option<bool>>, shutdown: CancellationToken) {
    let mut h = Hysteresis::new(check.rise, check.fall);
    let mut tick = tokio::time::interval(Duration::from_millis(check.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let timeout = Duration::from_millis(check.timeout_ms);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ok = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(timeout, probe(&check.kind)) => matches!(r, Ok(Ok(()))),
        };
        let up = h.feed(ok);
        let changed = tx.send_if_modified(|s| {
            let old = s.replace(up);
            old != Some(up)
        });
        if changed {
            tracing::info!(check = %check.name, up, "vrrp tracked check changed");
        }
    }
}

/// One attempt; `Ok` = good.
async fn probe(kind: &VrrpCheckKind) -> Result<(), String> {
    match kind {
        VrrpCheckKind::TandemHttpLb { address, path } => {
            http_status(*address, path).await.and_then(|s| {
                if s < 500 {
                    Ok(())
                } else {
                    Err(format!("status {s}"))
                }
            })
        }
        VrrpCheckKind::TandemMysql { address } => mysql_greeting(*address).await,
        VrrpCheckKind::Tcp { address } => TcpStream::connect(address)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        VrrpCheckKind::Http {
            address,
            path,
            expect_status,
        } => http_status(*address, path).await.and_then(|s| {
            if s == *expect_status {
                Ok(())
            } else {
                Err(format!("status {s}"))
            }
        }),
        VrrpCheckKind::MariadbAlive {
            address,
            user,
            password,
        } => sql_value(address, user, password, "SELECT 1")
            .await
            .map(drop),
        VrrpCheckKind::MariadbWritable {
            address,
            user,
            password,
        } => match sql_value(address, user, password, "SELECT @@global.read_only").await? {
            Some(v) if v == "0" => Ok(()),
            v => Err(format!("read_only = {v:?}")),
        },
        VrrpCheckKind::Script { command } => {
            let status = tokio::process::Command::new(&command[0])
                .args(&command[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(status.to_string())
            }
        }
    }
}

/// `GET path HTTP/1.0` (the HTTP LB's check request) and the answer's status code.
async fn http_status(address: std::net::SocketAddr, path: &str) -> Result<u16, String> {
    let host = address.to_string();
    let answer = http_get(address, &host, path, "tandem-vrrp").await?;
    status_code(&answer).ok_or_else(|| {
        let head = &answer[..answer.len().min(32)];
        format!("not an HTTP answer: {:?}", String::from_utf8_lossy(head))
    })
}

/// A MySQL server greeting: 4-byte header, then protocol version 10
/// (an ERR packet, 0xff, means the listener refuses connections).
async fn mysql_greeting(address: std::net::SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await.map_err(|e| e.to_string())?;
    match head[4] {
        10 => Ok(()),
        0xff => Err("the listener answered with an error packet".into()),
        b => Err(format!("not a MySQL greeting (first byte {b})")),
    }
}

async fn sql_value(
    address: &str,
    user: &str,
    password: &str,
    sql: &str,
) -> Result<Option<String>, String> {
    let secret = Secret::Plain(password.to_owned());
    let mut conn = backend::connect(&ConnectParams {
        backend_name: "vrrp-check",
        address,
        user,
        secret: &secret,
        database: None,
        capabilities: 0,
        ext_capabilities: 0,
        collation: DEFAULT_COLLATION,
        attributes: None,
        timeout: Duration::from_secs(5),
        tls: None,
        max_packet: 16 << 20,
    })
    .await
    .map_err(|e| e.to_string())?;
    let r = query::query(&mut conn, sql)
        .await
        .map_err(|e| e.to_string())?;
    Ok(r.rows
        .first()
        .and_then(|row| row.first().cloned().flatten()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn hysteresis_takes_the_first_result_then_needs_rise_and_fall() {
        let mut h = Hysteresis::new(2, 3);
        assert!(!h.feed(false));
        assert!(!h.feed(true));
        assert!(h.feed(true));
        assert!(h.feed(false));
        assert!(h.feed(true)); // a good one resets the streak
        assert!(h.feed(false));
        assert!(h.feed(false));
        assert!(!h.feed(false));
    }

    #[tokio::test]
    async fn probes_tcp_http_and_script() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
                    .await;
            }
        });
        assert_eq!(probe(&VrrpCheckKind::Tcp { address: addr }).await, Ok(()));
        let http = VrrpCheckKind::Http {
            address: addr,
            path: "/".into(),
            expect_status: 200,
        };
        assert_eq!(probe(&http).await, Err("status 503".into()));
        let ok = VrrpCheckKind::Script {
            command: vec!["true".into()],
        };
        let bad = VrrpCheckKind::Script {
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
        };
        assert_eq!(probe(&ok).await, Ok(()));
        assert!(probe(&bad).await.is_err());
    }
}
