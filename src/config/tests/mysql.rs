//! `[mysql]` backends, pool, consistency and monitor settings.

use super::*;

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
