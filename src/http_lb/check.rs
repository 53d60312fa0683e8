//! Active health checks: one task per server, an HTTP GET (status, and
//! optionally a body substring or MD5 like keepalived's `genhash`) or a TCP
//! connect, every `interval_ms`; results go to the server's rise/fall judge.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::config::{HealthCheckConfig, HealthCheckKind as CheckKind};

use super::health::{CheckOutcome, Transition};
use super::server::{Pool, Server};

/// A check reads at most this much of the answer; a check file is small.
const MAX_CHECK_RESPONSE: usize = 1 << 20;

/// Runs the checks of `server` until `shutdown`.
pub async fn run(
    pool: Arc<Pool>,
    index: usize,
    cfg: Arc<HealthCheckConfig>,
    frontend: String,
    shutdown: CancellationToken,
) {
    let server = pool.servers[index].clone();
    let interval = Duration::from_millis(cfg.interval_ms);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (outcome, detail) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = check_once(server.addr, &server, &cfg) => r,
        };
        match outcome {
            CheckOutcome::Fail => server.metrics.check_fail.increment(1),
            _ => server.metrics.check_pass.increment(1),
        }
        let transition = server.record_check(outcome, detail.clone(), pool.now_ms().max(1));
        match transition {
            Some(Transition::WentDown) => {
                tracing::warn!(%frontend, server = %server.name, %detail, "http: server down")
            }
            Some(Transition::WentUp) => {
                tracing::info!(%frontend, server = %server.name, %detail, "http: server up")
            }
            None => {}
        }
    }
}

async fn check_once(
    addr: SocketAddr,
    server: &Server,
    cfg: &HealthCheckConfig,
) -> (CheckOutcome, String) {
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let attempt = async {
        if cfg.kind == CheckKind::Tcp {
            TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            return Ok((CheckOutcome::Pass, "connect ok".to_owned()));
        }
        let host = cfg.host.as_deref().unwrap_or(&server.address);
        let answer = http_get(addr, host, &cfg.path, "tandem-health-check").await?;
        Ok::<_, String>(judge_http(&answer, cfg))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(r)) => r,
        Ok(Err(detail)) => (CheckOutcome::Fail, detail),
        Err(_) => (
            CheckOutcome::Fail,
            format!("timeout after {} ms", cfg.timeout_ms),
        ),
    }
}

/// `GET path HTTP/1.0` to `addr` (`Connection: close`); the whole answer,
/// at most [`MAX_CHECK_RESPONSE`] bytes. Also the VRRP tracker's HTTP probe.
pub async fn http_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    user_agent: &str,
) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::with_capacity(1024);
    (&mut stream)
        .take(MAX_CHECK_RESPONSE as u64)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("read: {e}"))?;
    Ok(answer)
}

/// The status code on the first line of an HTTP/1.x answer (pure).
pub fn status_code(answer: &[u8]) -> Option<u16> {
    let end = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(answer.len());
    let line = std::str::from_utf8(&answer[..end]).ok()?;
    line.strip_prefix("HTTP/1.")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Judges a whole HTTP/1.x answer to a check (pure).
pub fn judge_http(answer: &[u8], cfg: &HealthCheckConfig) -> (CheckOutcome, String) {
    let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (CheckOutcome::Fail, "incomplete HTTP answer".to_owned());
    };
    let body = &answer[head_end + 4..];
    let Some(status) = status_code(answer) else {
        return (CheckOutcome::Fail, "not an HTTP answer".to_owned());
    };
    if status == 404 && cfg.disable_on_404 {
        return (
            CheckOutcome::NotFound404,
            "404: drained by check".to_owned(),
        );
    }
    let status_ok = match cfg.expect_status {
        Some(want) => status == want,
        None => (200..400).contains(&status),
    };
    if !status_ok {
        return (CheckOutcome::Fail, format!("status {status}"));
    }
    if let Some(want) = &cfg.expect_body {
        if !body
            .windows(want.len().max(1))
            .any(|w| w == want.as_bytes())
        {
            return (
                CheckOutcome::Fail,
                format!("status {status}, body lacks {want:?}"),
            );
        }
    }
    if let Some(want) = &cfg.expect_md5 {
        let got = md5_hex(body);
        if &got != want {
            return (
                CheckOutcome::Fail,
                format!("status {status}, body md5 {got}"),
            );
        }
    }
    (CheckOutcome::Pass, format!("status {status}"))
}

/// Lowercase hex MD5, as `genhash` and `md5sum` print it.
pub fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_code_reads_the_first_line_only() {
        assert_eq!(
            super::status_code(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Some(204)
        );
        assert_eq!(super::status_code(b"HTTP/1.0 503 x"), Some(503));
        assert_eq!(super::status_code(b"SSH-2.0 200\r\n"), None);
        assert_eq!(super::status_code(b"\r\nHTTP/1.1 200 OK\r\n"), None);
        assert_eq!(super::status_code(b""), None);
    }

    fn cfg() -> HealthCheckConfig {
        HealthCheckConfig {
            kind: CheckKind::Http,
            path: "/servercheck.txt".into(),
            host: None,
            interval_ms: 100,
            timeout_ms: 100,
            rise: 2,
            fall: 3,
            expect_status: None,
            expect_body: None,
            expect_md5: None,
            disable_on_404: false,
        }
    }

    #[test]
    fn status_rules_follow_haproxy() {
        let c = cfg();
        let ok = |a: &[u8]| judge_http(a, &c).0;
        assert_eq!(ok(b"HTTP/1.1 200 OK\r\n\r\nOK"), CheckOutcome::Pass);
        assert_eq!(
            ok(b"HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n"),
            CheckOutcome::Pass
        );
        assert_eq!(ok(b"HTTP/1.1 404 Not Found\r\n\r\n"), CheckOutcome::Fail);
        assert_eq!(ok(b"HTTP/1.1 500 Oops\r\n\r\n"), CheckOutcome::Fail);
        assert_eq!(ok(b"SSH-2.0-OpenSSH\r\n\r\n"), CheckOutcome::Fail);
        assert_eq!(ok(b"HTTP/1.1 200 OK\r\n"), CheckOutcome::Fail);
        let mut exact = cfg();
        exact.expect_status = Some(204);
        assert_eq!(
            judge_http(b"HTTP/1.1 200 OK\r\n\r\n", &exact).0,
            CheckOutcome::Fail
        );
        let mut drain = cfg();
        drain.disable_on_404 = true;
        assert_eq!(
            judge_http(b"HTTP/1.1 404 NF\r\n\r\n", &drain).0,
            CheckOutcome::NotFound404
        );
    }

    #[test]
    fn body_substring_and_md5_like_genhash() {
        let mut c = cfg();
        c.expect_body = Some("READY".into());
        assert_eq!(
            judge_http(b"HTTP/1.1 200 OK\r\n\r\nall READY\n", &c).0,
            CheckOutcome::Pass
        );
        assert_eq!(
            judge_http(b"HTTP/1.1 200 OK\r\n\r\nnope", &c).0,
            CheckOutcome::Fail
        );
        let mut c = cfg();
        // md5sum of "OK\n"
        c.expect_md5 = Some(md5_hex(b"OK\n"));
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            judge_http(b"HTTP/1.1 200 OK\r\n\r\nOK\n", &c).0,
            CheckOutcome::Pass
        );
        let (o, why) = judge_http(b"HTTP/1.1 200 OK\r\n\r\nKO\n", &c);
        assert_eq!(o, CheckOutcome::Fail);
        assert!(why.contains("md5"), "{why}");
    }
}
