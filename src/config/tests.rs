use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::*;
use crate::mysql::protocol::auth::parse_native_hash as parse_password_hash;

mod loading;
mod mysql;

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
            format!("[admin]\nlisten = \"127.0.0.1:9\"\ntoken = \"short\"\n{MINIMAL_MYSQL}"),
            "x.toml:admin.token: must be at least 16 characters without spaces",
        ),
        (
            format!("[admin]\nlisten = \"127.0.0.1:9\"\ntoken = \"0123456789abcdef\"\ntoken_file = \"/x\"\n{MINIMAL_MYSQL}"),
            "x.toml:admin.token: set token or token_file, not both",
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
            "x.toml:mysql.users: at least one [[mysql.users]] entry is required (or auth = \"passthrough\")",
        ),
        (
            "[mysql]\nlisten = \"127.0.0.1:6033\"\nauth = \"passthrough\"\n[[mysql.backends]]\nname = \"db1\"\naddress = \"h:1\"\nrole = \"primary\"".to_owned(),
            "x.toml:mysql.auth: auth = \"passthrough\" reads the primary's accounts: add [mysql.passthrough] (or [mysql.monitor]) with a user allowed to SELECT on mysql.user",
        ),
        (
            MINIMAL_MYSQL.replace("[[mysql.users]]", "[mysql.passthrough]\nuser = \"a\"\npassword = \"b\"\n[[mysql.users]]"),
            "x.toml:mysql.passthrough: is used only with auth = \"passthrough\"",
        ),
        (
            MINIMAL_MYSQL.replace("[[mysql.users]]", "auth = \"ldap\"\n[[mysql.users]]"),
            "x.toml:mysql.auth: unknown variant `ldap`, expected `config` or `passthrough`",
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
