//! Real client programs (PHP mysqli/PDO, PyMySQL, mysql-connector-python,
//! node mysql2, the mariadb CLI, sysbench) run the same checks directly
//! against MariaDB and through tandem. The scripts live in tests/clients/ and
//! print one `ok`/`not ok` line per check; they exit non-zero on any failure.

use std::process::Command;

use crate::common::{repo_root, testbed, Proxy};

/// Runs a client script against host:port and returns its combined output;
/// panics with that output when it fails.
pub async fn run_client(label: &str, program: &str, args: &[&str], addr: String) -> String {
    run_client_env(label, program, args, addr, &[]).await
}

/// [`run_client`] with extra environment variables.
pub async fn run_client_env(
    label: &str,
    program: &str,
    args: &[&str],
    addr: String,
    envs: &[(&str, &str)],
) -> String {
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let root = repo_root();
    let program = program.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let label = label.to_string();
    tokio::task::spawn_blocking(move || {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let out = Command::new(&program)
            .args(&args)
            .current_dir(&root)
            .env("TANDEM_HOST", host)
            .env("TANDEM_PORT", port)
            .env("TANDEM_USER", "app")
            .env("TANDEM_PASSWORD", "apppass")
            .env("TANDEM_DB", "appdb")
            .envs(envs)
            .output()
            .unwrap_or_else(|e| {
                panic!("{label}: cannot run {program}: {e} (run scripts/install-deps)")
            });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{label} failed:\n{text}");
        assert!(text.contains("ok - "), "{label} ran no check:\n{text}");
        assert!(!text.contains("not ok"), "{label}:\n{text}");
        text
    })
    .await
    .unwrap()
}

/// The same script directly and through tandem.
async fn both(label: &str, program: &str, args: &[&str]) {
    let proxy = Proxy::start().await;
    run_client(
        &format!("{label} (direct)"),
        program,
        args,
        testbed().primary.clone(),
    )
    .await;
    run_client(
        &format!("{label} (tandem)"),
        program,
        args,
        proxy.addr().to_string(),
    )
    .await;
}

#[tokio::test]
async fn php_mysqli() {
    both("php mysqli", "php", &["tests/clients/php/mysqli_test.php"]).await;
}

#[tokio::test]
async fn php_pdo() {
    both("php pdo", "php", &["tests/clients/php/pdo_test.php"]).await;
}

#[tokio::test]
async fn python_pymysql() {
    both(
        "pymysql",
        "python3",
        &["tests/clients/python/pymysql_test.py"],
    )
    .await;
}

#[tokio::test]
async fn python_mysql_connector() {
    both(
        "mysql-connector-python",
        "python3",
        &["tests/clients/python/connector_test.py"],
    )
    .await;
}

#[tokio::test]
async fn node_mysql2() {
    both(
        "node mysql2",
        "node",
        &["tests/clients/node/mysql2_test.js"],
    )
    .await;
}

/// The concurrency torture (tests/clients/node/torture.js): 16 mysql2 sessions
/// for a few seconds, each checking it only ever sees its own rows, variables,
/// temporary tables and transactions, while clients pipeline, leave
/// mid-result and quit mid-transaction. Directly, then through tandem with a
/// pool of 4 connections per backend (every session shares them), with and
/// without replicas taking reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_many_sessions_see_only_their_own_data() {
    let env = [("TORTURE_SECONDS", "4"), ("TORTURE_SESSIONS", "16")];
    let args = ["tests/clients/node/torture.js"];
    let direct = testbed().primary.clone();
    run_client_env("torture (direct)", "node", &args, direct, &env).await;
    let pool = "[mysql.pool]\nmax_backend_connections = 24\n";
    let proxy = Proxy::start_with(&crate::common::config_text(pool)).await;
    let addr = proxy.addr().to_string();
    run_client_env("torture (tandem, pooled)", "node", &args, addr, &env).await;
    // Reads go to the replicas; each session reads its own writes there
    // (read-your-writes), as the torture checks row counts after COMMIT.
    let mut split = crate::common::config_text(&format!(
        "[mysql.routing]\nconsistency = \"session\"\n{pool}"
    ));
    for (i, r) in testbed().replicas.iter().enumerate() {
        split.push_str(&format!(
            "\n[[mysql.backends]]\nname = \"r{i}\"\naddress = \"{r}\"\nrole = \"replica\"\n"
        ));
    }
    let proxy = Proxy::start_with(&split).await;
    let addr = proxy.addr().to_string();
    run_client_env("torture (tandem, replicas)", "node", &args, addr, &env).await;
}

#[tokio::test]
async fn mariadb_cli() {
    both("mariadb cli", "bash", &["tests/clients/cli/cli_test.sh"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_oltp_read_write_has_no_errors() {
    let proxy = Proxy::start().await;
    run_client(
        "sysbench",
        "bash",
        &["tests/clients/sysbench.sh"],
        proxy.addr().to_string(),
    )
    .await;
}

#[tokio::test]
async fn caching_sha2_as_default_plugin_with_python_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::common::write_cert(dir.path());
    let extra = format!(
        "default_auth_plugin = \"caching_sha2_password\"\n[mysql.tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n"
    );
    let proxy = Proxy::start_with(&crate::common::config_text(&extra)).await;
    run_client(
        "caching_sha2 python",
        "python3",
        &["tests/clients/python/sha2_test.py"],
        proxy.addr().to_string(),
    )
    .await;
}

/// A PHP app in the seed recipes' style sees exactly the same results
/// directly and through tandem splitting reads over two replicas.
#[tokio::test]
async fn php_app_sees_identical_results_through_the_split() {
    let tb = testbed();
    let mut text = crate::common::config_text("");
    for (i, r) in tb.replicas.iter().enumerate() {
        text.push_str(&format!(
            "\n[[mysql.backends]]\nname = \"db{}\"\naddress = \"{r}\"\nrole = \"replica\"\n",
            i + 2
        ));
    }
    let proxy = Proxy::start_with(&text).await;
    let script = ["tests/clients/php/app_test.php"];
    let direct = run_client("php app (direct)", "php", &script, tb.primary.clone()).await;
    let through = run_client_env(
        "php app (tandem)",
        "php",
        &script,
        proxy.addr().to_string(),
        &[("TANDEM_APP_REPLICAS", "db2,db3")],
    )
    .await;
    assert!(direct.contains("php app: done"), "{direct}");
    assert_eq!(
        direct, through,
        "the app saw different results through tandem"
    );
    let (_, metrics) = crate::admin::get(proxy.admin(), "/metrics").await;
    let replica_reads = crate::admin::metric(
        &metrics,
        "tandem_mysql_routed_total{backend=\"db2\",reason=\"read\"}",
    ) + crate::admin::metric(
        &metrics,
        "tandem_mysql_routed_total{backend=\"db3\",reason=\"read\"}",
    );
    assert!(
        replica_reads > 0.0,
        "replicas served some of the app's reads"
    );
}
