use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::load;
use super::validate::parse_password_hash;
use super::*;

/// The example of the design brief: what a small node's file looks like.
const BRIEF_EXAMPLE: &str = r#"
[admin]
listen = "127.0.0.1:9090"          # GET /metrics (Prometheus), GET /health
[mysql]
listen = "127.0.0.1:6033"
[[mysql.users]]
user = "app"
password = "apppass"               # or password_hash = "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"
[mysql.monitor]
user = "monitor"
password = "monitorpass"
[[mysql.backends]]
name = "db1"
address = "127.0.0.1:3307"
role = "primary"
weight = 1
"#;

/// A valid `[mysql]` with only required keys; tests append to it.
const MINIMAL_MYSQL: &str = r#"
[mysql]
listen = "127.0.0.1:6033"
[[mysql.users]]
user = "app"
password = "apppass"
[[mysql.backends]]
name = "db1"
address = "127.0.0.1:3307"
role = "primary"
"#;

fn parse(text: &str) -> Config {
    match Config::from_toml_str(text, "x.toml") {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn error(text: &str) -> String {
    match Config::from_toml_str(text, "x.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn env(vars: &[(&str, &str)]) -> Option<config::Map<String, String>> {
    Some(
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn temp_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (dir, path)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn brief_example_parses() {
    let c = parse(BRIEF_EXAMPLE);
    assert_eq!(c.origin, "x.toml");
    assert_eq!(c.admin.unwrap().listen, addr("127.0.0.1:9090"));
    let m = c.mysql.unwrap();
    assert_eq!(m.listen, addr("127.0.0.1:6033"));
    assert_eq!(m.users.len(), 1);
    assert_eq!(m.users[0].user, "app");
    assert_eq!(m.users[0].password.as_deref(), Some("apppass"));
    assert_eq!(m.users[0].password_hash, None);
    let monitor = m.monitor.unwrap();
    assert_eq!(
        (monitor.user.as_str(), monitor.password.as_str()),
        ("monitor", "monitorpass")
    );
    assert_eq!(
        m.backends,
        vec![BackendConfig {
            name: "db1".into(),
            address: "127.0.0.1:3307".into(),
            role: ConfiguredRole::Primary,
            weight: 1,
            local: false,
        }]
    );
}

#[test]
fn defaults() {
    let c = parse(MINIMAL_MYSQL);
    assert!(c.admin.is_none());
    assert_eq!(
        c.runtime,
        RuntimeConfig {
            worker_threads: None,
            shutdown_grace_ms: 10_000
        }
    );
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Text);
    let m = c.mysql.unwrap();
    assert!(m.monitor.is_none());
    assert_eq!(m.max_client_connections, 2048);
    assert_eq!(m.handshake_timeout_ms, 10_000);
    assert_eq!(m.client_idle_timeout_ms, 28_800_000);
    assert_eq!(m.net_read_timeout_ms, 30_000);
    assert_eq!(m.max_allowed_packet, 67_108_864);
    assert_eq!(m.backend_connect_timeout_ms, 3_000);
    assert_eq!(m.default_auth_plugin, AuthPlugin::NativePassword);
    assert_eq!(m.server_version, None);
    assert!(!m.require_tls);
    assert!(m.tls.is_none() && m.backend_tls.is_none() && m.rsa_private_key_file.is_none());
    assert_eq!(m.backends[0].weight, 1);
    assert!(!m.backends[0].local);
    assert_eq!(m.users[0].max_connections, None);
    assert_eq!(
        m.routing,
        crate::config::RoutingConfig {
            read_write_split: true,
            balance: crate::config::Balance::Random,
            primary_reads: crate::config::PrimaryReads::Fallback,
            read_only_transactions: crate::config::ReadOnlyTransactions::Replica,
            read_only_functions: vec![],
            backend_retry_ms: 5_000,
            max_prepared_statements_per_backend: 256,
            consistency: crate::config::Consistency::Eventual,
            consistency_timeout_ms: 1_000,
        }
    );
    assert!(m.pool.multiplex);
    assert_eq!(m.pool.max_backend_connections, 200);
    assert_eq!(m.pool.acquire_timeout_ms, 10_000);
}

#[test]
fn pool_and_consistency_settings_are_checked() {
    let base = "[mysql]\nlisten = \"127.0.0.1:6033\"\n[[mysql.users]]\nuser = \"app\"\npassword = \"p\"\n[[mysql.backends]]\nname = \"db1\"\naddress = \"127.0.0.1:3306\"\nrole = \"primary\"\n";
    let c = parse(&format!(
        "{base}[mysql.pool]\nmax_backend_connections = 64\nmultiplex = false\n[mysql.routing]\nconsistency = \"window:250\"\n"
    ));
    let m = c.mysql.unwrap();
    assert_eq!(m.pool.max_backend_connections, 64);
    assert!(!m.pool.multiplex);
    assert_eq!(
        m.routing.consistency,
        crate::config::Consistency::Window(250)
    );
    let e = error(&format!(
        "{base}[mysql.routing]\nconsistency = \"strong\"\n"
    ));
    assert!(
        e.contains("mysql.routing.consistency") && e.contains("window:<ms>"),
        "{e}"
    );
    let e = error(&format!(
        "{base}[mysql.pool]\nmax_backend_connections = 0\n"
    ));
    assert!(e.contains("mysql.pool.max_backend_connections"), "{e}");
    let e = error(&format!(
        "{base}[mysql.pool]\nmax_backend_connections = 4\nmin_idle = 5\n"
    ));
    assert!(e.contains("mysql.pool.min_idle"), "{e}");
    let e = error(&base.replace("password = \"p\"", "password = \"p\"\nconsistency = \"x\""));
    assert!(e.contains("mysql.users[0].consistency"), "{e}");
}

#[test]
fn empty_file_is_valid_and_runs_nothing() {
    let c = parse("");
    assert!(c.runs_nothing());
    assert!(c.mysql.is_none() && c.admin.is_none());
    assert!(!parse(MINIMAL_MYSQL).runs_nothing());
}

#[test]
fn reference_example_parses_and_shows_the_defaults() {
    let example = parse(Config::example());
    let m = example.mysql.clone().unwrap();
    assert_eq!(m.backends.len(), 2);
    // The same file with no optional key set must give the same values.
    let minimal = parse(&format!(
        "[admin]\nlisten = \"127.0.0.1:9090\"\n{MINIMAL_MYSQL}\
         [mysql.monitor]\nuser = \"monitor\"\npassword = \"monitorpass\"\n\
         [[mysql.backends]]\nname = \"db2\"\naddress = \"127.0.0.1:3308\"\nrole = \"replica\"\n"
    ));
    assert_eq!(example, minimal);
}

#[test]
fn every_setting_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("x.pem");
    std::fs::write(&pem, "not checked here").unwrap();
    let pem = pem.display();
    let c = parse(&format!(
        r#"
[runtime]
worker_threads = 3
shutdown_grace_ms = 0
[log]
level = "warn,tandem::mysql=debug"
[mysql]
listen = "[::1]:6033"
max_client_connections = 10
handshake_timeout_ms = 1
client_idle_timeout_ms = 2
net_read_timeout_ms = 4
max_allowed_packet = 1024
backend_connect_timeout_ms = 3
default_auth_plugin = "caching_sha2_password"
server_version = "8.0.36-tandem"
require_tls = true
rsa_private_key_file = "{pem}"
[mysql.tls]
cert_file = "{pem}"
key_file = "{pem}"
[mysql.backend_tls]
ca_file = "{pem}"
verify = false
required = true
[[mysql.users]]
user = "app"
password_hash = "*6bb4837eb74329105ee4568dda7dc67ed2ca2ad9"
max_connections = 5
[[mysql.backends]]
name = "db-1.a_b"
address = "[fd00::5]:3306"
role = "replica"
weight = 7
[[mysql.backends]]
name = "db2"
address = "db2.lan:3306"
role = "primary"
"#
    ));
    assert_eq!(c.runtime.worker_threads, Some(3));
    assert_eq!(c.runtime.shutdown_grace_ms, 0);
    assert_eq!(c.log.level, "warn,tandem::mysql=debug");
    let m = c.mysql.unwrap();
    assert_eq!(m.listen, addr("[::1]:6033"));
    assert_eq!(
        (
            m.max_client_connections,
            m.handshake_timeout_ms,
            m.client_idle_timeout_ms
        ),
        (10, 1, 2)
    );
    assert_eq!(
        (m.max_allowed_packet, m.backend_connect_timeout_ms),
        (1024, 3)
    );
    assert_eq!(m.net_read_timeout_ms, 4);
    assert_eq!(m.default_auth_plugin, AuthPlugin::CachingSha2Password);
    assert_eq!(m.default_auth_plugin.name(), "caching_sha2_password");
    assert_eq!(m.server_version.as_deref(), Some("8.0.36-tandem"));
    assert!(m.require_tls);
    assert!(m.tls.is_some());
    assert_eq!(
        m.backend_tls,
        Some(BackendTls {
            ca_file: m.rsa_private_key_file.clone(),
            verify: false,
            required: true
        })
    );
    assert_eq!(m.users[0].password, None);
    assert_eq!(m.users[0].password_hash.unwrap()[..2], [0x6b, 0xb4]);
    assert_eq!(m.users[0].max_connections, Some(5));
    assert_eq!(m.backends[0].role, ConfiguredRole::Replica);
    assert_eq!(m.backends[0].weight, 7);
    assert_eq!(m.backends[1].address, "db2.lan:3306");
}

#[test]
fn password_hash_is_sha1_of_sha1_in_hex() {
    let upper = parse_password_hash("*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9").unwrap();
    let lower = parse_password_hash("*6bb4837eb74329105ee4568dda7dc67ed2ca2ad9").unwrap();
    assert_eq!(upper, lower);
    assert_eq!(upper[0], 0x6b);
    assert_eq!(upper[19], 0xd9);
    for bad in [
        "6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9",   // no star
        "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD",   // 39 digits
        "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9A", // 41 digits
        "*6BB4837EB74329105EE4568DDA7DC67ED2CA2ADG",  // not hex
        "*+BB4837EB74329105EE4568DDA7DC67ED2CA2AD9",  // sign is not a digit
        "*",
    ] {
        assert_eq!(parse_password_hash(bad), None, "{bad}");
    }
}

#[test]
fn debug_output_hides_passwords() {
    let c = parse(BRIEF_EXAMPLE);
    let text = format!("{c:?}");
    assert!(!text.contains("apppass"), "{text}");
    assert!(!text.contains("monitorpass"), "{text}");
    assert!(text.contains("<redacted>"));
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let cases = [
        ("[vrrp]\nx = 1", "x.toml:vrrp.x: unknown field"),
        ("[http]\nbogus = 1", "x.toml:http.bogus: unknown field"),
        ("bogus = 1", "x.toml:bogus: unknown field"),
        (
            "[runtime]\nthreads = 2",
            "x.toml:runtime.threads: unknown field",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(text), expected, "{text}");
    }
    let in_mysql =
        format!("{MINIMAL_MYSQL}\n[mysql.tls]\ncert_file = \"a\"\nkey_file = \"b\"\nca = 1");
    assert_eq!(error(&in_mysql), "x.toml:mysql.tls.ca: unknown field");
    let mysql_bogus = MINIMAL_MYSQL.replace("[[mysql.users]]", "bogus = 1\n[[mysql.users]]");
    assert_eq!(error(&mysql_bogus), "x.toml:mysql.bogus: unknown field");
    let in_array = MINIMAL_MYSQL.replace("password =", "pasword =");
    assert_eq!(
        error(&in_array),
        "x.toml:mysql.users[0].pasword: unknown field, did you mean `password`?"
    );
    let typo = MINIMAL_MYSQL.replace(
        "[[mysql.users]]",
        "max_client_connection = 5\n[[mysql.users]]",
    );
    assert_eq!(
        error(&typo),
        "x.toml:mysql.max_client_connection: unknown field, did you mean `max_client_connections`?"
    );
}

#[test]
fn type_and_missing_field_errors_name_the_field() {
    let cases = [
        (
            MINIMAL_MYSQL.replace("listen = \"127.0.0.1:6033\"", "listen = 6033"),
            "x.toml:mysql.listen: invalid type: integer `6033`, expected a string",
        ),
        (
            MINIMAL_MYSQL.replace("listen = \"127.0.0.1:6033\"", ""),
            "x.toml:mysql.listen: missing required field",
        ),
        (
            MINIMAL_MYSQL.replace("role = \"primary\"", ""),
            "x.toml:mysql.backends[0].role: missing required field",
        ),
        (
            MINIMAL_MYSQL.replace("role = \"primary\"", "role = \"master\""),
            "x.toml:mysql.backends[0].role: unknown variant `master`, expected one of `primary`, `replica`, `auto`",
        ),
        (
            format!("{MINIMAL_MYSQL}weight = -1"),
            "x.toml:mysql.backends[0].weight: invalid value: integer `-1`, expected an integer from 0 to 4294967295",
        ),
        (
            format!("{MINIMAL_MYSQL}weight = 1.5"),
            "x.toml:mysql.backends[0].weight: invalid type: floating point `1.5`, expected an integer from 0 to 4294967295",
        ),
        (
            "[runtime]\nshutdown_grace_ms = \"soon\"".to_owned(),
            "x.toml:runtime.shutdown_grace_ms: invalid value: string \"soon\", expected an integer from 0 to 18446744073709551615",
        ),
        (
            "[admin]".to_owned(),
            "x.toml:admin.listen: missing required field",
        ),
        (
            "[log]\nformat = \"json\"".to_owned(),
            "x.toml:log.format: unknown variant `json`, expected `text`",
        ),
        (
            MINIMAL_MYSQL.replace("password = \"apppass\"", "password = 1234"),
            "x.toml:mysql.users[0].password: invalid type: integer `1234`, expected a string",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(&text), expected, "{text}");
    }
}

#[test]
fn validation_errors() {
    let second_user = "[[mysql.users]]\nuser = \"app\"\npassword = \"x\"\n";
    let cases = [
        (
            MINIMAL_MYSQL.replace("password = \"apppass\"", "password_hash = \"*6BB4\""),
            "x.toml:mysql.users[0].password_hash: expected \"*\" followed by 40 hex digits",
        ),
        (
            format!("{MINIMAL_MYSQL}{second_user}").replacen("user = \"app\"\npassword = \"x\"", "user = \"b\"\npassword_hash = \"x\"", 1),
            "x.toml:mysql.users[1].password_hash: expected \"*\" followed by 40 hex digits",
        ),
        (
            MINIMAL_MYSQL.replace("password = \"apppass\"", "password = \"a\"\npassword_hash = \"*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9\""),
            "x.toml:mysql.users[0]: set exactly one of password or password_hash",
        ),
        (
            MINIMAL_MYSQL.replace("password = \"apppass\"", ""),
            "x.toml:mysql.users[0]: set exactly one of password or password_hash",
        ),
        (
            format!("{MINIMAL_MYSQL}{second_user}"),
            "x.toml:mysql.users[1].user: duplicate user \"app\"",
        ),
        (
            MINIMAL_MYSQL.replace("user = \"app\"", "user = \"\""),
            "x.toml:mysql.users[0].user: must not be empty",
        ),
        (
            MINIMAL_MYSQL.replace("password = \"apppass\"", "password = \"a\"\nmax_connections = 0"),
            "x.toml:mysql.users[0].max_connections: must be at least 1",
        ),
        (
            "[mysql]\nlisten = \"127.0.0.1:6033\"\n[[mysql.backends]]\nname = \"db1\"\naddress = \"h:1\"\nrole = \"primary\"".to_owned(),
            "x.toml:mysql.users: at least one [[mysql.users]] entry is required",
        ),
        (
            MINIMAL_MYSQL.split("[[mysql.backends]]").next().unwrap().to_owned(),
            "x.toml:mysql.backends: at least one [[mysql.backends]] entry is required",
        ),
        (
            MINIMAL_MYSQL.replace("\"primary\"", "\"replica\""),
            "x.toml:mysql.backends: exactly one backend must have role = \"primary\" (or use role = \"auto\"), found 0",
        ),
        (
            format!("{MINIMAL_MYSQL}[[mysql.backends]]\nname = \"db2\"\naddress = \"h:1\"\nrole = \"primary\""),
            "x.toml:mysql.backends: exactly one backend must have role = \"primary\" (or use role = \"auto\"), found 2",
        ),
        (
            format!("{MINIMAL_MYSQL}[[mysql.backends]]\nname = \"db1\"\naddress = \"h:1\"\nrole = \"replica\""),
            "x.toml:mysql.backends[1].name: duplicate backend name \"db1\"",
        ),
        (
            MINIMAL_MYSQL.replace("name = \"db1\"", "name = \"db 1\""),
            "x.toml:mysql.backends[0].name: expected 1 to 64 letters, digits, '.', '_' or '-', found \"db 1\"",
        ),
        (
            format!("{MINIMAL_MYSQL}weight = 0"),
            "x.toml:mysql.backends[0].weight: must be at least 1",
        ),
        (
            MINIMAL_MYSQL.replace("listen = \"127.0.0.1:6033\"", "listen = \"localhost:6033\""),
            "x.toml:mysql.listen: expected an IP address and port like \"127.0.0.1:6033\" or \"[::1]:6033\", found \"localhost:6033\"",
        ),
        (
            "[admin]\nlisten = \"127.0.0.1\"".to_owned(),
            "x.toml:admin.listen: expected an IP address and port like \"127.0.0.1:6033\" or \"[::1]:6033\", found \"127.0.0.1\"",
        ),
        (
            MINIMAL_MYSQL.replace("[[mysql.users]]", "max_allowed_packet = 1023\n[[mysql.users]]"),
            "x.toml:mysql.max_allowed_packet: must be between 1024 and 1073741824, found 1023",
        ),
        (
            MINIMAL_MYSQL.replace("[[mysql.users]]", "max_allowed_packet = 1073741825\n[[mysql.users]]"),
            "x.toml:mysql.max_allowed_packet: must be between 1024 and 1073741824, found 1073741825",
        ),
        (
            MINIMAL_MYSQL.replace("[[mysql.users]]", "max_client_connections = 0\n[[mysql.users]]"),
            "x.toml:mysql.max_client_connections: must be at least 1",
        ),
        (
            MINIMAL_MYSQL.replace("[[mysql.users]]", "handshake_timeout_ms = 0\n[[mysql.users]]"),
            "x.toml:mysql.handshake_timeout_ms: must be at least 1",
        ),
        (
            MINIMAL_MYSQL.replace("[[mysql.users]]", "net_read_timeout_ms = 0\n[[mysql.users]]"),
            "x.toml:mysql.net_read_timeout_ms: must be at least 1",
        ),
        (
            MINIMAL_MYSQL.replace("[[mysql.users]]", "server_version = \"\"\n[[mysql.users]]"),
            "x.toml:mysql.server_version: must be non-empty text without NUL characters",
        ),
        (
            MINIMAL_MYSQL.replace("[[mysql.users]]", "require_tls = true\n[[mysql.users]]"),
            "x.toml:mysql.require_tls: require_tls = true needs a [mysql.tls] section with cert_file and key_file",
        ),
        (
            "[runtime]\nworker_threads = 0".to_owned(),
            "x.toml:runtime.worker_threads: must be at least 1",
        ),
        (
            "[log]\nlevel = \"verbose\"".to_owned(),
            "x.toml:log.level: unknown level \"verbose\", expected trace, debug, info, warn, error, off or target=level",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(&text), expected, "{text}");
    }
}

#[test]
fn backend_addresses() {
    let with_address = |a: &str| MINIMAL_MYSQL.replace("127.0.0.1:3307", a);
    for good in [
        "10.0.0.5:3306",
        "db1.lan:3306",
        "[fd00::5]:3306",
        "[::1]:1",
        "h:65535",
    ] {
        parse(&with_address(good));
    }
    for bad in [
        "db1",
        "db1:",
        ":3306",
        "db1:0",
        "db1:65536",
        "::1:3306",
        "[::1]",
        "[nope]:3306",
        "a b:1",
    ] {
        let expected = format!(
            "x.toml:mysql.backends[0].address: expected \"host:port\" like \"10.0.0.5:3306\", \"db1.lan:3306\" or \"[fd00::5]:3306\", found {bad:?}"
        );
        assert_eq!(error(&with_address(bad)), expected);
    }
}

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

#[test]
fn monitor_settings_and_auto_roles() {
    let m = parse(&format!(
        "{MINIMAL_MYSQL}[mysql.monitor]\nuser = \"m\"\npassword = \"p\"\ninterval_ms = 150\n\
         connect_timeout_ms = 300\nquery_timeout_ms = 400\nrise = 1\nfall = 5\n\
         heartbeat_interval_ms = 100\nmax_replication_lag_ms = 0\nmin_serving_replicas = 1\n\
         lag_weighting = true\n"
    ))
    .mysql
    .unwrap();
    let mon = m.monitor.unwrap();
    assert_eq!(
        (
            mon.interval_ms,
            mon.connect_timeout_ms,
            mon.query_timeout_ms
        ),
        (150, 300, 400)
    );
    assert_eq!((mon.rise, mon.fall), (1, 5));
    assert_eq!(mon.heartbeat_interval_ms, 100);
    assert_eq!(mon.max_replication_lag_ms, 0);
    assert_eq!(mon.min_serving_replicas, 1);
    assert!(mon.lag_weighting);

    let monitor = "[mysql.monitor]\nuser = \"m\"\npassword = \"p\"\n";
    let auto = MINIMAL_MYSQL.replace("\"primary\"", "\"auto\"");
    let all_auto = parse(&format!(
        "{auto}[[mysql.backends]]\nname = \"db2\"\naddress = \"h:1\"\nrole = \"replica\"\n{monitor}"
    ));
    assert_eq!(
        all_auto.mysql.unwrap().backends[0].role,
        ConfiguredRole::Auto
    );
    let cases = [
        (
            auto.clone(),
            "x.toml:mysql.backends[0].role: role = \"auto\" needs a [mysql.monitor] section: the monitor discovers the primary",
        ),
        (
            format!("{auto}[[mysql.backends]]\nname = \"db2\"\naddress = \"h:1\"\nrole = \"primary\"\n{monitor}"),
            "x.toml:mysql.backends: role = \"auto\" cannot be mixed with role = \"primary\": either name the primary, or let the monitor discover it among the auto backends",
        ),
        (
            format!("{MINIMAL_MYSQL}{monitor}interval_ms = 99\n"),
            "x.toml:mysql.monitor.interval_ms: must be at least 100, found 99",
        ),
        (
            format!("{MINIMAL_MYSQL}{monitor}heartbeat_interval_ms = 5\n"),
            "x.toml:mysql.monitor.heartbeat_interval_ms: must be 0 (off) or at least 100, found 5",
        ),
        (
            format!("{MINIMAL_MYSQL}{monitor}fall = 0\n"),
            "x.toml:mysql.monitor.fall: must be at least 1",
        ),
        (
            format!("{MINIMAL_MYSQL}{monitor}intervall_ms = 100\n"),
            "x.toml:mysql.monitor.intervall_ms: unknown field, did you mean `interval_ms`?",
        ),
    ];
    for (text, want) in cases {
        let got = error(&text);
        assert!(got.starts_with(want), "got {got}\nwant {want}");
    }
}
