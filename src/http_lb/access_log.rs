//! Access log: one line per request in NCSA common or combined format (as
//! Apache and nginx write them), or `tandem` (combined + server, time, attempts).
//!
//! Lines go through a bounded channel to one writer task, so a slow disk
//! never holds a request; when the channel is full a line is dropped and
//! counted in the next written line's place as a warning.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::AccessLogFormat;

/// Lines waiting for the writer; beyond, new lines are dropped.
const QUEUE: usize = 8192;

/// What one access log line says.
#[derive(Debug, Clone)]
pub struct Entry {
    pub client: std::net::IpAddr,
    pub time: SystemTime,
    /// `GET /path?q HTTP/1.1`.
    pub request_line: String,
    pub status: u16,
    pub bytes: u64,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    pub server: Option<String>,
    pub duration: Duration,
    pub attempts: u32,
}

/// The sending side, one per frontend.
#[derive(Clone)]
pub struct AccessLog {
    format: AccessLogFormat,
    tx: mpsc::Sender<String>,
}

// === impl AccessLog ===

impl AccessLog {
    /// Opens the writer task for `path` (`-` = standard output).
    pub fn start(
        path: PathBuf,
        format: AccessLogFormat,
        shutdown: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let out: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = if path.as_os_str() == "-" {
            Box::new(tokio::io::stdout())
        } else {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            Box::new(tokio::fs::File::from_std(file))
        };
        tracker.spawn(writer(rx, out, shutdown));
        Ok(AccessLog { format, tx })
    }

    pub fn log(&self, e: &Entry) {
        if self.tx.try_send(format_line(self.format, e)).is_err() {
            tracing::debug!("http access log queue full, line dropped");
        }
    }
}

async fn writer(
    mut rx: mpsc::Receiver<String>,
    out: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    shutdown: CancellationToken,
) {
    let mut out = tokio::io::BufWriter::new(out);
    loop {
        let line = tokio::select! {
            line = rx.recv() => line,
            _ = shutdown.cancelled() => None,
        };
        let Some(line) = line else { break };
        let mut ok = out.write_all(line.as_bytes()).await.is_ok();
        // Batch what is queued, then flush once.
        while let Ok(more) = rx.try_recv() {
            ok &= out.write_all(more.as_bytes()).await.is_ok();
        }
        ok &= out.flush().await.is_ok();
        if !ok {
            tracing::warn!("http access log write failed");
        }
    }
    while let Ok(more) = rx.try_recv() {
        let _ = out.write_all(more.as_bytes()).await;
    }
    let _ = out.flush().await;
}

/// One line, newline included.
pub fn format_line(format: AccessLogFormat, e: &Entry) -> String {
    let bytes = if e.bytes == 0 {
        "-".to_owned()
    } else {
        e.bytes.to_string()
    };
    let mut line = format!(
        "{} - - [{}] \"{}\" {} {}",
        e.client.to_canonical(),
        clf_time(e.time),
        escape(&e.request_line),
        e.status,
        bytes
    );
    if format != AccessLogFormat::Common {
        let q = |v: &Option<String>| v.as_deref().map_or("-".to_owned(), escape);
        line.push_str(&format!(" \"{}\" \"{}\"", q(&e.referer), q(&e.user_agent)));
    }
    if format == AccessLogFormat::Tandem {
        line.push_str(&format!(
            " server={} ms={:.3} attempts={}",
            e.server.as_deref().unwrap_or("-"),
            e.duration.as_secs_f64() * 1000.0,
            e.attempts
        ));
    }
    line.push('\n');
    line
}

/// `10/Oct/2000:13:55:36 +0000` (always UTC).
fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Quotes and control characters escaped as nginx does (`\x22`).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '"' || c == '\\' || c.is_control() {
            for b in c.to_string().bytes() {
                out.push_str(&format!("\\x{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            client: "::ffff:192.0.2.1".parse().unwrap(),
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(971_186_136),
            request_line: "GET /a\"b HTTP/1.1".into(),
            status: 200,
            bytes: 2326,
            referer: None,
            user_agent: Some("curl/8".into()),
            server: Some("web1".into()),
            duration: Duration::from_micros(1500),
            attempts: 2,
        }
    }

    #[test]
    fn combined_and_common_lines_match_apache() {
        assert_eq!(
            format_line(AccessLogFormat::Combined, &entry()),
            "192.0.2.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a\\x22b HTTP/1.1\" 200 2326 \"-\" \"curl/8\"\n"
        );
        assert_eq!(
            format_line(AccessLogFormat::Common, &entry()),
            "192.0.2.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a\\x22b HTTP/1.1\" 200 2326\n"
        );
        let t = format_line(AccessLogFormat::Tandem, &entry());
        assert!(
            t.ends_with("\"curl/8\" server=web1 ms=1.500 attempts=2\n"),
            "{t}"
        );
    }

    #[test]
    fn leap_years_and_month_ends_are_right() {
        let at = |s| clf_time(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(at(951_782_400), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(at(1_798_761_599), "31/Dec/2026:23:59:59 +0000");
    }
}
