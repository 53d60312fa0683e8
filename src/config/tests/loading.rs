//! Loading: files, relative paths, the environment, and their errors.

use super::*;
use crate::config::load;

#[test]
fn unreadable_tls_file_is_an_error() {
    let text = format!(
        "{MINIMAL_MYSQL}[mysql.tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\""
    );
    let e = error(&text);
    assert!(
        e.starts_with("x.toml:mysql.tls.cert_file: cannot read /nonexistent/cert.pem: "),
        "{e}"
    );
}

#[test]
fn syntax_error_tells_the_line() {
    let e = error("[mysql]\nlisten = \"127.0.0.1:6033\"\nusers = [\n  oops\n]\n");
    assert!(e.starts_with("x.toml: line 4, column 3: "), "{e}");
    let e = error("[admin]\nlisten = \"a\"\nlisten = \"b\"\n");
    assert!(e.starts_with("x.toml: line 3, column 1: "), "{e}");
}

#[test]
fn missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let e = Config::load(&path).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read: ", path.display())),
        "{e}"
    );
}

#[test]
fn load_reads_the_file_and_resolves_relative_paths() {
    let text =
        format!("{MINIMAL_MYSQL}[mysql.tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"");
    let (dir, path) = temp_config(&text);
    std::fs::write(dir.path().join("cert.pem"), "").unwrap();
    std::fs::write(dir.path().join("key.pem"), "").unwrap();
    let c = load::from_file(&path, env(&[])).unwrap();
    assert_eq!(c.origin, path.display().to_string());
    let tls = c.mysql.unwrap().tls.unwrap();
    assert_eq!(tls.cert_file, dir.path().join("cert.pem"));
    assert_eq!(tls.key_file, dir.path().join("key.pem"));
}

#[test]
fn environment_overrides_the_file() {
    let (_dir, path) = temp_config(MINIMAL_MYSQL);
    let c = load::from_file(
        &path,
        env(&[
            ("TANDEM__MYSQL__LISTEN", "127.0.0.1:7000"),
            ("TANDEM__MYSQL__MAX_CLIENT_CONNECTIONS", "4096"),
            ("TANDEM__MYSQL__MONITOR__USER", "mon"),
            // Stays text: no guessing that would make it the number 123.
            ("TANDEM__MYSQL__MONITOR__PASSWORD", "0123"),
            ("TANDEM__MYSQL__REQUIRE_TLS", "false"),
            ("TANDEM__MYSQL__SERVER_VERSION", "10.11"),
            ("TANDEM__ADMIN__LISTEN", "127.0.0.1:9191"),
            ("TANDEM__RUNTIME__WORKER_THREADS", "3"),
            ("TANDEM__LOG__LEVEL", "debug"),
            // Neither has the prefix with its separator: ignored.
            ("TANDEM_MYSQL_LISTEN", "garbage"),
            ("MYSQL__LISTEN", "garbage"),
        ]),
    )
    .unwrap();
    let m = c.mysql.unwrap();
    assert_eq!(m.listen, addr("127.0.0.1:7000"));
    assert_eq!(m.max_client_connections, 4096);
    let monitor = m.monitor.unwrap();
    assert_eq!(
        (monitor.user.as_str(), monitor.password.as_str()),
        ("mon", "0123")
    );
    assert!(!m.require_tls);
    assert_eq!(m.server_version.as_deref(), Some("10.11"));
    assert_eq!(c.admin.unwrap().listen, addr("127.0.0.1:9191"));
    assert_eq!(c.runtime.worker_threads, Some(3));
    assert_eq!(c.log.level, "debug");
    // Untouched keys keep the file's values.
    assert_eq!(m.backends[0].address, "127.0.0.1:3307");
}

#[test]
fn environment_errors_name_the_variable() {
    let (_dir, path) = temp_config(MINIMAL_MYSQL);
    let file = path.display();
    let cases = [
        (
            ("TANDEM__MYSQL__LISTEN", "nope"),
            format!("{file}:mysql.listen: expected an IP address and port like \"127.0.0.1:6033\" or \"[::1]:6033\", found \"nope\" (set by environment variable TANDEM__MYSQL__LISTEN)"),
        ),
        (
            ("TANDEM__MYSQL__BOGUS", "1"),
            format!("{file}:mysql.bogus: unknown field (set by environment variable TANDEM__MYSQL__BOGUS)"),
        ),
        (
            ("TANDEM__MYSQL__HANDSHAKE_TIMEOUT_MS", "10s"),
            format!("{file}:mysql.handshake_timeout_ms: invalid value: string \"10s\", expected an integer from 0 to 18446744073709551615 (set by environment variable TANDEM__MYSQL__HANDSHAKE_TIMEOUT_MS)"),
        ),
    ];
    for ((var, value), expected) in cases {
        let e = load::from_file(&path, env(&[(var, value)])).unwrap_err();
        assert_eq!(e.to_string(), expected);
        assert!(e.field().is_some());
    }
}
