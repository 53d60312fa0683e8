//! The `tandem` binary as a user runs it: config errors, environment
//! overrides, and a clean exit on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::*;

use crate::common::config_text;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tandem")
}

#[test]
fn check_config_reports_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[mysql]\nlisten = \"127.0.0.1:6033\"\nbogus = 1\n").unwrap();
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:mysql.bogus: unknown field", path.display())),
        "{err}"
    );
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn run_with_env_override_then_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.toml");
    std::fs::write(&path, config_text("")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&path)
        .env("TANDEM__MYSQL__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the daemon's own word that it listens (its log on stderr);
    // the reader keeps draining stderr so the daemon never writes to a
    // closed pipe.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("mysql listener ready") {
                let _ = tx.send(());
            }
        }
    });
    let ready = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(ready.is_ok(), "tandem never said it listens on {port}");
    let url = format!("mysql://app:apppass@127.0.0.1:{port}/appdb?prefer_socket=false");
    let mut conn = mysql_async::Conn::from_url(&url).await.unwrap();
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    drop(conn);
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
}
